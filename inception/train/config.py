"""The typed, frozen configuration of training: ``TrainConfig`` and its four sections (model,
data, recipe, run), with every field's check and message.

The library reads only these dataclasses; ``inception_cli.train_flags`` turns absl flags into them
(and registers the same checks as flag validators), and a Python user builds them directly. The
checks here need neither the dataset nor the strategy (``inception.train.plan`` makes those).
Pure Python (``inception.checks``): the command checks its flags before TensorFlow loads.
"""

import dataclasses
import os

from inception import checks, paths
from inception import networks as _networks  # the constants' one place
from inception import recipe as _recipe
from inception.data import config as data_config
from inception.data.config import DataConfig

# Field names are the command-line flag names of ``inception_cli.train_flags`` (``to_flat`` and
# ``from_flat`` map one to the other); defaults are the paper's ImageNet recipe (docs/paper.md).
# The validation messages name the flags, since most configs come from a command line.

# The ImageNet recipe's values (inception/recipe.py has each one's source): the defaults below.
_R = {flag: v.value for flag, v in _recipe.IMAGENET.items()}

MODES = ("train_and_eval", "train", "eval")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker_mirrored", "tpu")
LR_SCALINGS = ("linear", "sqrt", "none")


def _numbers(value, kind):
    """A list of strings (a DEFINE_list flag's form), numbers or 'a,b,c' -> a tuple of ``kind``;
    None or empty -> None (the default)."""
    if value is None or len(value) == 0:
        return None
    parts = value.split(",") if isinstance(value, str) else value
    return tuple(kind(str(p).strip()) for p in parts)


def parse_residual_scales(value):
    """['0.17', '0.10', '0.20'], numbers or '0.17,0.10,0.20' -> floats; None: the released
    scales."""
    return _numbers(value, float)


def parse_repeats(value):
    """['1', '2', '1'], integers or '1,2,1' -> integers; None: the paper's block counts."""
    return _numbers(value, int)


def _three_positive(parse):
    """A check: ``parse(value)`` is None (the default) or three positive numbers (A, B, C)."""

    def check(value):
        try:
            numbers = parse(value)
        except ValueError:
            return False
        return numbers is None or (len(numbers) == 3 and all(n > 0 for n in numbers))

    return check


def _check_init_weights(path):
    # A TF checkpoint is named by its prefix (the files are <prefix>.index, <prefix>.data-*).
    if path and path != "imagenet" and os.path.isdir(path):
        raise ValueError(
            f"--init_weights={path!r} is a directory; give the weights file itself "
            "(or a checkpoint's prefix)"
        )
    if not path or path == "imagenet" or os.path.exists(path) or os.path.exists(path + ".index"):
        return True
    raise ValueError(
        f"--init_weights={path!r}: no such file (give a weights file, a checkpoint "
        "prefix, 'imagenet', or leave it empty)"
    )


def _check_freeze_up_to(values):
    """--freeze_up_to names a block of the network the model, variant and repeats give (read
    from its spec, nothing built). A bad model, variant or repeats is left to its own check."""
    name, model, variant = values["freeze_up_to"], values["model"], values["variant"]
    if not _three_positive(parse_repeats)(values["repeats"]):
        return True
    try:
        spec = _networks.spec(model, variant or None)
    except ValueError:
        return True
    repeats = parse_repeats(values["repeats"])
    if repeats is not None:
        spec = dataclasses.replace(spec, repeats=repeats)
    if not name or name in spec.block_names:
        return True
    raise ValueError(
        f"--freeze_up_to={name!r} is not a block of {model}; its blocks: "
        f"{', '.join(spec.block_names)}"
    )


