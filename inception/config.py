"""Typed, frozen configuration of everything the library runs: model, data, recipe, run, export.

The library reads only these dataclasses; the command-line entry points (``inception_cli``) turn
absl flags into them, and a Python user builds them directly.
"""

import dataclasses
import math
import os
import re
import types

from inception import networks as _networks  # the constants' one place
from inception import paths
from inception import recipe as _recipe

# ---------------------------------------------------------------------------------------------
# Training: model, data, recipe, run.
# ---------------------------------------------------------------------------------------------
# Field names are the command-line flag names of ``inception_cli.train_flags`` (``to_flat`` and
# ``from_flat`` map one to the other); defaults are the paper's ImageNet recipe (docs/paper.md).
# The validation messages name the flags, since most configs come from a command line.

# The ImageNet recipe's values (inception/recipe.py has each one's source): the defaults below.
_R = {flag: v.value for flag, v in _recipe.IMAGENET.items()}

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
    """'lo,hi' (the flag's form), a (lo, hi) pair or None/''/() -> (lo, hi) floats or None."""
    if value is None or len(value) == 0:
        return None
    parts = value.split(",") if isinstance(value, str) else value
    return tuple(float(str(p).strip()) for p in parts)


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
    import os

    if path and path != "imagenet" and os.path.isdir(path):
        raise ValueError(f"--init_weights={path!r} is a directory; give the weights file itself "
                         "(or a checkpoint's prefix)")
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
    "residual_scales": (_three_positive(parse_residual_scales),
                        "--residual_scales must be three positive numbers A,B,C (e.g. "
                        "0.17,0.10,0.20)"),
    "repeats": (_three_positive(parse_repeats),
                "--repeats must be three positive integers A,B,C (the numbers of A, B and C "
                "blocks, e.g. 1,2,1; empty: the paper's)"),
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
    "steps_per_loop": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                       "--steps_per_loop must be a positive integer (training steps per host "
                       "call; 1 reads every step's outputs back)"),
    "keep_checkpoints": _positive("a positive integer"),
    "log_every_steps": _positive("a positive integer"),
    "died_threshold": _in_range(0.0, 1.0, lo_open=True, hi_open=False),
    "target_top1_error": _in_range(0.0, 1.0),
    "strategy": _one_of(STRATEGIES),
    "num_cpu_devices": _at_least_zero(),
    # keras.utils.set_random_seed seeds NumPy, whose seeds are non-negative: a negative one
    # failed after TensorFlow had started.
    "seed": _at_least_zero(" (NumPy's seeds are non-negative)"),
}

