"""Typed, frozen configuration of everything the library runs: model, data, recipe, run, export.

The library reads only these dataclasses; the command-line entry points (``inception_cli``) turn
absl flags into them, and a Python user builds them directly.
"""

import dataclasses
import os

# ---------------------------------------------------------------------------------------------
# Training: model, data, recipe, run.
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Export and evaluation.
# ---------------------------------------------------------------------------------------------

# The run directory a finished training leaves, as export and evaluation read it.
RUN_FILES = ("ema_model.keras", "labels.txt", "run_config.json")
EMA_MODEL, LABELS_FILE, RUN_CONFIG = RUN_FILES
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker_mirrored", "tpu")

TFLITE_VARIANTS = ("fp32", "fp16", "dynamic", "int8")
INT8_IO = ("float", "int8")
EXPORT_FORMATS = ("saved_model",) + tuple(f"tflite_{v}" for v in TFLITE_VARIANTS)
# The served model decodes at most this many pixels (read from the header before decoding): 64
# megapixels, far above any photo a classifier needs, far below what exhausts memory (decoding
# holds 3 bytes per pixel plus the float copy of the crop).
MAX_PIXELS = 64 * 1024 * 1024
EXPORT_TOP_K = 5  # classes in the SavedModel's top-k outputs

# The released code's eval crop: the central 87.5% of each side (also the 1-crop protocol).
EVAL_CENTRAL_FRACTION = 0.875
# The paper's evaluation protocols (Tables 2-5), by number of crops per image.
EVAL_PROTOCOLS = (1, 10, 12, 144)


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """One export (``inception.export.job.run``): a training run directory (``model_dir``) or a
    .keras file (``keras_model`` with optional ``labels``) -> ``export_dir``/<name>/<version>.

    ``dataset``/``data_dir`` default to the run's; ``eval_images`` validation images feed the
    agreement report (0: none), ``calibration_images`` training images calibrate int8."""
    export_dir: str
    model_dir: str | None = None
    keras_model: str | None = None
    labels: str | None = None
    name: str | None = None
    version: int | None = None
    formats: tuple = EXPORT_FORMATS
    int8_io: str = "float"
    dataset: str | None = None
    data_dir: str | None = None
    calibration_images: int = 200
    eval_images: int = 1000
    top_k: int = EXPORT_TOP_K
    max_pixels: int = MAX_PIXELS
    latency_repeats: int = 20

    def __post_init__(self):
        object.__setattr__(self, "formats", tuple(self.formats))
        if bool(self.model_dir) == bool(self.keras_model):
            raise ValueError("give exactly one of --model_dir (a training run) or --keras_model "
                             "(a .keras file)")
        if not self.export_dir:
            raise ValueError("--export_dir is required")
        unknown = [f for f in self.formats if f not in EXPORT_FORMATS]
        if unknown or not self.formats:
            raise ValueError(f"unknown --formats {unknown}; choose from {', '.join(EXPORT_FORMATS)}")
        if self.int8_io not in INT8_IO:
            raise ValueError(f"--int8_io must be one of {', '.join(INT8_IO)}; got {self.int8_io!r}")
        for field in ("calibration_images", "eval_images", "top_k", "max_pixels", "latency_repeats"):
            if getattr(self, field) < (0 if field == "eval_images" else 1):
                raise ValueError(f"--{field} must be positive; got {getattr(self, field)}")
        if self.version is not None and self.version < 1:
            raise ValueError(f"--version must be a positive integer; got {self.version}")


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """One evaluation (``inception.evaluation.job.run``) of ``models`` (training run directories
    and/or .keras files; two or more also as an ensemble) under the crop ``protocols``.

    ``dataset``/``data_dir`` default to the first run's (else imagenet2012 under 'data');
    ``batch_size`` 0 means about 256 crops per replica; ``max_images`` 0 means the whole split."""
    models: tuple
    protocols: tuple = EVAL_PROTOCOLS
    dataset: str | None = None
    data_dir: str | None = None
    manual_dir: str | None = None
    output: str = "eval.json"
    save_probabilities: str | None = None
    batch_size: int = 0
    max_images: int = 0
    central_fraction: float = EVAL_CENTRAL_FRACTION
    strategy: str = "auto"
    tpu: str = ""
    num_cpu_devices: int = 0
    progress: bool = True

    def __post_init__(self):
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "protocols", tuple(self.protocols))
        if not self.models:
            raise ValueError("--models is required: training run directories and/or .keras files")
        for path in self.models:
            _check_model_path(path)
        bad = [p for p in self.protocols if p not in EVAL_PROTOCOLS]
        if bad or not self.protocols:
            raise ValueError(f"--crops: unknown protocol(s) {bad}; choose from "
                             f"{', '.join(map(str, EVAL_PROTOCOLS))}")
        if len(set(self.protocols)) != len(self.protocols):
            raise ValueError(f"--crops lists a protocol twice: {','.join(map(str, self.protocols))}")
        self._check_run_options()

    def _check_run_options(self):
        for field in ("batch_size", "max_images", "num_cpu_devices"):
            if getattr(self, field) < 0:
                raise ValueError(f"--{field} must be >= 0; got {getattr(self, field)}")
        if not 0.0 < self.central_fraction <= 1.0:
            raise ValueError(f"--central_fraction must be in (0, 1]; got {self.central_fraction}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}; "
                             f"got {self.strategy!r}")
        if self.strategy == "tpu" and not self.tpu:
            raise ValueError("--strategy=tpu needs --tpu=NAME")
        if self.num_cpu_devices > 1 and self.strategy not in ("mirrored", "auto"):
            raise ValueError("--num_cpu_devices > 1 only makes sense with --strategy=mirrored")
        if not self.output.strip() or os.path.isdir(self.output):
            raise ValueError(f"--output must be a file path; got {self.output!r}")
        if self.save_probabilities and not self.save_probabilities.endswith(".npz"):
            raise ValueError(f"--save_probabilities must name a .npz file; got "
                             f"{self.save_probabilities!r}")


def _check_model_path(path):
    """A finished training run directory (RUN_FILES) or an existing .keras file."""
    if os.path.isdir(path):
        missing = [n for n in RUN_FILES if not os.path.isfile(os.path.join(path, n))]
        if missing:
            raise ValueError(f"--models: {path} is a directory but not a finished training run "
                             f"(missing {', '.join(missing)})")
    elif not path.endswith(".keras"):
        raise ValueError(f"--models: {path} is neither a training run directory nor a .keras file")
    elif not os.path.isfile(path):
        raise ValueError(f"--models: no such .keras file: {path}")
