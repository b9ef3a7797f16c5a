"""The export formats behind one interface, and the registry that finds them by name.

A format is a ``Format`` object: it refuses what it cannot write (``check``), names its file
(``filename``), writes itself (``write``), opens a runner on what it wrote (``open``: a context
manager whose ``predict`` maps float32 images [N, S, S, 3] to probabilities [N, C]) and adds its
own fields to its report row (``fields``); the exporter measures every runner the same way
(``report.Reference.measure``). A servable format (a SavedModel) is published alone as
``OUT/<name><base_suffix>/<version>`` (TF Serving serves one model per base directory: the float32
SavedModel's suffix is "", the bfloat16 one's "-bf16"); the others are files of
``OUT/<name>-artifacts/<version>``.

``EXPORT_FORMATS`` (below) maps each format name to its module here; the module's
``FORMATS`` dict maps the name to the object. A new format is one module and one line there.
"""

import abc
import contextlib
import dataclasses
import importlib
import os

import numpy as np

from inception.networks import EVAL_CENTRAL_FRACTION

# The export formats by name, each with the module of ``inception/export/`` that writes it (the
# module's ``FORMATS`` maps the name to its ``Format``; ``load`` below loads it).
# A new format is one module there (or one class in one) and one line here: in the default
# formats, or in the opt-in ones that only ``--formats`` naming them writes.
TFLITE_VARIANTS = ("fp32", "fp16", "dynamic", "int8")
_DEFAULT_FORMATS = {
    "saved_model": "saved_model",
    **{f"tflite_{variant}": "tflite" for variant in TFLITE_VARIANTS},
    "onnx": "onnx",
}
_OPT_IN_FORMATS = {
    "saved_model_bf16": "saved_model",
}
EXPORT_FORMATS = {**_DEFAULT_FORMATS, **_OPT_IN_FORMATS}
DEFAULT_EXPORT_FORMATS = tuple(_DEFAULT_FORMATS)
INT8_IO = ("float", "int8")


def check_export_formats(formats):
    """The requested formats, each once, in the given order; ValueError for an unknown one."""
    formats = tuple(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown or not formats:
        raise ValueError(f"unknown --formats {unknown or list(formats)}; choose from "
                         f"{', '.join(EXPORT_FORMATS)}")
    return formats


# Every runtime is measured on every core, as TensorFlow runs by default (LiteRT's interpreter
# would take one thread, ONNX Runtime one per physical core).
THREADS = os.cpu_count() or 1
# The metadata entry every self-contained model file carries (``file_metadata``): a TFLite
# flatbuffer's metadata table, an ONNX model's metadata_props.
METADATA_NAME = "inception_export"


@dataclasses.dataclass
class Inputs:
    """What every format may read while it writes itself."""
    source: object  # an ExportSource: model, labels, image size, the run record
    name: str  # the model name: OUT/<name>
    options: object  # an ExportOptions (``inception.export.config``, which imports this module)
    scratch: str  # a local directory for intermediate files, removed after the export
    calibration_images: np.ndarray | None = None  # float32 [N, S, S, 3] training images
    warmup_images: list | None = None  # encoded images TF Serving replays at load
    _shared: dict = dataclasses.field(default_factory=dict)

    def shared(self, key, write):
        """A scratch directory written once by ``write(directory)`` and shared by every format
        that asks for ``key`` (the float SavedModel the TFLite variants convert from)."""
        if key not in self._shared:
            directory = os.path.join(self.scratch, key)
            os.makedirs(directory)
            write(directory)
            self._shared[key] = directory
        return self._shared[key]


class Format(abc.ABC):
    """One export format; subclasses set ``name`` and implement ``write`` and ``open``, and
    ``filename`` unless ``servable``."""
    name = None
    servable = False  # True: published alone as OUT/<name><base_suffix>/<version>, a servable
    base_suffix = ""  # of a servable: its base directory OUT/<name><base_suffix> (TF Serving's)
    needs_calibration = False  # True: reads Inputs.calibration_images

    def check(self, inputs):
        """Raises ValueError for what cannot be written, before anything is."""

    def filename(self, inputs):
        """The file name inside OUT/<name>-artifacts/<version>."""
        raise TypeError(f"the {self.name} format publishes a directory and names no file")

    @abc.abstractmethod
    def write(self, inputs, path):
        """Writes the format's file (or, if ``servable``, directory) at ``path``."""

    @abc.abstractmethod
    def open(self, path):
        """A context manager giving a runner with ``predict(images) -> probabilities``."""

    def fields(self, inputs, runner, reference):
        """The format's own fields of its report row."""
        return {}


# The pyproject extra that brings each format module's packages.
_EXTRAS = {"saved_model": "serving", "tflite": "tflite", "onnx": "onnx"}


def load(name):
    """The ``Format`` registered as ``name``; ValueError naming a missing package."""
    check_export_formats([name])
    try:
        module = importlib.import_module(f"inception.export.{EXPORT_FORMATS[name]}")
    except ModuleNotFoundError as err:
        if err.name and err.name.split(".")[0] == "inception":
            raise
        extra = _EXTRAS.get(EXPORT_FORMATS[name], "all")
        raise ValueError(f"--formats={name} needs the Python package {err.name!r}, which is not "
                         f"installed: pip install 'inception[{extra}]', or leave {name} out of "
                         "--formats") from err
    return module.FORMATS[name]


def load_all(names):
    return [load(name) for name in check_export_formats(names)]


def file_metadata(source, variant, input_description, int8_io=None,
                  central_fraction=EVAL_CENTRAL_FRACTION):
    """What a self-contained model file (TFLite, ONNX) carries so a device needs nothing else:
    the class names in index order, the input size and the preprocessing."""
    return {
        "labels": list(source.labels),
        "image_size": source.image_size,
        "input": input_description,
        "output": "class probabilities [N, C]",
        "preprocessing": {"central_fraction": central_fraction, "resize": "bilinear",
                          "range": [-1.0, 1.0]},
        "variant": variant,
        "dataset": source.run_record.get("dataset"),
        "int8_io": int8_io,
    }


FLOAT_INPUT = "float32 RGB [N, S, S, 3] scaled to [-1, 1]"


def check_images(images, shape):
    """``images`` as a float32 array [N, *shape] (``shape``: the runner's [S, S, 3]), N >= 1,
    every value finite; ValueError saying what is wrong otherwise. The runners call it before
    the interpreter sees anything: a wrong shape, an integer image or a NaN would otherwise
    reach the interpreter (an empty batch ended in numpy's "need at least one array")."""
    shape = tuple(int(d) for d in shape)
    want = f"[N, {', '.join(map(str, shape))}]"
    try:
        array = np.asarray(images)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"expected images {want} ({FLOAT_INPUT}); got no array ({err})") from None
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"expected floating-point images {want} ({FLOAT_INPUT}); got dtype "
                         f"{array.dtype}")
    if array.ndim != 4 or array.shape[1:] != shape:
        raise ValueError(f"expected images {want}; got shape {list(array.shape)}")
    if not len(array):
        raise ValueError(f"expected images {want} with N >= 1; got an empty batch")
    bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise ValueError(f"the images hold {bad} NaN or infinite value(s)")
    return array.astype(np.float32, copy=False)


def opened(runner):
    """A context manager for a runner that holds nothing to close."""
    return contextlib.nullcontext(runner)
