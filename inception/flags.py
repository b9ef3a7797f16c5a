"""Command-line flags of ``main.py`` and their validation.

Every flag has a validator that runs while absl parses the command line (before TensorFlow does any
work), so a bad value fails at once with a message saying what to do. Checks that need the
dataset or the distribution strategy (an ImageNet manual dir, a global batch that divides by the
replicas) are in ``inception.training.check_runtime``; they also run before any heavy work.

Defaults are the paper's ImageNet recipe (PAPER_NOTES "Training recipe"); ``configs/*.cfg`` set
them explicitly and ``--flagfile`` reads a config. A flag given on the command line after
``--flagfile`` overrides the file.
"""

import os
import re

from absl import flags

MODELS = ("inception_v4", "inception_resnet_v1", "inception_resnet_v2")
VARIANTS = {"inception_v4": ("paper",), "inception_resnet_v1": ("paper",),
            "inception_resnet_v2": ("release", "paper")}
MODES = ("train_and_eval", "train", "eval")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker_mirrored", "tpu")
LR_SCALINGS = ("linear", "sqrt", "none")
COLOR_DISTORTIONS = ("fast", "full", "none", "default")
MIN_IMAGE_SIZE = 75

FLAGS = flags.FLAGS

# What to run and where.
flags.DEFINE_enum("mode", "train_and_eval", MODES,
                  "train_and_eval: train, evaluating the EMA weights after every epoch; train: no "
                  "evaluation; eval: evaluate the last checkpoint of --model_dir.")
flags.DEFINE_enum("model", "inception_resnet_v2", MODELS, "Network to train.")
flags.DEFINE_string("variant", "", "inception_resnet_v2 only: 'release' (default) or 'paper' "
                    "(Figure 15 as drawn). Empty: the model's default.")
flags.DEFINE_string("model_dir", "runs/default",
                    "Run directory: checkpoints, logs, summary.json, ema_model.keras. Rerunning "
                    "the same command resumes from its last checkpoint.")
flags.DEFINE_string("dataset", "imagenet2012",
                    "TFDS name: imagenet2012, sklearn_digits (embedded, offline) or any prepared "
                    "TFDS image-classification dataset.")
flags.DEFINE_string("data_dir", "data", "TFDS data directory.")
flags.DEFINE_string("manual_dir", "", "Directory holding the ILSVRC-2012 archives "
                    "(default <data_dir>/downloads/manual).")
flags.DEFINE_integer("image_size", 299, "Square input size, at least 75.")
flags.DEFINE_integer("batch_size", 256, "GLOBAL batch size (over all replicas and hosts).")
flags.DEFINE_integer("eval_batch_size", 0, "Global evaluation batch size (0: --batch_size).")
flags.DEFINE_float("epochs", 100.0, "Training length in epochs (fractions allowed).")
flags.DEFINE_integer("steps_per_epoch", 0,
                     "Steps per epoch; 0 derives it from the dataset (num_train // batch_size). "
                     "Also the unit of the learning-rate schedule.")

# Model.
flags.DEFINE_float("width_multiplier", 1.0, "Scales every filter count (1.0 is the paper).")
flags.DEFINE_list("residual_scales", [], "Inception-ResNet residual scales A,B,C "
                  "(empty: the released 0.17,0.10,0.20).")
flags.DEFINE_float("dropout_rate", 0.2, "Dropout before the classifier (paper: keep 0.8).")
flags.DEFINE_float("bn_momentum", 0.9997, "BatchNorm moving-average decay.")
flags.DEFINE_float("bn_epsilon", 0.001, "BatchNorm epsilon.")
flags.DEFINE_bool("sync_batch_norm", False,
                  "BatchNorm statistics over the global batch (all replicas). Large-batch "
                  "training with small per-replica batches needs it.")
flags.DEFINE_bool("aux_logits", True, "Train with the auxiliary classifier.")

# Starting from existing weights (README "Pretrained weights"). A resumed run restores its
# checkpoint instead; these flags are part of the run's identity.
flags.DEFINE_string("init_weights", "",
                    "Start from these weights: a published file (TF-slim checkpoint or .tar.gz, "
                    "timm .safetensors, keras-applications .h5), 'imagenet' (the official file, "
                    "cached), or a .keras model of this project (e.g. a run's ema_model.keras). "
                    "With --mode=eval and no checkpoint in --model_dir: evaluate them.")
