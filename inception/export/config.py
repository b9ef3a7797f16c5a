"""The typed, frozen configuration of an export: ``ExportOptions`` (what is written and how it
is measured) and ``ExportConfig`` (one export of a run directory or a .keras file), with their
checks and messages.

``inception_cli.export`` turns absl flags into an ``ExportConfig``; ``inception.export.job.run``
reads one. Pure Python, no TensorFlow (the formats' names come from ``formats``' registry, which
loads no format module): the command checks its flags before TensorFlow loads.
"""

import dataclasses
import re

from inception import checks, paths
from inception.export.formats import DEFAULT_EXPORT_FORMATS, INT8_IO, check_export_formats

# The served model decodes at most this many pixels (read from the header before decoding): 64
# megapixels, far above any photo a classifier needs, far below what exhausts memory (decoding
# holds 3 bytes per pixel plus the float copy of the crop). The default of ``max_pixels`` here,
# in ``decoding`` and in the SavedModel; the flags read it before TensorFlow loads.
MAX_PIXELS = 64 * 1024 * 1024
EXPORT_TOP_K = 5  # classes in the SavedModel's top-k outputs (and inception-predict's default)
# The model name becomes the directory TF Serving serves: a file name that is not a number (the
# version directories are numbers).
_EXPORT_NAME = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.\-]*$")


def check_export_name(name):
    if not _EXPORT_NAME.match(name or "") or name.isdigit() or name.startswith("."):
        raise ValueError(
            f"--name {name!r} must be a non-numeric file name of letters, digits, "
            "'_', '-' or '.' (it becomes the directory TF Serving serves)"
        )
    return name


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """What an export writes and how it measures it (``inception.export.exporter.run_export``):
    the ``formats`` (default: all but the opt-in ones), the ``version`` (default: one more than
    the highest present), the int8 TFLite file's input/output type, the SavedModel's ``top_k``
    outputs and ``max_pixels`` decoding limit, and the timed batch-1 runs per format in the
    report."""

    formats: tuple = DEFAULT_EXPORT_FORMATS
    version: int | None = None
    int8_io: str = "float"
    top_k: int = EXPORT_TOP_K
    max_pixels: int = MAX_PIXELS
    latency_repeats: int = 20

    def __post_init__(self):
        checks.check_types(self, strings_ok=False)
        object.__setattr__(self, "formats", check_export_formats(self.formats))
        if self.version is not None and self.version < 1:
            raise ValueError(f"--version must be a positive integer; got {self.version}")
        if self.int8_io not in INT8_IO:
            raise ValueError(f"--int8_io must be one of {', '.join(INT8_IO)}; got {self.int8_io!r}")
        for field in ("top_k", "max_pixels", "latency_repeats"):
            if getattr(self, field) < 1:
                raise ValueError(f"--{field} must be positive; got {getattr(self, field)}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExportConfig(ExportOptions):
    """One export (``inception.export.job.run``): a training run directory (``model_dir``) or a
    .keras file (``keras_model`` with optional ``labels``) -> ``export_dir``/<name>/<version>,
    written as its ``ExportOptions`` say.

    ``dataset``/``data_dir`` default to the run's; ``eval_images`` validation images feed the
    agreement report (0: none), ``calibration_images`` training images calibrate int8."""

    export_dir: str
    model_dir: str | None = None
    keras_model: str | None = None
    labels: str | None = None
    name: str | None = None
    dataset: str | None = None
    data_dir: str | None = None
    calibration_images: int = 200
    eval_images: int = 1000

    def __post_init__(self):
        checks.check_types(self, strings_ok=False)
        if bool(self.model_dir) == bool(self.keras_model):
            raise ValueError(
                "give exactly one of --model_dir (a training run) or --keras_model (a .keras file)"
            )
        if not self.export_dir.strip():
            raise ValueError("--export_dir is required")
        super().__post_init__()
        if self.name is not None:
            check_export_name(self.name)
        if self.calibration_images < 1:
            raise ValueError(
                f"--calibration_images must be positive; got {self.calibration_images}"
            )
        if self.eval_images < 0:
            raise ValueError(f"--eval_images must be >= 0; got {self.eval_images}")
        paths.input_dir("model_dir", self.model_dir, "training run directory")
        paths.input_file("keras_model", self.keras_model, ".keras file")
        paths.input_file("labels", self.labels, "labels file")
        paths.optional_dir("data_dir", self.data_dir, "data directory")
        paths.output_dir("export_dir", self.export_dir, "export directory")
