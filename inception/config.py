"""Typed, frozen configuration of everything the library runs: model, data, recipe, run, export.

The library reads only these dataclasses; the command-line entry points (``inception_cli``) turn
absl flags into them, and a Python user builds them directly.
"""

import dataclasses

from inception import networks as _networks  # the constants' one place

# ---------------------------------------------------------------------------------------------
# Training: model, data, recipe, run.
# ---------------------------------------------------------------------------------------------
# Field names are the command-line flag names of ``inception_cli.train_flags`` (``to_flat`` and
# ``from_flat`` map one to the other); defaults are the paper's ImageNet recipe (docs/paper.md).
# The validation messages name the flags, since most configs come from a command line.

MODES = ("train_and_eval", "train", "eval")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker_mirrored", "tpu")
LR_SCALINGS = ("linear", "sqrt", "none")
COLOR_DISTORTIONS = ("fast", "full", "none", "default")
# The block names of each network family (the exact list, which depends on the variant, is
# checked in ``inception.train.plan.check_runtime`` before anything is built).
_BLOCK_NAME = {
    "inception_v4": r"stem|inception_[abc]_[1-9][0-9]*|reduction_[ab]",
    "inception_resnet_v1": r"stem|inception_resnet_[abc]_[1-9][0-9]*|reduction_[ab]",
    "inception_resnet_v2": r"stem|inception_resnet_[abc]_[1-9][0-9]*|reduction_[ab]|conv_7b",
}


def parse_area_range(value):
    """'lo,hi' (the flag's form), a (lo, hi) pair or None/'' -> (lo, hi) floats or None."""
    if value is None or value == "":
        return None
    parts = value.split(",") if isinstance(value, str) else value
    return tuple(float(str(p).strip()) for p in parts)


def parse_residual_scales(value):
    """['0.17', '0.10', '0.20'] (the flag's form), numbers, 'a,b,c' or None/empty -> floats or
    None (the released scales)."""
    if value is None or len(value) == 0:
        return None
    parts = value.split(",") if isinstance(value, str) else value
    return tuple(float(p) for p in parts)


def _positive(kind="a positive number"):
    return lambda v: v > 0, "--{name} must be " + kind


def _at_least_zero(advice=""):
    return lambda v: v >= 0, "--{name} must be >= 0" + advice


def _in_range(lo, hi, lo_open=False, hi_open=True):
    def check(v):
        return (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)

    interval = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    return check, "--{name} must be in " + interval


def _one_of(values):
    return lambda v: v in values, "--{name} must be one of " + ", ".join(values)


def _not_empty():
    return lambda v: bool(v.strip()), "--{name} must not be empty"


def _check_area_range(value):
    try:
        pair = parse_area_range(value)
    except ValueError:
        return False
    return pair is None or (len(pair) == 2 and 0.0 < pair[0] <= pair[1] <= 1.0)


def _check_residual_scales(value):
    try:
        scales = parse_residual_scales(value)
    except ValueError:
        return False
    return scales is None or (len(scales) == 3 and all(s > 0 for s in scales))


def _check_init_weights(path):
    # A TF checkpoint is named by its prefix (the files are <prefix>.index, <prefix>.data-*).
    import os

    if not path or path == "imagenet" or os.path.exists(path) or os.path.exists(path + ".index"):
        return True
    raise ValueError(f"--init_weights={path!r}: no such file (give a weights file, a checkpoint "
                     "prefix, 'imagenet', or leave it empty)")


def _check_freeze_up_to(values):
    import re

    name, model = values["freeze_up_to"], values["model"]
    if not name or model not in _BLOCK_NAME or re.fullmatch(_BLOCK_NAME[model], name):
        return True
    example = "inception_a_2" if model == "inception_v4" else "inception_resnet_a_2"
    raise ValueError(f"--freeze_up_to={name!r} is not a block name of --model={model}; names look "
                     f"like stem, {example}, reduction_a, reduction_b (see models.block_names)")


