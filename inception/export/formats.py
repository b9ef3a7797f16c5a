"""The export formats behind one interface, and the registry that finds them by name.

``EXPORT_FORMATS`` (below) maps each format name to its module here; the module's
``FORMATS`` dict maps the name to its ``Format`` object. This registry is the only place that
knows the formats: the exporter writes and measures them, ``inception-predict``
(``inception.prediction``) finds and runs their files, ``load`` names their missing packages.

A new format is one module here and one registry line (``"<name>": "<module>"`` in
``EXPORT_FORMATS`` below: among the default formats or the opt-in ones). The module:

- imports its optional packages inside ``with formats.packages_of(EXTRA):`` (``EXTRA``: the
  pyproject extra that installs them), so that a missing one is named with its extra;
- quiets its libraries' console noise itself (``console.hold_info(logger)`` when it loads, for a
  converter that logs INFO lines; ``console.quiet_cpp_output(its pattern)`` around a call whose
  C++ code prints past logging);
- defines a ``Runner`` subclass (below), the one runner of its files: the export's agreement
  check and ``inception-predict`` both run the format through it;
- defines a ``Format`` subclass and ``FORMATS = {name: instance}``. The subclass sets ``name``,
  ``kind`` (its file kind: formats of one kind share a runner), ``extra`` (= ``EXTRA``),
  ``noun`` ("an .onnx file": for messages) and implements ``write`` (the writer), ``open`` (the
  runner on what it wrote), ``find`` (does a path given to ``inception-predict`` hold this kind?)
  and, unless ``servable``, ``filename``; optionally ``check``, ``fields``, ``needs_calibration``
  and ``decodes`` (its runner takes encoded images).

tests/test_export_job.py checks every registered format against this list; the format's own
tests go in tests/test_export_<module>.py, on the shared export of tests/export_fixtures.py.

A servable format (a SavedModel) is published alone as ``OUT/<name><base_suffix>/<version>`` (TF
Serving serves one model per base directory: the float32 SavedModel's suffix is "", the bfloat16
one's "-bf16"); the others are files of ``OUT/<name>-artifacts/<version>``. The exporter measures
every runner the same way (``agreement.Reference.measure``).
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
        raise ValueError(
            f"unknown --formats {unknown or list(formats)}; choose from {', '.join(EXPORT_FORMATS)}"
        )
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

    classifier: object  # a classifier.Classifier: model, labels, image size, the run record
    name: str  # the model name: OUT/<name>
    options: object  # an ExportOptions (``inception.export.config``, which imports this module)
    scratch: str  # a local directory for intermediate files, removed after the export
    calibration_images: np.ndarray | None = None  # float32 [N, S, S, 3] training images
    # The images every format is compared on (an agreement.AgreementImages, or None); a format
    # may read them too (the SavedModel's TF Serving warmup file replays a few).
    agreement_images: object = None
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


class Runner(abc.ABC):
    """A format's model, opened: what the export's agreement check and ``inception-predict`` run.

    ``predict(images)`` maps float32 images [N, S, S, 3] scaled to [-1, 1] to probabilities
    [N, C]. ``labels`` (class names in index order, or None), ``image_size`` (S) and ``dataset``
    come from the file. ``central_fraction`` is the eval crop to preprocess with; None when the
    model decodes and preprocesses encoded images itself (``decodes``): then
    ``predict_encoded(blob)`` answers one encoded image (probabilities [C]) and raises
    ``tf.errors.InvalidArgumentError`` for one it refuses. A runner is a context manager;
    ``close`` frees what it holds."""

    labels = None
    image_size = None
    dataset = None
    central_fraction = EVAL_CENTRAL_FRACTION
    decodes = False

    @abc.abstractmethod
    def predict(self, images):
        """Probabilities [N, C] of float32 images [N, S, S, 3] (``check_images``' form)."""

    def predict_encoded(self, encoded):
        raise TypeError(f"{type(self).__name__} takes preprocessed images, not encoded ones")

    def close(self):  # noqa: B027 (optional: most runners hold nothing to free)
        """Frees what the runner holds (nothing, unless a subclass says)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class MetadataRunner(Runner):
    """A runner of a self-contained file (TFLite, ONNX): labels, crop and dataset from the
    ``METADATA_NAME`` entry it carries (``file_metadata``); ``metadata`` is None without one."""

    metadata = None

    @property
    def labels(self):
        return list(self.metadata["labels"]) if self.metadata else None

    @property
    def central_fraction(self):
        meta = self.metadata or {}
        return meta.get("preprocessing", {}).get("central_fraction", EVAL_CENTRAL_FRACTION)

    @property
    def dataset(self):
        return (self.metadata or {}).get("dataset")


class Format(abc.ABC):
    """One export format; subclasses set ``name``, ``kind``, ``extra`` and ``noun`` and
    implement ``write``, ``open`` and ``find``, and ``filename`` unless ``servable``."""

    name = None
    kind = None  # the file kind (``inception-predict`` reports it); one runner and ``find`` each
    extra = None  # the pyproject extra that installs the packages of the format's module
    noun = None  # the file kind for messages: "a .tflite file"
    servable = False  # True: published alone as OUT/<name><base_suffix>/<version>, a servable
    base_suffix = ""  # of a servable: its base directory OUT/<name><base_suffix> (TF Serving's)
    needs_calibration = False  # True: reads Inputs.calibration_images
    decodes = False  # True: its runner decodes and preprocesses encoded images itself

    def check(self, inputs):  # noqa: B027 (optional: most formats can write anything)
        """Raises ValueError for what cannot be written, before anything is."""

    def filename(self, inputs):
        """The file name inside OUT/<name>-artifacts/<version>."""
        raise TypeError(f"the {self.name} format publishes a directory and names no file")

    @abc.abstractmethod
    def write(self, inputs, path):
        """Writes the format's file (or, if ``servable``, directory) at ``path``."""

    @abc.abstractmethod
    def open(self, path, num_threads=THREADS):
        """The format's ``Runner`` on ``path`` (``num_threads``: its runtime's, where it has
        one; None: the runtime's default)."""

    @abc.abstractmethod
    def find(self, path):
        """The path to ``open`` when ``path`` holds a model of this kind (the file itself, a
        version directory), else None. Looks at names only: opens no file."""

    def fields(self, inputs, runner, reference):
        """The format's own fields of its report row."""
        return {}


class MissingPackage(ImportError):
    """A format module's optional package is not installed (``packages_of``)."""

    def __init__(self, package, extra):
        super().__init__(
            f"the Python package {package!r} is not installed: pip install 'inception[{extra}]'"
        )
        self.package, self.extra = package, extra


@contextlib.contextmanager
def packages_of(extra):
    """Around a format module's imports of its optional packages: a missing one raises
    ``MissingPackage`` naming ``extra``, the pyproject extra that installs it."""
    try:
        yield
    except ModuleNotFoundError as err:
        if err.name and err.name.split(".")[0] in ("inception", "inception_cli"):
            raise
        raise MissingPackage(err.name, extra) from err


def load(name):
    """The ``Format`` registered as ``name``; ValueError naming a missing package."""
    check_export_formats([name])
    try:
        module = importlib.import_module(f"inception.export.{EXPORT_FORMATS[name]}")
    except MissingPackage as err:
        raise ValueError(
            f"--formats={name} needs the Python package {err.package!r}, which is "
            f"not installed: pip install 'inception[{err.extra}]', or leave {name} "
            "out of --formats"
        ) from err
    return module.FORMATS[name]


def load_all(names):
    return [load(name) for name in check_export_formats(names)]


def kinds():
    """Yields (kind, the first registered Format of that kind: the one that opens its files),
    in registry order, importing each module only when reached; a module whose packages are
    missing yields (its module name, the ``MissingPackage``)."""
    seen = set()
    for name, module_name in EXPORT_FORMATS.items():
        try:
            module = importlib.import_module(f"inception.export.{module_name}")
        except MissingPackage as err:
            if module_name not in seen:
                seen.add(module_name)
                yield module_name, err
            continue
        fmt = module.FORMATS[name]
        if fmt.kind not in seen:
            seen.add(fmt.kind)
            yield fmt.kind, fmt


def file_metadata(
    classifier, variant, input_description, int8_io=None, central_fraction=EVAL_CENTRAL_FRACTION
):
    """What a self-contained model file (TFLite, ONNX) carries so a device needs nothing else:
    the class names in index order, the input size and the preprocessing."""
    return {
        "labels": list(classifier.labels),
        "image_size": classifier.image_size,
        "input": input_description,
        "output": "class probabilities [N, C]",
        "preprocessing": {
            "central_fraction": central_fraction,
            "resize": "bilinear",
            "range": [-1.0, 1.0],
        },
        "variant": variant,
        "dataset": classifier.run_record.get("dataset"),
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
        raise ValueError(
            f"expected floating-point images {want} ({FLOAT_INPUT}); got dtype {array.dtype}"
        )
    if array.ndim != 4 or array.shape[1:] != shape:
        raise ValueError(f"expected images {want}; got shape {list(array.shape)}")
    if not len(array):
        raise ValueError(f"expected images {want} with N >= 1; got an empty batch")
    bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise ValueError(f"the images hold {bad} NaN or infinite value(s)")
    return array.astype(np.float32, copy=False)
