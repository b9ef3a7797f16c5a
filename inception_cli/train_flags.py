"""The command-line flags of training (``main.py``, ``inception_cli.train``) and their conversion
into an ``inception.train.config.TrainConfig``.

Every flag is a field of the config under the same name (``TrainConfig.from_flat``), with the
config's default. Each flag's check is the config's own (``FIELD_CHECKS`` and ``CROSS_CHECKS``
of ``inception.train.config``), registered as an absl validator: a bad value fails while the
command line is parsed, before TensorFlow is imported, with the message a Python user gets from
the config. The checks that need the dataset or the strategy (ImageNet archives, a global batch that
divides by the replicas) run in ``inception.train.plan.make_plan``, also before any heavy work.

Defaults are the paper's ImageNet recipe (docs/paper.md); ``configs/*.cfg`` set them explicitly
and ``--flagfile`` reads a config. A flag given on the command line after ``--flagfile``
overrides the file. The shipped configs are package data (``inception/configs``, which the
clone's ``configs/`` points to): ``--config=NAME`` reads one by name from any directory.
"""

import os

from absl import flags

import inception
from inception import checks, networks
from inception.data import config as data_config
from inception.train import config as config_lib

FLAGS = flags.FLAGS
_D = config_lib.TrainConfig().to_flat()  # the defaults, from the config's one place


_CHOICES = {
    "mode": config_lib.MODES,
    "model": networks.NAMES,
    "lr_scaling": config_lib.LR_SCALINGS,
    "color_distortion": data_config.COLOR_DISTORTIONS,
    "strategy": config_lib.STRATEGIES,
}
_RELEASED_SCALES = ",".join(f"{s:.2f}" for s in networks.RESIDUAL_SCALES)