# One value each: name -> (check, message). A check returns False (the message is raised) or
# raises ValueError with a message of its own. ``inception_cli.train_flags`` registers the same
# checks as flag validators, so a bad flag fails with this message while absl parses.
FIELD_CHECKS = {
    "mode": _one_of(MODES),
    "model": _one_of(_networks.NAMES),
    "model_dir": _not_empty(),
    "dataset": _not_empty(),
    "image_size": (lambda v: v >= _networks.MIN_IMAGE_SIZE,
                   f"--image_size must be at least {_networks.MIN_IMAGE_SIZE} (the stem and two "
                   f"reductions of every network need {_networks.MIN_IMAGE_SIZE}x"
                   f"{_networks.MIN_IMAGE_SIZE}); the paper uses {_networks.IMAGE_SIZE}"),
    "batch_size": _positive("a positive integer"),
    "eval_batch_size": _at_least_zero(" (0: use --batch_size)"),
    "epochs": _positive(),
    "steps_per_epoch": _at_least_zero(" (0: from the dataset)"),
    "width_multiplier": _positive(),
    "residual_scales": (_check_residual_scales, "--residual_scales must be three positive "
                        "numbers A,B,C (e.g. 0.17,0.10,0.20)"),
    "dropout_rate": _in_range(0.0, 1.0),
    "bn_momentum": _in_range(0.0, 1.0, lo_open=True),
    "bn_epsilon": _positive(),
    "init_weights": (_check_init_weights, ""),
    "aux_loss_weight": _at_least_zero(),
    "learning_rate": _positive(),
    "lr_reference_batch": _positive("a positive integer"),
    "lr_scaling": _one_of(LR_SCALINGS),
    "lr_decay_rate": _in_range(0.0, 1.0, lo_open=True, hi_open=False),
    "lr_decay_epochs": _positive(),
    "warmup_epochs": _at_least_zero(),
    "rmsprop_decay": _in_range(0.0, 1.0),
    "momentum": _in_range(0.0, 1.0),
    "rmsprop_epsilon": _positive(),
    "clip_norm": _at_least_zero(" (0 disables clipping)"),
    "label_smoothing": _in_range(0.0, 1.0),
    "weight_decay": _at_least_zero(),
    "ema_decay": _in_range(0.0, 1.0),
    "area_range": (_check_area_range,
                   "--area_range must be 'lo,hi' with 0 < lo <= hi <= 1 (e.g. 0.05,1.0)"),
    "min_object_covered": (lambda v: v < 0 or v <= 1.0, "--min_object_covered must be in [0, 1] "
                           "(or < 0 for the dataset default)"),
    "color_distortion": _one_of(COLOR_DISTORTIONS),
    "checkpoint_every_steps": _positive("a positive integer"),
    "keep_checkpoints": _positive("a positive integer"),
    "log_every_steps": _positive("a positive integer"),
    "died_threshold": _in_range(0.0, 1.0, lo_open=True, hi_open=False),
    "strategy": _one_of(STRATEGIES),
    "num_cpu_devices": _at_least_zero(),
}

# Several values together: (names, check of {name: value}, message); same convention.
CROSS_CHECKS = (
    (("model", "variant"),
     lambda f: not f["variant"] or f["variant"] in _networks.VARIANTS.get(f["model"], ()),
     "--variant must fit --model: inception_resnet_v2 takes 'release' or 'paper', "
     "inception_v4 and inception_resnet_v1 only 'paper' (or leave --variant empty)"),
    (("model", "freeze_up_to"), _check_freeze_up_to, ""),
    (("strategy", "tpu"), lambda f: f["strategy"] != "tpu" or bool(f["tpu"]),
     "--strategy=tpu needs --tpu=NAME (the TPU name or grpc:// address; 'local' on a TPU VM)"),
    (("strategy", "num_cpu_devices"),
     lambda f: f["num_cpu_devices"] <= 1 or f["strategy"] in ("mirrored", "auto"),
     "--num_cpu_devices > 1 only makes sense with --strategy=mirrored"),
    (("deterministic", "seed"), lambda f: not f["deterministic"] or f["seed"] >= 0,
     "--deterministic needs a non-negative --seed"),
)


def check_field(name, value):
    """Raises ValueError with the field's message when ``value`` is not valid for ``name``."""
    if name in FIELD_CHECKS:
        check, message = FIELD_CHECKS[name]
        if not check(value):
            raise ValueError(message.format(name=name))


def check_fields(names, values):
    """The cross check over ``names`` (a tuple from CROSS_CHECKS) on {name: value}."""
    for cross_names, check, message in CROSS_CHECKS:
        if cross_names == tuple(names) and not check(values):
            raise ValueError(message)


# ModelConfig.name is the flag --model (``config.model.name`` reads better than model.model).
_FLAT_NAME = {"name": "model"}
_FIELD_NAME = {v: k for k, v in _FLAT_NAME.items()}


def _flat(section):
    return {_FLAT_NAME.get(f.name, f.name): getattr(section, f.name)
            for f in dataclasses.fields(section)}


