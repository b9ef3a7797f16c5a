"""The typed, frozen configuration of an evaluation: ``EvaluateConfig`` (models, crop protocols,
data, devices), with its checks and messages.

``inception_cli.evaluate`` turns absl flags into one; ``inception.evaluation.job.run`` reads one.
The device fields are training's (``inception.train.config``) and are checked by its checks, so
a bad ``--strategy`` reads the same in both commands. Pure Python: the command checks its flags
before TensorFlow loads.
"""

import dataclasses
import os
from typing import ClassVar

from inception import checks, fileio, paths
from inception.networks import EVAL_CENTRAL_FRACTION
from inception.runfiles import RUN_FILES
from inception.train import config as train_config

# The paper's evaluation protocols (Tables 2-5), by number of crops per image (``crops`` has
# each one's geometry).
PROTOCOLS = (1, 10, 12, 144)


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """One evaluation (``inception.evaluation.job.run``) of ``models`` (training run directories
    and/or .keras files; two or more also as an ensemble) under the crop ``protocols``.

    ``dataset``/``data_dir`` default to the first run's (else imagenet2012 under 'data');
    ``batch_size`` 0 means about 256 crops per replica; ``max_images`` 0 means the whole split."""

    models: tuple
    protocols: tuple = PROTOCOLS
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
    # A field whose flag has another name (a ClassVar: not a field itself).
    FLAG_NAMES: ClassVar[dict[str, str]] = {"protocols": "crops"}

    def __post_init__(self):
        checks.check_types(self, self.FLAG_NAMES, strings_ok=False)
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "protocols", tuple(self.protocols))
        if not self.models:
            raise ValueError("--models is required: training run directories and/or .keras files")
        for path in self.models:
            _check_model_path(path)
        bad = [p for p in self.protocols if p not in PROTOCOLS]
        if bad or not self.protocols:
            raise ValueError(
                f"--crops: unknown protocol(s) {bad}; choose from {', '.join(map(str, PROTOCOLS))}"
            )
        if len(set(self.protocols)) != len(self.protocols):
            raise ValueError(
                f"--crops lists a protocol twice: {','.join(map(str, self.protocols))}"
            )
        self._check_run_options()

    def _check_run_options(self):
        for field in ("batch_size", "max_images"):
            if getattr(self, field) < 0:
                raise ValueError(f"--{field} must be >= 0; got {getattr(self, field)}")
        if not 0.0 < self.central_fraction <= 1.0:
            raise ValueError(f"--central_fraction must be in (0, 1]; got {self.central_fraction}")
        self._check_devices()
        if not self.output.strip() or os.path.isdir(self.output):
            raise ValueError(f"--output must be a file path; got {self.output!r}")
        if self.save_probabilities and not self.save_probabilities.endswith(".npz"):
            raise ValueError(
                f"--save_probabilities must name a .npz file; got {self.save_probabilities!r}"
            )
        paths.output_file("output", self.output, "results file")
        paths.output_file("save_probabilities", self.save_probabilities, ".npz file")
        paths.optional_dir("data_dir", self.data_dir, "data directory")
        paths.optional_dir("manual_dir", self.manual_dir, "directory of archives")

    def _check_devices(self):
        """strategy, tpu and num_cpu_devices: the training run section's checks and messages."""
        devices = {name: getattr(self, name) for name in ("strategy", "tpu", "num_cpu_devices")}
        for name, value in devices.items():
            checks.check_field(train_config.FIELD_CHECKS, name, value)
        for names in (("strategy", "tpu"), ("strategy", "num_cpu_devices")):
            checks.check_cross(train_config.CROSS_CHECKS, names, devices)


def _check_model_path(path):
    """A finished training run directory (RUN_FILES) or an existing .keras file, on any
    TensorFlow file system (``gs://`` paths are read through ``tf.io.gfile``, which loads
    TensorFlow; a local path does not)."""
    if fileio.isdir(path):
        missing = [n for n in RUN_FILES if not fileio.exists(fileio.join(path, n))]
        if missing:
            raise ValueError(
                f"--models: {path} is a directory but not a finished training run "
                f"(missing {', '.join(missing)})"
            )
    elif not path.endswith(".keras"):
        raise ValueError(f"--models: {path} is neither a training run directory nor a .keras file")
    elif not fileio.exists(path):
        raise ValueError(f"--models: no such .keras file: {path}")
