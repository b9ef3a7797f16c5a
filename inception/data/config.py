"""The typed, frozen configuration of a dataset and its training crops: ``DataConfig``, the
``data`` section of a training config (``inception.train.config.TrainConfig``) and what
``InputPipeline`` reads, with its fields' checks and messages.

Pure Python (``inception.checks``): commands check these flags before TensorFlow loads, and
``inception.data``'s ``__init__`` loads nothing until a name is used.
"""

import dataclasses

from inception import checks

# The --color_distortion choices: preprocessing's three, and "default" (the dataset's own,
# ``catalogue.train_preprocessing_defaults``).
COLOR_DISTORTIONS = ("fast", "full", "none", "default")


def parse_area_range(value):
    """'lo,hi' (the flag's form), a (lo, hi) pair or None/''/() -> (lo, hi) floats or None."""
    if value is None or len(value) == 0:
        return None
    parts = value.split(",") if isinstance(value, str) else value
    return tuple(float(str(p).strip()) for p in parts)


def _check_area_range(value):
    try:
        pair = parse_area_range(value)
    except ValueError:
        return False
    return pair is None or (len(pair) == 2 and 0.0 < pair[0] <= pair[1] <= 1.0)


# One value each: name -> (check, message), ``inception.checks``' convention; the training
# config's table (and so the flags' validators) includes these.
FIELD_CHECKS = {
    "dataset": checks.not_empty(),
    "area_range": (
        _check_area_range,
        "--area_range must be 'lo,hi' with 0 < lo <= hi <= 1 (e.g. 0.05,1.0)",
    ),
    "min_object_covered": (
        lambda v: v < 0 or v <= 1.0,
        "--min_object_covered must be in [0, 1] (or < 0 for the dataset default)",
    ),
    "color_distortion": checks.one_of(COLOR_DISTORTIONS),
}


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """The dataset (TFDS name) and the training crops; empty/negative: the dataset's default."""

    dataset: str = "imagenet2012"
    data_dir: str = "data"
    manual_dir: str = ""  # empty: <data_dir>/downloads/manual
    download: bool = False
    area_range: tuple = None
    min_object_covered: float = -1.0
    color_distortion: str = "default"

    def __post_init__(self):
        checks.check_types(self)
        for field in dataclasses.fields(self):
            checks.check_field(FIELD_CHECKS, field.name, getattr(self, field.name))
        object.__setattr__(self, "area_range", parse_area_range(self.area_range))