# Several values together: (names, check of {name: value}, message); same convention.
CROSS_CHECKS = (
    (("model", "variant"),
     lambda f: not f["variant"] or f["variant"] in _networks.VARIANTS.get(f["model"], ()),
     "--variant must fit --model: inception_resnet_v2 takes 'release' or 'paper', "
     "inception_v4 and inception_resnet_v1 only 'paper' (or leave --variant empty)"),
    (("model", "freeze_up_to"), _check_freeze_up_to, ""),
    # A .keras model of this project carries its own layout; the published files the paper's.
    (("repeats", "init_weights"),
     lambda f: not f["repeats"] or not f["init_weights"] or f["init_weights"].endswith(".keras"),
     "--init_weights of a published file needs the paper's block counts: leave --repeats empty"),
    (("strategy", "tpu"), lambda f: f["strategy"] != "tpu" or bool(f["tpu"]),
     "--strategy=tpu needs --tpu=NAME (the TPU name or grpc:// address; 'local' on a TPU VM)"),
    (("strategy", "num_cpu_devices"),
     lambda f: f["num_cpu_devices"] <= 1 or f["strategy"] in ("mirrored", "auto"),
     "--num_cpu_devices > 1 only makes sense with --strategy=mirrored"),
    (("mode", "target_top1_error"),
     lambda f: not f["target_top1_error"] or f["mode"] == "train_and_eval",
     "--target_top1_error stops at an evaluation: it needs --mode=train_and_eval"),
    (("deterministic", "jit_compile"), lambda f: not (f["deterministic"] and f["jit_compile"]),
     "--deterministic and --jit_compile cannot be combined: under TensorFlow's op determinism XLA "
     "refuses the max-pooling gradient (no deterministic implementation; every network here "
     "max-pools), so the first step would fail; drop one of them"),
    (("sync_batch_norm", "jit_compile"), lambda f: not (f["sync_batch_norm"] and f["jit_compile"]),
     "--sync_batch_norm and --jit_compile cannot be combined: synchronized BatchNorm all-reduces "
     "its moments across replicas inside the forward pass, and a cross-replica all-reduce is not "
     "an XLA operation on CPUs and GPUs; drop one of them"),
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


# Type-level bounds of every field, checked before the field's own check: a value beyond them
# is a typo or a fuzzed input, and would fail later inside TensorFlow or NumPy (a seed beyond
# 2**32, an epoch count whose step count overflows, a name longer than any path).
INT_LIMIT = 2**31 - 1
FLOAT_LIMIT = 1e9
STR_LIMIT = 4096
_TUPLE_FORMS = (tuple, list, str)  # the flag's 'a,b,c' string or a sequence


def _kind(annotation):
    """(the accepted types, what to call them, None allowed) of a field's annotation."""
    allows_none = isinstance(annotation, types.UnionType) and type(None) in annotation.__args__
    if allows_none:
        annotation = next(a for a in annotation.__args__ if a is not type(None))
    kinds = {bool: ((bool,), "true or false"), int: ((int,), "an integer"),
             float: ((int, float), "a number"), str: ((str,), "a string"),
             tuple: (_TUPLE_FORMS, "a list")}
    accepted, words = kinds[annotation]
    return accepted, words, allows_none


def type_problem(annotation, value, strings_ok=True):
    """Why ``value`` is not of a field's type and size, or None. Tuple fields take a sequence of
    names or numbers (each field checks its items' values itself) and, with ``strings_ok`` (the
    training config's residual_scales, repeats, area_range), None or the flag's 'a,b,c'."""
    accepted, words, allows_none = _kind(annotation)
    if value is None and (allows_none or (annotation is tuple and strings_ok)):
        return None
    if annotation is tuple and not strings_ok:
        accepted, words = (tuple, list), "a list"
    if not isinstance(value, accepted) or (isinstance(value, bool) and bool not in accepted):
        return f"must be {words}; got {value!r:.60} ({type(value).__name__})"
    if isinstance(value, (tuple, list)) and not all(
            isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        return f"must be a list of names or numbers; got {value!r:.60}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number; got {value}"
    limit = INT_LIMIT if isinstance(value, int) else FLOAT_LIMIT
    if isinstance(value, (int, float)) and abs(value) > limit:
        return f"is out of range: {value:.4g} (no field takes a value beyond {limit} in size)"
    if isinstance(value, (str, tuple, list)) and len(value) > STR_LIMIT:
        return f"is too long ({len(value)} characters or items; at most {STR_LIMIT})"
    return None


def check_types(instance, flag_names=None, strings_ok=True):
    """ValueError naming the flag of the first field of the dataclass ``instance`` whose value
    is not of the field's type (``type_problem``)."""
    for field in dataclasses.fields(instance):
        problem = type_problem(field.type, getattr(instance, field.name), strings_ok)
        if problem:
            name = (flag_names or {}).get(field.name, field.name)
            raise ValueError(f"--{name} {problem}")


def _validate(section):
    check_types(section, _FLAT_NAME)
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
    """Batch, length, learning rate, optimizer, regularisation and the weight average. Defaults:
    the ImageNet recipe, each value with its source in ``inception.recipe.IMAGENET``."""
    batch_size: int = _R["batch_size"]  # global, over all replicas and hosts
    eval_batch_size: int = 0  # 0: batch_size
    epochs: float = _R["epochs"]
    steps_per_epoch: int = 0  # 0: num_train // batch_size
    learning_rate: float = _R["learning_rate"]  # for lr_reference_batch images, scaled by lr_scaling
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
                check_fields(names, flat)

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


_SECTION_OF = {_FLAT_NAME.get(f.name, f.name): section for section, kind in _SECTIONS.items()
               for f in dataclasses.fields(kind)}
# Each flat name's annotation (``type_problem``), for the flags' validators.
FIELD_TYPES = {_FLAT_NAME.get(f.name, f.name): f.type for kind in _SECTIONS.values()
               for f in dataclasses.fields(kind)}


# ---------------------------------------------------------------------------------------------
# Export and evaluation.
# ---------------------------------------------------------------------------------------------

# The run directory (README "What a run writes"); export and evaluation read RUN_FILES.
RUN_FILES = ("ema_model.keras", "labels.txt", "run_config.json")
EMA_MODEL, LABELS_FILE, RUN_CONFIG = RUN_FILES
CHECKPOINTS_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
METRICS_CSV = "metrics.csv"
SUMMARY_JSON = "summary.json"
EVAL_JSON = "eval.json"

# The top-k accuracies and errors every evaluation reports (the paper's tables: top-1 and top-5;
# its text also quotes top-3).
TOP_K = (1, 3, 5)

# The export formats by name, each with the module of ``inception/export/`` that writes it (the
# module's ``FORMATS`` maps the name to its ``Format``; ``inception.export.formats`` loads it).
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
# The served model decodes at most this many pixels (read from the header before decoding): 64
# megapixels, far above any photo a classifier needs, far below what exhausts memory (decoding
# holds 3 bytes per pixel plus the float copy of the crop).
MAX_PIXELS = 64 * 1024 * 1024
EXPORT_TOP_K = 5  # classes in the SavedModel's top-k outputs
# The model name becomes the directory TF Serving serves: a file name that is not a number (the
# version directories are numbers).
_EXPORT_NAME = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.\-]*$")

# The released code's eval crop: the central 87.5% of each side (also the 1-crop protocol).
EVAL_CENTRAL_FRACTION = 0.875
# The paper's evaluation protocols (Tables 2-5), by number of crops per image.
EVAL_PROTOCOLS = (1, 10, 12, 144)


def check_export_formats(formats):
    """The requested formats, each once, in the given order; ValueError for an unknown one."""
    formats = tuple(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown or not formats:
        raise ValueError(f"unknown --formats {unknown or list(formats)}; choose from "
                         f"{', '.join(EXPORT_FORMATS)}")
    return formats


def check_export_name(name):
    if not _EXPORT_NAME.match(name or "") or name.isdigit() or name.startswith("."):
        raise ValueError(f"--name {name!r} must be a non-numeric file name of letters, digits, "
                         "'_', '-' or '.' (it becomes the directory TF Serving serves)")
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
        check_types(self, strings_ok=False)
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
        check_types(self, strings_ok=False)
        if bool(self.model_dir) == bool(self.keras_model):
            raise ValueError("give exactly one of --model_dir (a training run) or --keras_model "
                             "(a .keras file)")
        if not self.export_dir.strip():
            raise ValueError("--export_dir is required")
        super().__post_init__()
        if self.name is not None:
            check_export_name(self.name)
        if self.calibration_images < 1:
            raise ValueError(f"--calibration_images must be positive; got {self.calibration_images}")
        if self.eval_images < 0:
            raise ValueError(f"--eval_images must be >= 0; got {self.eval_images}")
        paths.input_dir("model_dir", self.model_dir, "training run directory")
        paths.input_file("keras_model", self.keras_model, ".keras file")
        paths.input_file("labels", self.labels, "labels file")
        paths.optional_dir("data_dir", self.data_dir, "data directory")
        paths.output_dir("export_dir", self.export_dir, "export directory")


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
    FLAG_NAMES = {"protocols": "crops"}  # a field whose flag has another name (not a field)

    def __post_init__(self):
        check_types(self, self.FLAG_NAMES, strings_ok=False)
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
        paths.output_file("output", self.output, "results file")
        paths.output_file("save_probabilities", self.save_probabilities, ".npz file")
        paths.optional_dir("data_dir", self.data_dir, "data directory")
        paths.optional_dir("manual_dir", self.manual_dir, "directory of archives")


def _check_model_path(path):
    """A finished training run directory (RUN_FILES) or an existing .keras file, on any
    TensorFlow file system (``gs://`` paths are read through ``tf.io.gfile``)."""
    from inception import fileio  # TensorFlow is imported only for a non-local path

    if fileio.isdir(path):
        missing = [n for n in RUN_FILES if not fileio.exists(fileio.join(path, n))]
        if missing:
            raise ValueError(f"--models: {path} is a directory but not a finished training run "
                             f"(missing {', '.join(missing)})")
    elif not path.endswith(".keras"):
        raise ValueError(f"--models: {path} is neither a training run directory nor a .keras file")
    elif not fileio.exists(path):
        raise ValueError(f"--models: no such .keras file: {path}")