flags.DEFINE_bool("init_new_head", True,
                  "With --init_weights: when the dataset's class count differs from the file's, "
                  "train a new classifier (and aux classifier). false: refuse such a file.")
flags.DEFINE_string("freeze_up_to", "",
                    "Freeze the stem and every block up to and including this one (e.g. "
                    "reduction_a, inception_resnet_b_10, reduction_b); their BatchNorm layers "
                    "then run in inference mode. Empty: train everything.")
flags.DEFINE_bool("bn_inference", False,
                  "Every BatchNorm layer uses and keeps its moving statistics (and beta): for "
                  "fine-tuning with small batches.")
flags.DEFINE_float("aux_loss_weight", 0.4, "Weight of the auxiliary classifier's loss.")

# Recipe.
flags.DEFINE_float("learning_rate", 0.045,
                   "Learning rate for --lr_reference_batch images; scaled to the global batch by "
                   "--lr_scaling.")
flags.DEFINE_integer("lr_reference_batch", 32, "Batch size --learning_rate refers to (the paper: "
                     "32 per replica).")
flags.DEFINE_enum("lr_scaling", "linear", LR_SCALINGS,
                  "lr = learning_rate * (batch_size / lr_reference_batch) for linear, its square "
                  "root for sqrt, unscaled for none.")
flags.DEFINE_float("lr_decay_rate", 0.94, "Staircase exponential decay factor.")
flags.DEFINE_float("lr_decay_epochs", 2.0, "Epochs between two decays.")
flags.DEFINE_float("warmup_epochs", 0.0, "Linear warm-up from 0 over this many epochs.")
flags.DEFINE_float("rmsprop_decay", 0.9, "RMSProp decay (rho) of the squared-gradient average.")
flags.DEFINE_float("momentum", 0.9, "RMSProp momentum.")
flags.DEFINE_float("rmsprop_epsilon", 1.0, "RMSProp epsilon.")
flags.DEFINE_float("clip_norm", 2.0, "Global gradient-norm clipping threshold (0 disables).")
flags.DEFINE_float("label_smoothing", 0.1, "Label smoothing of the cross-entropy.")
flags.DEFINE_float("weight_decay", 4e-5,
                   "L2 weight decay in the released code's convention (wd * sum(w^2) / 2).")
flags.DEFINE_float("ema_decay", 0.9999,
                   "Decay of the exponential moving average of the weights used for evaluation "
                   "and export; the effective decay is min(ema_decay, (1 + step) / (10 + step)) "
                   "as in the released trainer. 0 evaluates the raw weights.")
flags.DEFINE_bool("ema_bn_statistics", True,
                  "Average the BatchNorm moving statistics with the weights and evaluate/export "
                  "with the averaged ones, as the released trainer does (it averages every model "
                  "variable). false: evaluate with the raw moving statistics.")

# Input pipeline.
flags.DEFINE_string("area_range", "", "Train crop area range 'lo,hi' (empty: dataset default).")
flags.DEFINE_float("min_object_covered", -1.0, "Train crop min_object_covered (<0: default).")
flags.DEFINE_enum("color_distortion", "default", COLOR_DISTORTIONS,
                  "Train colour distortion (default: the dataset's).")
flags.DEFINE_bool("download", False, "Let TFDS download datasets other than imagenet2012.")

# Checkpoints and logging.
flags.DEFINE_integer("checkpoint_every_steps", 1000,
                     "Write a checkpoint every N steps (one is also written at each epoch end).")
flags.DEFINE_integer("keep_checkpoints", 5, "Checkpoints kept (the oldest are deleted).")
flags.DEFINE_integer("log_every_steps", 100, "TensorBoard train-scalar interval in steps.")
flags.DEFINE_float("died_threshold", 0.99,
                   "Warn when this fraction of the activations before average pooling is exactly "
                   "zero, averaged over the epoch's training steps (measured in the training "
                   "forward pass on the raw weights; paper section 3.3).")