# Every flag's help, in --help's order.
_HELP = {
    # What to run and where.
    "mode": "train_and_eval: train, evaluating the EMA weights after every epoch; train: no "
    "evaluation; eval: evaluate the last checkpoint of --model_dir.",
    "model": "Network to train.",
    "variant": "inception_resnet_v2 only: 'release' (default) or 'paper' (Figure 15 as drawn). "
    "Empty: the model's default.",
    "model_dir": "Run directory: checkpoints, logs, summary.json, ema_model.keras. Rerunning the "
    "same command resumes from its last checkpoint.",
    "dataset": "TFDS name: imagenet2012, sklearn_digits (embedded, offline) or any prepared TFDS "
    "image-classification dataset.",
    "data_dir": "TFDS data directory.",
    "manual_dir": "Directory holding the ILSVRC-2012 archives (default "
    "<data_dir>/downloads/manual).",
    "image_size": f"Square input size, at least {networks.MIN_IMAGE_SIZE}.",
    "batch_size": "GLOBAL batch size (over all replicas and hosts).",
    "eval_batch_size": "Global evaluation batch size (0: --batch_size).",
    "epochs": "Training length in epochs (fractions allowed).",
    "steps_per_epoch": "Steps per epoch; 0 derives it from the dataset (num_train // "
    "batch_size). Also the unit of the learning-rate schedule.",
    # Model.
    "width_multiplier": "Scales every filter count (1.0 is the paper).",
    "residual_scales": "Inception-ResNet residual scales A,B,C (empty: the released "
    f"{_RELEASED_SCALES}).",
    "repeats": "Numbers of A, B and C blocks (empty: the paper's, e.g. 5,10,5 for "
    "Inception-ResNet-v1). Fewer make a shallower network of the same design for quick "
    "experiments; published --init_weights need the paper's.",
    "dropout_rate": "Dropout before the classifier (paper: keep 0.8).",
    "bn_momentum": "BatchNorm moving-average decay.",
    "bn_epsilon": "BatchNorm epsilon.",
    "sync_batch_norm": "BatchNorm statistics over the global batch (all replicas). Large-batch "
    "training with small per-replica batches needs it.",
    "aux_logits": "Train with the auxiliary classifier.",
    # Starting from existing weights (README "Starting from existing weights"). A resumed run
    # restores its checkpoint instead; these flags are part of the run's identity.
    "init_weights": "Start from these weights: a published file (TF-slim checkpoint or .tar.gz, "
    "timm .safetensors, keras-applications .h5), 'imagenet' (the official file, "
    "cached), or a .keras model of this project (e.g. a run's ema_model.keras). "
    "With --mode=eval and no checkpoint in --model_dir: evaluate them.",
    "init_new_head": "With --init_weights: when the dataset's class count differs from the "
    "file's, train a new classifier (and aux classifier). false: refuse such "
    "a file.",
    "freeze_up_to": "Freeze the stem and every block up to and including this one (e.g. "
    "reduction_a, inception_resnet_b_10, reduction_b); their BatchNorm layers "
    "then run in inference mode. Empty: train everything.",
    "bn_inference": "Every BatchNorm layer uses and keeps its moving statistics (and beta): for "
    "fine-tuning with small batches.",
    "aux_loss_weight": "Weight of the auxiliary classifier's loss.",
    # Recipe.
    "learning_rate": "Learning rate for --lr_reference_batch images; scaled to the global batch "
    "by --lr_scaling.",
    "lr_reference_batch": "Batch size --learning_rate refers to (the paper: 32 per replica).",
    "lr_scaling": "lr = learning_rate * (batch_size / lr_reference_batch) for linear, its square "
    "root for sqrt, unscaled for none.",
    "lr_decay_rate": "Staircase exponential decay factor.",
    "lr_decay_epochs": "Epochs between two decays.",
    "warmup_epochs": "Linear warm-up from 0 over this many epochs.",
    "rmsprop_decay": "RMSProp decay (rho) of the squared-gradient average.",
    "momentum": "RMSProp momentum.",
    "rmsprop_epsilon": "RMSProp epsilon.",
    "clip_norm": "Clip the all-reduced gradient to this global norm; 0 (the recipe: neither "
    "the paper nor the released trainer clips) disables it. The Inception-v3 paper "
    "clipped at 2.0, which slows Inception-v4 about 2,000x at the start (BUILD_NOTES "
    "'Recipe and gradient norms').",
    "label_smoothing": "Label smoothing of the cross-entropy.",
    "weight_decay": "L2 weight decay in the released code's convention (wd * sum(w^2) / 2).",
    "ema_decay": "Decay of the exponential moving average of the weights used for evaluation and "
    "export; the effective decay is min(ema_decay, (1 + step) / (10 + step)) as in "
    "the released trainer. 0 evaluates the raw weights.",
    "ema_bn_statistics": "Average the BatchNorm moving statistics with the weights and "
    "evaluate/export with the averaged ones, as the released trainer does "
    "(it averages every model variable). false: evaluate with the raw "
    "moving statistics.",
    # Input pipeline.
    "area_range": "Train crop area range 'lo,hi' (empty: dataset default).",
    "min_object_covered": "Train crop min_object_covered (<0: default).",
    "color_distortion": "Train colour distortion (default: the dataset's).",
    "download": "Let TFDS download datasets other than imagenet2012.",
    # Checkpoints and logging.
    "checkpoint_every_steps": "Write a checkpoint every N steps (one is also written at each "
    "epoch end).",
    "keep_checkpoints": "Checkpoints kept (the oldest are deleted).",
    "log_every_steps": "TensorBoard train-scalar interval in steps.",
    "died_threshold": "At each epoch's end, warn (and with --stop_if_died stop) when more than "
    "this fraction of the activations of the last layer before average "
    "pooling ('features') is exactly zero, counted over the epoch's training "
    "steps (training forward pass, raw weights; paper section 3.3).",
    "stop_if_died": "Stop training when the died threshold is exceeded.",
    "target_top1_error": "Stop after the first end-of-epoch evaluation whose validation top-1 "
    "error is at most this (time to a target error, as the reproduction "
    "measures it); a rerun of a run that reached it trains no further. 0: "
    "train every epoch of --epochs.",
    "progress": "Show progress: a live bar on a terminal, else one line per epoch "
    "(INCEPTION_PROGRESS=bar or =line forces either).",
    # Distribution and performance.
    "strategy": "auto: tpu with --tpu, multi_worker_mirrored when TF_CONFIG lists several tasks, "
    "mirrored with several GPUs or --num_cpu_devices > 1, else one_device.",
    "tpu": "TPU name or grpc:// address for --strategy=tpu ('local' on a TPU VM).",
    "num_cpu_devices": "Split the host CPU into N logical devices (develop/test "
    "--strategy=mirrored without GPUs). 0: leave devices alone.",
    "mixed_precision": "Compute in bfloat16 with float32 variables, logits and loss (Keras "
    "policy mixed_bfloat16).",
    "jit_compile": "XLA-compile the training step (with one replica the whole update: forward, "
    "backward, RMSProp, BatchNorm statistics, EMA; with several each replica's "
    "forward and backward pass) and each replica's evaluation batch. TPUs compile "
    "the whole step anyway. On CPUs slower than without (BUILD_NOTES).",
    "steps_per_loop": "Training steps per host call: N steps run inside one tf.function call "
    "and their metrics are read once. A stop signal takes effect at the end of "
    "a call; checkpoints, scalars and epoch ends happen at their exact steps.",
    "seed": "Random seed (weights, dropout, data order and augmentation).",
    "deterministic": "Bit-reproducible run: TF op determinism, seeded Keras RNG, deterministic "
    "input order; a resumed run then equals an uninterrupted one. Slower.",
}


