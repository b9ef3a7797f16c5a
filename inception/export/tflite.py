"""TFLite files for devices; they run on the LiteRT interpreter (``litert.LiteRTRunner``, the
format's runner for the export's agreement check and ``inception-predict``).

Variants (``VARIANTS``):

- ``fp32``: the float graph as is.
- ``fp16``: weights stored as float16 (half the size), computed in float32.
- ``dynamic``: dynamic-range quantisation; int8 weights, activations quantised on the fly.
- ``int8``: full-integer quantisation calibrated on training images (representative dataset);
  with ``int8_io='int8'`` the input and output tensors are int8 too (for integer-only
  accelerators), with ``int8_io='float'`` they stay float32.

Every file carries a flatbuffer metadata entry ``inception_export`` (the model's ``metadata``
table, which the interpreter ignores): UTF-8 JSON with the class names in index order, the input
size and the preprocessing, so a device needs nothing but the .tflite file. ``litert.read_metadata``
reads it back. The file is converted from a scratch SavedModel of the probabilities alone
(``write_probabilities_saved_model``, the converter's input, written once per export).

``FORMATS`` holds one ``TFLiteFormat`` per variant, ``tflite_<variant>``
(``inception.export.formats``).
"""

import json
import os
import re

import keras
import numpy as np
import tensorflow as tf

from inception import console, fileio
from inception.export import formats
from inception.export.formats import INT8_IO, METADATA_NAME
from inception.export.formats import TFLITE_VARIANTS as VARIANTS
from inception.networks import EVAL_CENTRAL_FRACTION

EXTRA = "tflite"
with formats.packages_of(EXTRA):
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    from inception.export import litert

# The one signature of the .tflite file (the key TFLite signature runners default to).
SIGNATURE = "serving_default"
INT8_INPUT = "int8 RGB [N, S, S, 3]: the [-1, 1] image quantised with the input scale/zero point"
FLOAT_SAVED_MODEL = "float_saved_model"  # the scratch SavedModel every variant converts from
# What the quantizer prints past logging, once per int8 conversion ("fully_quantize: 0,
# inference_type: 6, input_inference_type: FLOAT32, ..."): hidden by console.quiet_cpp_output.
QUANTIZER_SETTINGS = re.compile(rb"^fully_quantize: \d+, inference_type: ")


def check_calibration(variant, images):
    """int8 is calibrated on training images: refuses to start without them."""
    if variant == "int8" and (images is None or len(images) == 0):
        raise ValueError(
            "tflite_int8 needs calibration images (training images of the dataset; "
            "pass --dataset for a .keras file)"
        )


def write_probabilities_saved_model(model, image_size, directory):
    """A SavedModel with one signature, float32 images [N, S, S, 3] -> probabilities [N, C].

    Written with Keras' ``ExportArchive`` (which tracks the variables the signature reads), the
    converter's supported input: the converter freezes those variables into the flatbuffer.
    """
    side = int(image_size)

    def probabilities(images):
        return {"probabilities": tf.cast(model(images, training=False), tf.float32)}

    archive = keras.export.ExportArchive()
    archive.add_endpoint(
        SIGNATURE, probabilities, [tf.TensorSpec([None, side, side, 3], tf.float32, name="images")]
    )
    archive.write_out(directory, verbose=False)
    return directory