flags.DEFINE_bool("stop_if_died", False, "Stop training when the died threshold is exceeded.")
flags.DEFINE_bool("progress", True, "Show Keras progress bars.")

# Distribution and performance.
flags.DEFINE_enum("strategy", "auto", STRATEGIES,
                  "auto: tpu with --tpu, multi_worker_mirrored when TF_CONFIG lists several "
                  "tasks, mirrored with several GPUs, else one_device.")
flags.DEFINE_string("tpu", "", "TPU name or grpc:// address for --strategy=tpu ('local' on a TPU VM).")
flags.DEFINE_integer("num_cpu_devices", 0,
                     "Split the host CPU into N logical devices (develop/test --strategy=mirrored "
                     "without GPUs). 0: leave devices alone.")
flags.DEFINE_bool("mixed_precision", False,
                  "Compute in bfloat16 with float32 variables, logits and loss (Keras policy "
                  "mixed_bfloat16).")
flags.DEFINE_bool("jit_compile", False, "XLA-compile the forward and backward pass.")
flags.DEFINE_integer("seed", 0, "Random seed (weights, dropout, data order and augmentation).")
flags.DEFINE_bool("deterministic", False,
                  "Bit-reproducible run: TF op determinism, seeded Keras RNG, deterministic input "
                  "order; a resumed run then equals an uninterrupted one. Slower.")

# Fault injection for tests (hidden from --help's main list by the name).
flags.DEFINE_integer("test_inject_nan_at_step", -1,
                     "Testing only: make the loss NaN at this global step.")


def _positive(name, integer=False):
    kind = "a positive integer" if integer else "a positive number"
    flags.register_validator(name, lambda v: v > 0, message=f"--{name} must be {kind}")


def _in_range(name, lo, hi, lo_open=False, hi_open=True):
    def check(v):
        return (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)

    interval = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    flags.register_validator(name, check, message=f"--{name} must be in {interval}")


def _parse_pair(text):
    parts = [p.strip() for p in text.split(",")]
    return tuple(float(p) for p in parts)


def _check_area_range(text):
    if not text:
        return True
    try:
        lo, hi = _parse_pair(text)
    except ValueError:
        return False
    return 0.0 < lo <= hi <= 1.0


def _check_residual_scales(values):
    if not values:
        return True
    try:
        scales = [float(v) for v in values]
    except ValueError:
        return False
    return len(scales) == 3 and all(s > 0 for s in scales)


# The block names of each network family (the exact list, which depends on the variant, is
# checked in training.check_runtime before anything is built).
_BLOCK_NAME = {
    "inception_v4": r"stem|inception_[abc]_[1-9][0-9]*|reduction_[ab]",
    "inception_resnet_v1": r"stem|inception_resnet_[abc]_[1-9][0-9]*|reduction_[ab]",
    "inception_resnet_v2": r"stem|inception_resnet_[abc]_[1-9][0-9]*|reduction_[ab]|conv_7b",
}


def _check_freeze_up_to(values):
    name = values["freeze_up_to"]
    if not name:
        return True
    if re.fullmatch(_BLOCK_NAME[values["model"]], name):
        return True
    raise flags.ValidationError(
        f"--freeze_up_to={name!r} is not a block name of --model={values['model']}; names look "
        f"like stem, {'inception_a_2' if values['model'] == 'inception_v4' else 'inception_resnet_a_2'}"
        ", reduction_a, reduction_b (see models.block_names)")


def _check_init_weights(path):
    # A TF checkpoint is named by its prefix (the files are <prefix>.index, <prefix>.data-*).
    if not path or path == "imagenet" or os.path.exists(path) or os.path.exists(path + ".index"):
        return True
    raise flags.ValidationError(f"--init_weights={path!r}: no such file (give a weights file, a "
                                "checkpoint prefix, 'imagenet', or leave it empty)")