def _define(name, text):
    """One flag: its kind from the config default's type (the flag forms of the two tuples:
    a list for residual_scales and repeats, a 'lo,hi' string for area_range)."""
    default = _D[name]
    if name in _CHOICES:
        flags.DEFINE_enum(name, default, _CHOICES[name], text)
    elif name in ("residual_scales", "repeats"):
        flags.DEFINE_list(name, [str(s) for s in default or ()], text)
    elif name == "area_range":
        flags.DEFINE_string(name, ",".join(str(v) for v in default or ()), text)
    elif isinstance(default, bool):
        flags.DEFINE_bool(name, default, text)
    elif isinstance(default, int):
        flags.DEFINE_integer(name, default, text)
    elif isinstance(default, float):
        flags.DEFINE_float(name, default, text)
    else:
        flags.DEFINE_string(name, default, text)


for _name, _text in _HELP.items():
    _define(_name, _text)

NAMES = tuple(_HELP)  # every config field is a flag, and every flag but --config a field
assert set(NAMES) == set(_D), sorted(set(NAMES) ^ set(_D))


def _validator(check):
    """An absl validator from a config check: False or ValueError -> ValidationError."""

    def validate(value):
        try:
            return check(value)
        except ValueError as err:
            raise flags.ValidationError(str(err)) from None

    return validate


def _type_check(name):
    """The config's type and size check of one flag (absl parses the type; the sizes remain:
    --seed=10**30 parses as an integer)."""

    def check(value):
        problem = checks.type_problem(config_lib.FIELD_TYPES[name], value)
        if problem:
            raise ValueError(f"--{name} {problem}")
        return True

    return check


def _register_validators():
    for name in NAMES:
        flags.register_validator(name, _validator(_type_check(name)))
    for name, (check, message) in config_lib.FIELD_CHECKS.items():
        flags.register_validator(name, _validator(check), message=message.format(name=name))
    for names, check, message in config_lib.CROSS_CHECKS:
        flags.register_multi_flags_validator(list(names), _validator(check), message=message)


_register_validators()


def to_config(values=FLAGS):
    """The TrainConfig of parsed flag ``values`` (absl's FLAGS by default)."""
    return config_lib.TrainConfig.from_flat({name: values[name].value for name in NAMES})


# --config=NAME: a shipped config file by name. The files are package data, so this works from
# any directory after `pip install`; in a clone `--flagfile=configs/NAME.cfg` reads the same file.
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(inception.__file__)), "configs")
CONFIG_NAMES = tuple(
    sorted(n[: -len(".cfg")] for n in os.listdir(CONFIG_DIR) if n.endswith(".cfg"))
)
flags.DEFINE_enum(
    "config",
    None,
    CONFIG_NAMES,
    "A shipped config by name, read as --flagfile=<its file> at this place on the command line "
    "(flags after it override it). Works from any directory.",
)
flags.register_validator(
    "config",
    lambda value: value is None,
    message="--config=NAME is read on the command line only; inside a config file use "
    "--flagfile=PATH",
)


def config_path(name):
    """The file of the shipped config ``name`` (one of ``CONFIG_NAMES``)."""
    return os.path.join(CONFIG_DIR, f"{name}.cfg")


def expand_config(argv):
    """``argv`` with every ``--config=NAME`` (or ``--config NAME``) of a shipped config replaced
    by ``--flagfile=<its file>`` in place, so flags after it still override it. An unknown name is
    left for absl, whose check refuses it with the list of names before anything is imported."""
    out, rest = list(argv[:1]), list(argv[1:])
    while rest:
        arg = rest.pop(0)
        if arg == "--":  # absl: everything after is positional
            return out + [arg] + rest
        name = None
        if arg.startswith(("--config=", "-config=")):
            name = arg.split("=", 1)[1]
        elif arg in ("--config", "-config") and rest and rest[0] in CONFIG_NAMES:
            name = rest.pop(0)
        out.append(f"--flagfile={config_path(name)}" if name in CONFIG_NAMES else arg)
    return out
