"""TFLite files for devices and a runner on the LiteRT interpreter (``ai-edge-litert``).

Variants (``VARIANTS``):

- ``fp32``: the float graph as is.
- ``fp16``: weights stored as float16 (half the size), computed in float32.
- ``dynamic``: dynamic-range quantisation; int8 weights, activations quantised on the fly.
- ``int8``: full-integer quantisation calibrated on training images (representative dataset);
  with ``int8_io='int8'`` the input and output tensors are int8 too (for integer-only
  accelerators), with ``int8_io='float'`` they stay float32.

Every file carries a flatbuffer metadata entry ``inception_export`` (the model's ``metadata``
table, which the interpreter ignores): UTF-8 JSON with the class names in index order, the input
size and the preprocessing, so a device needs nothing but the .tflite file. ``read_metadata``
reads it back.
"""

import json
import tempfile

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter
from ai_edge_litert.tools import flatbuffer_utils

from inception.config import EVAL_CENTRAL_FRACTION, INT8_IO
from inception.config import TFLITE_VARIANTS as VARIANTS

METADATA_NAME = "inception_export"


# The one signature of the .tflite file (the key TFLite signature runners default to).
SIGNATURE = "serving_default"


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
        SIGNATURE, probabilities,
        [tf.TensorSpec([None, side, side, 3], tf.float32, name="images")])
    archive.write_out(directory, verbose=False)
    return directory


def convert(model, image_size, variant, representative_images=None, int8_io="float",
            saved_model_dir=None):
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
    if variant == "int8" and (representative_images is None or len(representative_images) == 0):
        raise ValueError("int8 quantisation needs representative (calibration) images")
    if saved_model_dir is None:
        with tempfile.TemporaryDirectory() as scratch:
            write_probabilities_saved_model(model, image_size, scratch)
            return convert(model, image_size, variant, representative_images, int8_io, scratch)
    # The converter's supported path for Keras 3 (the one keras' own LiteRT export takes):
    # ExportArchive -> SavedModel -> from_saved_model.
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=[SIGNATURE])
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
    model.metadata = [m for m in (model.metadata or []) if _name(m.name) != name] + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _name(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


def read_metadata(path_or_bytes, name=METADATA_NAME):
    """The JSON metadata written by ``add_metadata`` (a dict), or None when absent."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        data = bytes(path_or_bytes)
    else:
        with open(path_or_bytes, "rb") as f:
            data = f.read()
    model = schema.Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if _name(entry.Name()) == name:
            raw = model.Buffers(entry.Buffer()).DataAsNumpy()
            return json.loads(bytes(raw).decode("utf-8"))
    return None


def export_variant(source, variant, representative_images=None, int8_io="float",
                   central_fraction=EVAL_CENTRAL_FRACTION, saved_model_dir=None):
    """Converts ``source`` (an ExportSource) and embeds labels and preprocessing facts.

    ``saved_model_dir``: see ``convert``.
    """
    flatbuffer = convert(source.model, source.image_size, variant, representative_images, int8_io,
                         saved_model_dir)
    metadata = {
        "labels": list(source.labels),
        "image_size": source.image_size,
        "input": "float32 RGB [N, S, S, 3] scaled to [-1, 1]" if variant != "int8" or int8_io == "float"
                 else "int8 RGB [N, S, S, 3]: the [-1, 1] image quantised with the input scale/zero point",
        "output": "class probabilities [N, C]",
        "preprocessing": {"central_fraction": central_fraction, "resize": "bilinear",
                          "range": [-1.0, 1.0]},
        "variant": variant,
        "dataset": source.config.get("dataset"),
        "int8_io": int8_io if variant == "int8" else None,
    }
    return add_metadata(flatbuffer, metadata)


class LiteRTClassifier:
    """Runs a .tflite classifier on the LiteRT interpreter with float images in, probabilities out.

    Quantised int8 input/output tensors are handled with the tensors' scale and zero point.
    """

    def __init__(self, path, num_threads=None):
        self.path = path
        self.metadata = read_metadata(path)
        self.interpreter = Interpreter(model_path=path, num_threads=num_threads)
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self._batch = None

    @property
    def labels(self):
        return list(self.metadata["labels"]) if self.metadata else None

    @property
    def image_size(self):
        return int(self._input["shape_signature"][1])

    def _resize(self, batch):
        if batch != self._batch:
            self.interpreter.resize_tensor_input(self._input["index"], [batch, *self._input["shape"][1:]])
            self.interpreter.allocate_tensors()
            self._input = self.interpreter.get_input_details()[0]
            self._output = self.interpreter.get_output_details()[0]
            self._batch = batch

    def _quantise(self, images):
        dtype = self._input["dtype"]
        if dtype == np.float32:
            return images.astype(np.float32)
        scale, zero_point = self._input["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(images / scale + zero_point), info.min, info.max).astype(dtype)

    def _dequantise(self, values):
        if self._output["dtype"] == np.float32:
            return values.astype(np.float32)
        scale, zero_point = self._output["quantization"]
        return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)

    def predict(self, images, batch_size=32):
        """float32 [N, S, S, 3] in [-1, 1] -> probabilities float32 [N, C]."""
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[1:] != tuple(self._input["shape_signature"][1:]):
            raise ValueError(f"expected images [N, {self.image_size}, {self.image_size}, 3]; "
                             f"got {images.shape}")
        outputs = []
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            self._resize(len(chunk))
            self.interpreter.set_tensor(self._input["index"], self._quantise(chunk))
            self.interpreter.invoke()
            outputs.append(self._dequantise(self.interpreter.get_tensor(self._output["index"])))
        return np.concatenate(outputs, axis=0)