# One value each: name -> (check, message), ``inception.checks``' convention.
# ``inception_cli.train_flags`` registers the same checks as flag validators, so a bad flag fails
# with this message while absl parses.
FIELD_CHECKS = {
    "mode": checks.one_of(MODES),
    "model": checks.one_of(_networks.NAMES),
    "model_dir": checks.not_empty(),
    "image_size": (
        lambda v: v >= _networks.MIN_IMAGE_SIZE,
        f"--image_size must be at least {_networks.MIN_IMAGE_SIZE} (the stem and two "
        f"reductions of every network need {_networks.MIN_IMAGE_SIZE}x"
        f"{_networks.MIN_IMAGE_SIZE}); the paper uses {_networks.IMAGE_SIZE}",
    ),
    "batch_size": checks.positive("a positive integer"),
    "eval_batch_size": checks.at_least_zero(" (0: use --batch_size)"),
    "epochs": checks.positive(),
    "steps_per_epoch": checks.at_least_zero(" (0: from the dataset)"),
    "width_multiplier": checks.positive(),
    "residual_scales": (
        _three_positive(parse_residual_scales),
        "--residual_scales must be three positive numbers A,B,C (e.g. 0.17,0.10,0.20)",
    ),
    "repeats": (
        _three_positive(parse_repeats),
        "--repeats must be three positive integers A,B,C (the numbers of A, B and C "
        "blocks, e.g. 1,2,1; empty: the paper's)",
    ),
    "dropout_rate": checks.in_range(0.0, 1.0),
    "bn_momentum": checks.in_range(0.0, 1.0, lo_open=True),
    "bn_epsilon": checks.positive(),
    "init_weights": (_check_init_weights, ""),
    "aux_loss_weight": checks.at_least_zero(),
    "learning_rate": checks.positive(),
    "lr_reference_batch": checks.positive("a positive integer"),
    "lr_scaling": checks.one_of(LR_SCALINGS),
    "lr_decay_rate": checks.in_range(0.0, 1.0, lo_open=True, hi_open=False),
    "lr_decay_epochs": checks.positive(),
    "warmup_epochs": checks.at_least_zero(),
    "rmsprop_decay": checks.in_range(0.0, 1.0),
    "momentum": checks.in_range(0.0, 1.0),
    "rmsprop_epsilon": checks.positive(),
    "clip_norm": checks.at_least_zero(" (0 disables clipping)"),
    "label_smoothing": checks.in_range(0.0, 1.0),
    "weight_decay": checks.at_least_zero(),
    "ema_decay": checks.in_range(0.0, 1.0),
    **data_config.FIELD_CHECKS,
    "checkpoint_every_steps": checks.positive("a positive integer"),
    "steps_per_loop": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
        "--steps_per_loop must be a positive integer (training steps per host "
        "call; 1 reads every step's outputs back)",
    ),
    "keep_checkpoints": checks.positive("a positive integer"),
    "log_every_steps": checks.positive("a positive integer"),
    "died_threshold": checks.in_range(0.0, 1.0, lo_open=True, hi_open=False),
    "target_top1_error": checks.in_range(0.0, 1.0),
    "strategy": checks.one_of(STRATEGIES),
    "num_cpu_devices": checks.at_least_zero(),
    # keras.utils.set_random_seed seeds NumPy, whose seeds are non-negative: a negative one
    # failed after TensorFlow had started.
    "seed": checks.at_least_zero(" (NumPy's seeds are non-negative)"),
}

# Several values together: (names, check of {name: value}, message); same convention.
CROSS_CHECKS = (
    (
        ("model", "variant"),
        lambda f: not f["variant"] or f["variant"] in _networks.VARIANTS.get(f["model"], ()),
        "--variant must fit --model: inception_resnet_v2 takes 'release' or 'paper', "
        "inception_v4 and inception_resnet_v1 only 'paper' (or leave --variant empty)",
    ),
    (("model", "variant", "repeats", "freeze_up_to"), _check_freeze_up_to, ""),
    # A .keras model of this project carries its own layout; the published files the paper's.
    (
        ("repeats", "init_weights"),
        lambda f: not f["repeats"] or not f["init_weights"] or f["init_weights"].endswith(".keras"),
        "--init_weights of a published file needs the paper's block counts: leave --repeats empty",
    ),
    (
        ("strategy", "tpu"),
        lambda f: f["strategy"] != "tpu" or bool(f["tpu"]),
        "--strategy=tpu needs --tpu=NAME (the TPU name or grpc:// address; 'local' on a TPU VM)",
    ),
    (
        ("strategy", "num_cpu_devices"),
        lambda f: f["num_cpu_devices"] <= 1 or f["strategy"] in ("mirrored", "auto"),
        "--num_cpu_devices > 1 only makes sense with --strategy=mirrored",
    ),
    (
        ("mode", "target_top1_error"),
        lambda f: not f["target_top1_error"] or f["mode"] == "train_and_eval",
        "--target_top1_error stops at an evaluation: it needs --mode=train_and_eval",
    ),
    (
        ("deterministic", "jit_compile"),
        lambda f: not (f["deterministic"] and f["jit_compile"]),
        "--deterministic and --jit_compile cannot be combined: under TensorFlow's op determinism XLA "
        "refuses the max-pooling gradient (no deterministic implementation; every network here "
        "max-pools), so the first step would fail; drop one of them",
    ),
    (
        ("sync_batch_norm", "jit_compile"),
        lambda f: not (f["sync_batch_norm"] and f["jit_compile"]),
        "--sync_batch_norm and --jit_compile cannot be combined: synchronized BatchNorm all-reduces "
        "its moments across replicas inside the forward pass, and a cross-replica all-reduce is not "
        "an XLA operation on CPUs and GPUs; drop one of them",
    ),
)


