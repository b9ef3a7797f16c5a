"""ONNX files for ONNX Runtime (and the other ONNX runtimes: TensorRT, OpenVINO, ...), converted
by tf2onnx, the converter Keras' own ``model.export(format="onnx")`` calls on the TensorFlow
backend (BUILD_NOTES "Export" says why this one and what it costs).

The graph takes ``images`` float32 [N, S, S, 3] scaled to [-1, 1] (NHWC, as in Keras: tf2onnx
adds the transposes ONNX's NCHW convolutions need) and returns ``probabilities`` float32 [N, C].
Its ``metadata_props`` carry ``METADATA_NAME``: the same JSON as the TFLite files (class names in
index order, input size, preprocessing), so the .onnx file is all a device needs.
``read_metadata`` reads it back, with onnx or from an ONNX Runtime session. ``OnnxRunner`` runs
the file (the export's agreement check and ``inception-predict`` alike).

``FORMATS`` holds ``OnnxFormat`` (``inception.export.formats``).
"""

import json
import os

import tensorflow as tf

from inception import console, fileio
from inception.export import agreement, formats
from inception.export.formats import METADATA_NAME

EXTRA = "onnx"
with formats.packages_of(EXTRA):
    import onnx
    import onnxruntime
    import tf2onnx

# tf2onnx logs INFO lines ("Using opset", "Optimizing ONNX model") through child loggers
# (tf2onnx.tfonnx, ...), which a filter on the parent does not see; the parent's level does hold.
console.hold_info("tf2onnx")

# tf2onnx's own default: the newest opset released 18 months before it (ONNX 1.10, 2021), "what
# most runtimes support"; every op of these networks (convolution, pooling, concatenation, add,
# softmax) is older.
OPSET = 15
INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"
PROVIDER = "CPUExecutionProvider"  # the report compares every format on this machine's CPU


def convert(model, image_size, opset=OPSET):
    """Keras classifier -> ``onnx.ModelProto`` (without the metadata entry)."""
    side = int(image_size)

    @tf.function
    def probabilities(images):
        return {OUTPUT_NAME: tf.cast(model(images, training=False), tf.float32)}

    spec = [tf.TensorSpec([None, side, side, 3], tf.float32, name=INPUT_NAME)]
    proto, _ = tf2onnx.convert.from_function(probabilities, input_signature=spec, opset=opset)
    return proto


def add_metadata(proto, metadata, name=METADATA_NAME):
    """Sets the ``metadata_props`` entry ``name`` to ``metadata`` as JSON; returns ``proto``."""
    kept = [p for p in proto.metadata_props if p.key != name]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    proto.metadata_props.add(
        key=name, value=json.dumps(metadata, ensure_ascii=False, sort_keys=True)
    )
    return proto


def read_metadata(path_or_session, name=METADATA_NAME):
    """The JSON metadata of an .onnx file (a path) or of an ``onnxruntime.InferenceSession``
    (a dict), or None when absent."""
    if isinstance(path_or_session, onnxruntime.InferenceSession):
        props = path_or_session.get_modelmeta().custom_metadata_map
    else:
        props = {p.key: p.value for p in onnx.load(path_or_session).metadata_props}
    return json.loads(props[name]) if name in props else None


def export(classifier, opset=OPSET):
    """``classifier`` (a ``classifier.Classifier``) -> the .onnx file's bytes, labels and
    preprocessing inside."""
    proto = convert(classifier.model, classifier.image_size, opset)
    add_metadata(proto, formats.file_metadata(classifier, "fp32", formats.FLOAT_INPUT))
    return proto.SerializeToString()


class OnnxRunner(formats.MetadataRunner):
    """Runs an .onnx classifier on ONNX Runtime: float images in, probabilities out
    (``formats.Runner``); labels, crop and dataset from the file's metadata_props."""

    def __init__(self, path, num_threads=None):
        options = onnxruntime.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = int(num_threads)
        self.path = path
        self.session = onnxruntime.InferenceSession(path, options, providers=[PROVIDER])
        self.metadata = read_metadata(self.session)
        self._input = self.session.get_inputs()[0]

    @property
    def image_size(self):
        return int(self._input.shape[1])

    def predict(self, images, batch_size=agreement.BATCH):
        """float32 [N, S, S, 3] in [-1, 1] -> probabilities float32 [N, C]."""
        images = formats.check_images(images, self._input.shape[1:])
        return agreement.batched(
            lambda x: self.session.run([OUTPUT_NAME], {self._input.name: x})[0], images, batch_size
        )


class OnnxFormat(formats.Format):
    name = kind = "onnx"
    extra = EXTRA
    noun = "an .onnx file"
    suffix = ".onnx"

    def filename(self, inputs):
        return f"{inputs.name}{self.suffix}"

    def write(self, inputs, path):
        fileio.write_bytes(path, export(inputs.classifier))

    def open(self, path, num_threads=formats.THREADS):
        return OnnxRunner(path, num_threads=num_threads)

    def find(self, path):
        return path if path.endswith(self.suffix) and os.path.isfile(path) else None

    def fields(self, inputs, runner, reference):
        return {
            "runtime": f"onnxruntime.InferenceSession ({PROVIDER})",
            "opset": OPSET,
            "converter": f"tf2onnx {tf2onnx.__version__}",
            "threads": formats.THREADS,
        }


FORMATS = {"onnx": OnnxFormat()}