def _validate(section):
    values = _flat(section)
    for name, value in values.items():
        check_field(name, value)
    for names, _, _ in CROSS_CHECKS:
        if set(names) <= set(values):
            check_fields(names, values)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The network and the weights it starts from (README "Starting from existing weights")."""
    name: str = "inception_resnet_v2"  # the flag --model
    variant: str = ""  # empty: networks.DEFAULT_VARIANT[name]
    image_size: int = _networks.IMAGE_SIZE
    width_multiplier: float = 1.0
    residual_scales: tuple = None  # None: the released networks.RESIDUAL_SCALES
    dropout_rate: float = 0.2
    bn_momentum: float = _networks.BN_MOMENTUM
    bn_epsilon: float = _networks.BN_EPSILON
    sync_batch_norm: bool = False
    aux_logits: bool = True
    init_weights: str = ""
    init_new_head: bool = True
    freeze_up_to: str = ""
    bn_inference: bool = False

    def __post_init__(self):
        _validate(self)
        object.__setattr__(self, "residual_scales", parse_residual_scales(self.residual_scales))


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
        _validate(self)
        object.__setattr__(self, "area_range", parse_area_range(self.area_range))


@dataclasses.dataclass(frozen=True)
class RecipeConfig:
    """Batch, length, learning rate, optimizer, regularisation and the weight average."""
    batch_size: int = 256  # global, over all replicas and hosts
    eval_batch_size: int = 0  # 0: batch_size
    epochs: float = 100.0
    steps_per_epoch: int = 0  # 0: num_train // batch_size
    learning_rate: float = 0.045  # for lr_reference_batch images, scaled by lr_scaling
    lr_reference_batch: int = 32
    lr_scaling: str = "linear"
    lr_decay_rate: float = 0.94
    lr_decay_epochs: float = 2.0
    warmup_epochs: float = 0.0
    rmsprop_decay: float = 0.9
    momentum: float = 0.9
    rmsprop_epsilon: float = 1.0
    clip_norm: float = 2.0
    label_smoothing: float = 0.1
    weight_decay: float = 4e-5
    aux_loss_weight: float = 0.4
    ema_decay: float = 0.9999
    ema_bn_statistics: bool = True

    def __post_init__(self):
        _validate(self)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Where and how the run executes: mode, run directory, logging, devices, determinism."""
    mode: str = "train_and_eval"
    model_dir: str = "runs/default"
    checkpoint_every_steps: int = 1000
    keep_checkpoints: int = 5
    log_every_steps: int = 100
    died_threshold: float = 0.99
    stop_if_died: bool = False
    progress: bool = True
    strategy: str = "auto"
    tpu: str = ""
    num_cpu_devices: int = 0
    mixed_precision: bool = False
    jit_compile: bool = False
    seed: int = 0
    deterministic: bool = False

    def __post_init__(self):
        _validate(self)


_SECTIONS = {"model": ModelConfig, "data": DataConfig, "recipe": RecipeConfig, "run": RunConfig}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training or evaluation run reads, in four sections. ``from_flat`` /
    ``to_flat`` / ``replace`` speak the command line's flat names (``batch_size`` is
    ``recipe.batch_size``, ``model`` is ``model.name``)."""
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    recipe: RecipeConfig = RecipeConfig()
    run: RunConfig = RunConfig()

    @classmethod
    def from_flat(cls, values):
        """{flag name: value} -> TrainConfig; missing names keep their defaults."""
        unknown = sorted(set(values) - set(_SECTION_OF))
        if unknown:
            raise ValueError(f"unknown config keys: {unknown}")
        parts = {section: {} for section in _SECTIONS}
        for name, value in values.items():
            parts[_SECTION_OF[name]][_FIELD_NAME.get(name, name)] = value
        return cls(**{section: _SECTIONS[section](**kwargs) for section, kwargs in parts.items()})

    def to_flat(self):
        """{flag name: value} of every field (tuples where a flag takes a string or list)."""
        flat = {}
        for section in _SECTIONS:
            flat.update(_flat(getattr(self, section)))
        return flat

    def replace(self, **flat):
        """A copy with the given flat fields changed (validated like a new config)."""
        return TrainConfig.from_flat(dict(self.to_flat(), **flat))


_SECTION_OF = {_FLAT_NAME.get(f.name, f.name): section for section, kind in _SECTIONS.items()
               for f in dataclasses.fields(kind)}


# ---------------------------------------------------------------------------------------------
# Export and evaluation.
# ---------------------------------------------------------------------------------------------
