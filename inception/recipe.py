"""The training recipe as data: every value with its source.

``IMAGENET`` is the recipe of the ImageNet configs (``configs/v4.cfg``, ``irv2.cfg``, ``irv1.cfg``,
``irv2_paper.cfg``) and the defaults of ``inception.train.config.RecipeConfig``. A value comes from the paper
(section 4, "Training methodology"), from the authors' released code (TF-slim's
``train_image_classifier.py`` and the nets' arg scopes), or from an earlier paper named as such;
``deviation`` marks the values that are not the paper's or the released trainer's (each has a row
in BUILD_NOTES "Deviations from the paper and the released code" with its reason).

``MINIATURE`` lists where the CPU-sized runs (``configs/demo.cfg`` and the reproduction in
``inception.experiments``) depart from it, each with its reason; ``FINETUNE`` likewise for
``configs/finetune_demo.cfg``. README "Recipe" prints the ImageNet table, and
``tests/test_recipe_table.py`` holds every config file, README and the config defaults to these
tables.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Value:
    """One recipe value, where it comes from, and whether it departs from the paper and the
    released trainer."""

    value: object
    source: str
    deviation: bool = False


PAPER = "paper, section 4"
RELEASED_TRAINER = "released trainer (TF-slim train_image_classifier.py)"
RELEASED_NETS = "released nets' arg scopes (TF-slim)"

IMAGENET = {
    "learning_rate": Value(0.045, PAPER + " (for 32 images, the released trainer's batch)"),
    "lr_decay_rate": Value(0.94, PAPER),
    "lr_decay_epochs": Value(2.0, PAPER),
    "rmsprop_decay": Value(0.9, PAPER),
    "rmsprop_epsilon": Value(1.0, PAPER),
    "momentum": Value(0.9, RELEASED_TRAINER + ", --rmsprop_momentum"),
    "clip_norm": Value(
        0.0,
        PAPER + " and " + RELEASED_TRAINER + ": neither clips gradients "
        "(the Inception-v3 paper clipped at 2.0; --clip_norm=2.0 reproduces it)",
    ),
    "weight_decay": Value(4e-5, RELEASED_NETS + ", weight_decay=0.00004 (slim convention)"),
    "bn_momentum": Value(0.9997, RELEASED_NETS + ", batch_norm_decay"),
    "dropout_rate": Value(0.2, "paper, Figures 9 and 15 (keep 0.8); released nets"),
    "aux_loss_weight": Value(0.4, RELEASED_TRAINER + ", aux loss weights=0.4"),
    "ema_decay": Value(
        0.9999,
        PAPER + " (a running average of the parameters); 0.9999 is the "
        "released Inception trainer's MOVING_AVERAGE_DECAY",
    ),
    "label_smoothing": Value(
        0.1, "Inception-v3 paper, section 7 (the released trainer's default is 0)", deviation=True
    ),
    "lr_reference_batch": Value(32, RELEASED_TRAINER + ", --batch_size=32 per replica"),
    "lr_scaling": Value(
        "linear",
        "Goyal et al. 2017 (synchronous training at a global batch; "
        "the paper ran asynchronous replicas of 32)",
        deviation=True,
    ),
    "warmup_epochs": Value(
        2.0, "Goyal et al. 2017, for the linearly scaled rate at batch 256", deviation=True
    ),
    "batch_size": Value(256, "global: 8 replicas x the released trainer's 32", deviation=True),
    "epochs": Value(
        100.0,
        "Inception-v3 paper (about 100 epochs); the released trainer runs until stopped",
        deviation=True,
    ),
}

# Where the runs on the embedded digits (a few hundred steps on a CPU) depart from IMAGENET.
MINIATURE = {
    "batch_size": Value(32, "the released trainer's per-replica batch: one CPU is one replica"),
    "warmup_epochs": Value(
        0.5,
        "the linear ramp of the ImageNet configs, shortened with the run "
        "(22 steps of 44 per epoch)",
    ),
    "ema_decay": Value(
        0.99,
        "0.9999 averages over about 10,000 steps; the demo trains 220, so "
        "the average would still be mostly the first weights. 0.99 averages over "
        "about 100 steps, half an epoch",
    ),
    "bn_momentum": Value(
        0.9,
        "0.9997 averages the BatchNorm statistics over about 3,300 steps, "
        "longer than the whole run; 0.9 over about 10",
    ),
    "epochs": Value(
        5.0,
        "the demo's budget: 220 steps, about 4 minutes on 2 CPU cores (the "
        "reproduction trains each run until a target error instead)",
    ),
}

# configs/finetune_demo.cfg: one epoch from a trained model with the early blocks frozen.
FINETUNE = dict(
    MINIATURE,
    **{
        "learning_rate": Value(
            0.01,
            "TF-slim's fine-tuning example (--learning_rate=0.01): the weights are already trained",
        ),
        "warmup_epochs": Value(0.0, "no ramp: the weights are already trained"),
        "ema_decay": Value(0.9, "one epoch of 44 steps: the average must follow within about 10"),
        "epochs": Value(1.0, "one epoch shows the fine-tuning path works"),
    },
)

RECIPES = {"imagenet": IMAGENET, "miniature": MINIATURE, "finetune": FINETUNE}


def values(name="imagenet"):
    """{flag: value} of recipe ``name``: the ImageNet recipe with that recipe's departures."""
    merged = dict(IMAGENET)
    merged.update(RECIPES[name])
    return {flag: v.value for flag, v in merged.items()}