def _register_validators():
    flags.register_validator(
        "image_size", lambda v: v >= MIN_IMAGE_SIZE,
        message=f"--image_size must be at least {MIN_IMAGE_SIZE} (the stem and two reductions "
                "of every network need 75x75); the paper uses 299")
    _positive("batch_size", integer=True)
    flags.register_validator("eval_batch_size", lambda v: v >= 0,
                             message="--eval_batch_size must be >= 0 (0: use --batch_size)")
    _positive("epochs")
    flags.register_validator("steps_per_epoch", lambda v: v >= 0,
                             message="--steps_per_epoch must be >= 0 (0: from the dataset)")
    _positive("width_multiplier")
    _in_range("dropout_rate", 0.0, 1.0)
    _in_range("bn_momentum", 0.0, 1.0, lo_open=True)
    _positive("bn_epsilon")
    flags.register_validator("aux_loss_weight", lambda v: v >= 0,
                             message="--aux_loss_weight must be >= 0")
    _positive("learning_rate")
    _positive("lr_reference_batch", integer=True)
    _in_range("lr_decay_rate", 0.0, 1.0, lo_open=True, hi_open=False)
    _positive("lr_decay_epochs")
    flags.register_validator("warmup_epochs", lambda v: v >= 0,
                             message="--warmup_epochs must be >= 0")
    _in_range("rmsprop_decay", 0.0, 1.0)
    _in_range("momentum", 0.0, 1.0)
    _positive("rmsprop_epsilon")
    flags.register_validator("clip_norm", lambda v: v >= 0,
                             message="--clip_norm must be >= 0 (0 disables clipping)")
    _in_range("label_smoothing", 0.0, 1.0)
    flags.register_validator("weight_decay", lambda v: v >= 0,
                             message="--weight_decay must be >= 0")
    _in_range("ema_decay", 0.0, 1.0)
    flags.register_validator(
        "area_range", _check_area_range,
        message="--area_range must be 'lo,hi' with 0 < lo <= hi <= 1 (e.g. 0.05,1.0)")
    flags.register_validator("min_object_covered", lambda v: v < 0 or v <= 1.0,
                             message="--min_object_covered must be in [0, 1] (or < 0 for the "
                                     "dataset default)")
    flags.register_validator(
        "residual_scales", _check_residual_scales,
        message="--residual_scales must be three positive numbers A,B,C (e.g. 0.17,0.10,0.20)")
    _positive("checkpoint_every_steps", integer=True)
    _positive("keep_checkpoints", integer=True)
    _positive("log_every_steps", integer=True)
    _in_range("died_threshold", 0.0, 1.0, lo_open=True, hi_open=False)
    flags.register_validator("num_cpu_devices", lambda v: v >= 0,
                             message="--num_cpu_devices must be >= 0")
    flags.register_validator("model_dir", lambda v: bool(v.strip()),
                             message="--model_dir must not be empty")
    flags.register_validator("dataset", lambda v: bool(v.strip()),
                             message="--dataset must not be empty")
    flags.register_multi_flags_validator(
        ["model", "variant"],
        lambda f: not f["variant"] or f["variant"] in VARIANTS[f["model"]],
        message="--variant must fit --model: inception_resnet_v2 takes 'release' or 'paper', "
                "inception_v4 and inception_resnet_v1 only 'paper' (or leave --variant empty)")
    flags.register_multi_flags_validator(
        ["strategy", "tpu"],
        lambda f: f["strategy"] != "tpu" or bool(f["tpu"]),
        message="--strategy=tpu needs --tpu=NAME (the TPU name or grpc:// address; 'local' on a "
                "TPU VM)")
    flags.register_multi_flags_validator(
        ["strategy", "num_cpu_devices"],
        lambda f: f["num_cpu_devices"] <= 1 or f["strategy"] in ("mirrored", "auto"),
        message="--num_cpu_devices > 1 only makes sense with --strategy=mirrored")
    flags.register_multi_flags_validator(["model", "freeze_up_to"], _check_freeze_up_to)
    flags.register_validator("init_weights", _check_init_weights)
    flags.register_multi_flags_validator(
        ["deterministic", "seed"],
        lambda f: not f["deterministic"] or f["seed"] >= 0,
        message="--deterministic needs a non-negative --seed")


_register_validators()


def parse_area_range(text):
    """'lo,hi' -> (lo, hi), or None for the dataset default."""
    return _parse_pair(text) if text else None


def parse_residual_scales(values):
    return tuple(float(v) for v in values) if values else None
