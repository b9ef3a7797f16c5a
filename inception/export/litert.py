"""The runner of the TFLite format (``tflite.py``): a .tflite classifier on the LiteRT
interpreter (``ai-edge-litert``), and the metadata entry every exported file carries
(``METADATA_NAME``: UTF-8 JSON with the class names, the input size and the preprocessing;
interpreters ignore it)."""

import json
import re

import numpy as np

from inception import console
from inception.export import formats
from inception.export.formats import METADATA_NAME, check_images

with formats.packages_of("tflite"):  # tflite.EXTRA
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter

# What LiteRT prints on stderr past logging when its default CPU delegate is applied (the first
# allocation): hidden by ``console.quiet_cpp_output``.
DELEGATE_NOTICE = re.compile(rb"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$")


def entry_name(value):
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
        if entry_name(entry.Name()) == name:
            raw = model.Buffers(entry.Buffer()).DataAsNumpy()
            return json.loads(bytes(raw).decode("utf-8"))
    return None


class LiteRTRunner(formats.MetadataRunner):
    """Runs a .tflite classifier on the LiteRT interpreter with float images in, probabilities out
    (``formats.Runner``); labels, crop and dataset from the file's metadata.

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
    def image_size(self):
        return int(self._input["shape_signature"][1])

    def _resize(self, batch):
        if batch != self._batch:
            self.interpreter.resize_tensor_input(
                self._input["index"], [batch, *self._input["shape"][1:]]
            )
            # The first allocation applies LiteRT's CPU delegate, which announces itself on stderr.
            with console.quiet_cpp_output(DELEGATE_NOTICE):
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
        images = check_images(images, self._input["shape_signature"][1:])
        outputs = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            self._resize(len(chunk))
            self.interpreter.set_tensor(self._input["index"], self._quantise(chunk))
            self.interpreter.invoke()
            outputs.append(self._dequantise(self.interpreter.get_tensor(self._output["index"])))
        return np.concatenate(outputs, axis=0)