def convert(
    model, image_size, variant, representative_images=None, int8_io="float", saved_model_dir=None
):
    """Keras classifier -> TFLite flatbuffer bytes (without the metadata entry).

    ``representative_images``: float32 [N, S, S, 3] preprocessed training images (int8 only).
    ``saved_model_dir``: a directory written by ``write_probabilities_saved_model`` for this
    model, to convert several variants from one SavedModel; by default one is written to a
    temporary directory.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown TFLite variant {variant!r}; choose from {', '.join(VARIANTS)}")
    if int8_io not in INT8_IO:
        raise ValueError(f"int8_io must be one of {INT8_IO}; got {int8_io!r}")
    check_calibration(variant, representative_images)
    if saved_model_dir is None:
        with fileio.local_scratch() as scratch:
            write_probabilities_saved_model(model, image_size, scratch)
            return convert(model, image_size, variant, representative_images, int8_io, scratch)
    # The converter's supported path for Keras 3 (the one keras' own LiteRT export takes):
    # ExportArchive -> SavedModel -> from_saved_model.
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=[SIGNATURE]
    )
    if variant == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "int8":
        images = np.asarray(representative_images, np.float32)

        def representative_dataset():
            for image in images:
                yield [image[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io == "int8":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    with console.quiet_cpp_output(QUANTIZER_SETTINGS):
        return bytes(converter.convert())


def add_metadata(flatbuffer, metadata, name=METADATA_NAME):
    """Returns the flatbuffer with a metadata entry ``name`` holding ``metadata`` as JSON."""
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    payload = json.dumps(metadata, ensure_ascii=False, sort_keys=True).encode("utf-8")
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(payload, np.uint8).copy()
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    kept = [m for m in (model.metadata or []) if litert.entry_name(m.name) != name]
    model.metadata = kept + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def export_variant(
    classifier,
    variant,
    representative_images=None,
    int8_io="float",
    central_fraction=EVAL_CENTRAL_FRACTION,
    saved_model_dir=None,
):
    """Converts ``classifier`` (a ``classifier.Classifier``) and embeds labels and preprocessing
    facts.

    ``saved_model_dir``: see ``convert``.
    """
    flatbuffer = convert(
        classifier.model,
        classifier.image_size,
        variant,
        representative_images,
        int8_io,
        saved_model_dir,
    )
    integer_input = variant == "int8" and int8_io == "int8"
    metadata = formats.file_metadata(
        classifier,
        variant,
        INT8_INPUT if integer_input else formats.FLOAT_INPUT,
        int8_io=int8_io if variant == "int8" else None,
        central_fraction=central_fraction,
    )
    return add_metadata(flatbuffer, metadata)


class TFLiteFormat(formats.Format):
    """One variant; every variant converts from one float SavedModel written once per export."""

    kind = "tflite"
    extra = EXTRA
    noun = "a .tflite file"
    suffix = ".tflite"

    def __init__(self, variant):
        self.variant = variant
        self.name = f"tflite_{variant}"
        self.needs_calibration = variant == "int8"

    def check(self, inputs):
        check_calibration(self.variant, inputs.calibration_images)

    def filename(self, inputs):
        integer_io = self.variant == "int8" and inputs.options.int8_io == "int8"
        return f"{inputs.name}-{self.variant}{'-int8io' if integer_io else ''}{self.suffix}"

    def write(self, inputs, path):
        classifier = inputs.classifier
        saved_model_dir = inputs.shared(
            FLOAT_SAVED_MODEL,
            lambda directory: write_probabilities_saved_model(
                classifier.model, classifier.image_size, directory
            ),
        )
        fileio.write_bytes(
            path,
            export_variant(
                classifier,
                self.variant,
                inputs.calibration_images,
                inputs.options.int8_io,
                saved_model_dir=saved_model_dir,
            ),
        )

    def open(self, path, num_threads=formats.THREADS):
        return litert.LiteRTRunner(path, num_threads=num_threads)

    def find(self, path):
        return path if path.endswith(self.suffix) and os.path.isfile(path) else None

    def fields(self, inputs, runner, reference):
        row = {"runtime": "ai_edge_litert.interpreter.Interpreter", "threads": formats.THREADS}
        if self.variant == "int8":
            row["int8_io"] = inputs.options.int8_io
            row["calibration_images"] = int(len(inputs.calibration_images))
        return row


FORMATS = {f"tflite_{variant}": TFLiteFormat(variant) for variant in VARIANTS}