# ModelConfig.name is the flag --model (``config.model.name`` reads better than model.model).
_FLAT_NAME = {"name": "model"}
_FIELD_NAME = {v: k for k, v in _FLAT_NAME.items()}


def _flat(section):
    return {
        _FLAT_NAME.get(f.name, f.name): getattr(section, f.name)
        for f in dataclasses.fields(section)
    }


def _validate(section):
    checks.check_types(section, _FLAT_NAME)
    values = _flat(section)
    for name, value in values.items():
        checks.check_field(FIELD_CHECKS, name, value)
    for names, _, _ in CROSS_CHECKS:
        if set(names) <= set(values):
            checks.check_cross(CROSS_CHECKS, names, values)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The network and the weights it starts from (README "Starting from existing weights")."""

    name: str = "inception_resnet_v2"  # the flag --model
    variant: str = ""  # empty: networks.DEFAULT_VARIANT[name]
    image_size: int = _networks.IMAGE_SIZE
    width_multiplier: float = 1.0
    residual_scales: tuple = None  # None: the released networks.RESIDUAL_SCALES
    repeats: tuple = None  # None: the paper's numbers of A, B and C blocks (NetworkSpec.repeats)
    dropout_rate: float = _R["dropout_rate"]
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
        # The paper's own counts are no change: None, so a run names its network one way.
        repeats = parse_repeats(self.repeats)
        variant = self.variant or _networks.DEFAULT_VARIANT[self.name]
        if repeats == _networks.spec(self.name, variant).repeats:
            repeats = None
        object.__setattr__(self, "repeats", repeats)


@dataclasses.dataclass(frozen=True)
class RecipeConfig:
    """Batch, length, learning rate, optimizer, regularisation and the weight average. Defaults:
    the ImageNet recipe, each value with its source in ``inception.recipe.IMAGENET``."""

    batch_size: int = _R["batch_size"]  # global, over all replicas and hosts
    eval_batch_size: int = 0  # 0: batch_size
    epochs: float = _R["epochs"]
    steps_per_epoch: int = 0  # 0: num_train // batch_size
    learning_rate: float = _R[
        "learning_rate"
    ]  # for lr_reference_batch images, scaled by lr_scaling
    lr_reference_batch: int = _R["lr_reference_batch"]
    lr_scaling: str = _R["lr_scaling"]
    lr_decay_rate: float = _R["lr_decay_rate"]
    lr_decay_epochs: float = _R["lr_decay_epochs"]
    warmup_epochs: float = _R["warmup_epochs"]
    rmsprop_decay: float = _R["rmsprop_decay"]
    momentum: float = _R["momentum"]
    rmsprop_epsilon: float = _R["rmsprop_epsilon"]
    clip_norm: float = _R["clip_norm"]
    label_smoothing: float = _R["label_smoothing"]
    weight_decay: float = _R["weight_decay"]
    aux_loss_weight: float = _R["aux_loss_weight"]
    ema_decay: float = _R["ema_decay"]
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
    target_top1_error: float = 0.0  # 0: train every epoch asked for
    progress: bool = True
    strategy: str = "auto"
    tpu: str = ""
    num_cpu_devices: int = 0
    mixed_precision: bool = False  # bfloat16 compute, float32 variables (BUILD_NOTES "Precision")
    jit_compile: bool = False
    steps_per_loop: int = 1  # training steps per host call (BUILD_NOTES "Steps per loop")
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

    def __post_init__(self):
        # The cross checks whose fields live in different sections (each section checked its own).
        flat = self.to_flat()
        for names, _, _ in CROSS_CHECKS:
            if not any(set(names) <= set(_flat(getattr(self, s))) for s in _SECTIONS):
                checks.check_cross(CROSS_CHECKS, names, flat)

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

    def check_paths(self):
        """PathError unless the run directory can be written and the data directories are
        directories (``inception.paths``). Not part of construction, which must work anywhere
        (the flags' defaults are a TrainConfig); ``train.run`` and the command call it before
        any work."""
        paths.output_dir("model_dir", self.run.model_dir, "run directory")
        paths.optional_dir("data_dir", self.data.data_dir, "data directory")
        paths.optional_dir("manual_dir", self.data.manual_dir, "directory of archives")


_SECTION_OF = {
    _FLAT_NAME.get(f.name, f.name): section
    for section, kind in _SECTIONS.items()
    for f in dataclasses.fields(kind)
}
# Each flat name's annotation (``type_problem``), for the flags' validators.
FIELD_TYPES = {
    _FLAT_NAME.get(f.name, f.name): f.type
    for kind in _SECTIONS.values()
    for f in dataclasses.fields(kind)
}
