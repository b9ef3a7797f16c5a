"""The experiments as data: which runs test which claim of the paper, at which scale.

Claim 1 (Figures 21-26): residual connections make Inception networks train faster. Inception-v4,
Inception-ResNet-v1 and Inception-ResNet-v2 (release) at one reduced width, same data and recipe,
several seeds each, each trained until its validation top-1 error reaches a target (or a cap on
the epochs): the claim is judged by the epochs each network needs to get there, so every network
gets the budget it needs to learn. The recipe is the paper's (no gradient clipping); clipping at
2.0 (the Inception-v3 paper's) is a control. The pair of similar cost is Inception-v4 /
Inception-ResNet-v2.

Claim 2 (section 3.3): Inception-ResNet networks wider than about 1000 filters "die" (the layer
before average pooling outputs only zeros) unless the residuals are scaled by 0.1-0.3. The
"paper" Inception-ResNet-v2 at half width has a 1072-wide 8x8 trunk; it is trained with unscaled
residuals (1.0) and with the released scales, at the recipe's learning rate and ten times it.

Claim 3 (section 2): Inception-v4 and Inception-ResNet-v2 cost about the same, yet Inception-v4 is
markedly slower in practice. Measured by ``inception.experiments.speed``.

Dataset: ``sklearn_digits`` (embedded, offline) with the digits' own crop defaults, as the demo
(area 0.6-1.0, no flip: a 5% crop of a 64x64 digit is mostly background, a mirrored digit is
another digit). A first full run with the paper's photo crop range (0.05-1.0) left even the
training batches at 10-36% top-1 after 30 epochs for Inception-v4 and made its validation curve
collapse and recover (65% -> 8% -> 63% between epochs 15 and 30, seed 0): the crops, not the
networks, set the pace there.
"""

import dataclasses

from inception import recipe
from inception.experiments import speed

DATASET = "sklearn_digits"
SPEED_NETWORKS = (
    ("inception_v4", ""),
    ("inception_resnet_v1", ""),
    ("inception_resnet_v2", "release"),
)
RELEASED_SCALES = ("0.17", "0.10", "0.20")


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One training run: a name (its directory), the claim it serves, and its config as flat
    field values (``TrainConfig.from_flat``; the names are main.py's flags)."""

    name: str
    claim: str
    flags: dict
    labels: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Scale:
    """How big the experiment is. ``full`` fits 60 minutes on 2 cores, ``quick`` 5 minutes."""

    name: str
    seeds: tuple
    speed_epochs: dict  # setting -> the most epochs a run trains if it misses the target
    speed_steps_per_epoch: int  # 0: the whole training split per epoch
    speed_width: float
    target_error: float  # claim 1: each run trains until its validation top-1 error is this
    died_width: float
    died_real_epochs: int
    died_windows_per_epoch: int
    died_steps_cap: int  # 0: no cap
    died_learning_rates: tuple  # the recipe's 0.045 and ten times it
    cost: speed.SpeedConfig

    @property
    def speed_settings(self):
        """The settings of claim 1, the recipe first, then its controls."""
        return tuple(self.speed_epochs)


# Inception-v4 reached 25% / 17% top-1 error after 9 / 10 epochs on the demo's data without
# clipping (issue 18), 62% after 12 with it: the recipe's runs get up to 30 epochs, the clipped
# control 12.
FULL = Scale(
    "full",
    seeds=(0, 1, 2),
    speed_epochs={"recipe": 30, "clip2.0": 12},
    speed_steps_per_epoch=0,
    speed_width=0.125,
    target_error=0.2,
    died_width=0.5,
    died_real_epochs=3,
    died_windows_per_epoch=4,
    died_steps_cap=0,
    died_learning_rates=(0.045, 0.45),
    cost=speed.SpeedConfig(image_size=299, batch=8, steps=3, rounds=2),
)
QUICK = Scale(
    "quick",
    seeds=(0,),
    speed_epochs={"recipe": 3},
    speed_steps_per_epoch=8,
    speed_width=0.125,
    target_error=0.8,
    died_width=0.5,
    died_real_epochs=1,
    died_windows_per_epoch=2,
    died_steps_cap=8,
    died_learning_rates=(0.45,),  # where the full run saw networks die
    cost=speed.SpeedConfig(image_size=99, batch=4, steps=2, rounds=1),
)
# For the test suite: every code path, seconds per run.
TINY = Scale(
    "tiny",
    seeds=(0,),
    speed_epochs={"recipe": 2, "clip2.0": 2},
    speed_steps_per_epoch=1,
    speed_width=0.0625,
    target_error=0.9,
    died_width=0.0625,
    died_real_epochs=1,
    died_windows_per_epoch=2,
    died_steps_cap=2,
    died_learning_rates=(0.45,),
    cost=speed.SpeedConfig(image_size=75, batch=2, steps=1, rounds=1, width_multiplier=0.0625),
)
SCALES = {s.name: s for s in (FULL, QUICK, TINY)}

# The miniature recipe (inception.recipe: the ImageNet recipe with the departures a few hundred
# CPU steps need, as configs/demo.cfg), on the digits at 75x75 with their own crop defaults.
_RECIPE = {k: v for k, v in recipe.values("miniature").items() if k != "epochs"}
_COMMON = dict(
    _RECIPE,
    dataset=DATASET,
    image_size=75,
    aux_logits=True,
    progress=False,
    keep_checkpoints=1,
    strategy="one_device",
)
DIGITS_TRAIN_STEPS = 1438 // 32  # steps of one real epoch at batch 32

# The miniature's departures from the ImageNet setting beyond the recipe's (the report lists
# them with recipe.MINIATURE's).
SETTING_DEPARTURES = {
    "image_size": (75, "the smallest input every network takes; 299 would cost 16x the compute"),
    "width_multiplier": (None, "every filter count scaled down, so that a run takes minutes"),
    "area_range": (
        "0.6,1.0",
        "the digits' default (and no flip): a 5% crop of a 64x64 digit is "
        "mostly background; with the photo range even the training batches stayed "
        "under 40% top-1 for Inception-v4 after 30 epochs",
    ),
    "epochs": (None, "each run trains until the target error, up to a cap"),
}

# Claim 1's training settings: the recipe, and a control that changes one thing.
SETTINGS = {
    "recipe": ({}, "the recipe: no gradient clipping, as the paper and the released trainer"),
    "clip2.0": ({"clip_norm": 2.0}, "clipping at global norm 2.0 (the Inception-v3 paper's)"),
}


def speed_runs(scale):
    """Every network and seed under each setting (the recipe's runs keep the short names)."""
    runs = []
    for setting, max_epochs in scale.speed_epochs.items():
        overrides, _ = SETTINGS[setting]
        suffix = "" if setting == "recipe" else f"-{setting}"
        for model, variant in SPEED_NETWORKS:
            for seed in scale.seeds:
                flags = dict(
                    _COMMON,
                    mode="train_and_eval",
                    model=model,
                    variant=variant,
                    width_multiplier=scale.speed_width,
                    epochs=max_epochs,
                    steps_per_epoch=scale.speed_steps_per_epoch,
                    target_top1_error=scale.target_error,
                    seed=seed,
                    log_every_steps=5,
                    checkpoint_every_steps=1000,
                    **overrides,
                )
                runs.append(
                    RunSpec(
                        f"speed/{model}{suffix}-seed{seed}",
                        "speed",
                        flags,
                        {"network": model, "seed": seed, "setting": setting},
                    )
                )
    return runs


def _lr_name(lr):
    return f"lr{lr / _COMMON['learning_rate']:g}x"


def died_runs(scale):
    """Training only (no evaluation), with "epochs" shortened to windows of a real epoch so that
    the died fraction is reported several times per epoch; the schedule is rescaled to match."""
    window = max(1, DIGITS_TRAIN_STEPS // scale.died_windows_per_epoch)
    if scale.died_steps_cap:
        window = max(1, min(window, scale.died_steps_cap // scale.died_windows_per_epoch))
    windows = scale.died_real_epochs * scale.died_windows_per_epoch
    runs = []
    for scales_name, scales in (("unscaled", ("1.0", "1.0", "1.0")), ("scaled", RELEASED_SCALES)):
        for lr in scale.died_learning_rates:
            lr_name = _lr_name(lr)
            flags = dict(
                _COMMON,
                mode="train",
                model="inception_resnet_v2",
                variant="paper",
                width_multiplier=scale.died_width,
                residual_scales=list(scales),
                learning_rate=lr,
                steps_per_epoch=window,
                epochs=windows,
                warmup_epochs=0,
                lr_decay_epochs=2 * scale.died_windows_per_epoch,
                seed=0,
                log_every_steps=1,
                checkpoint_every_steps=1000,
                died_threshold=0.99,
            )
            runs.append(
                RunSpec(
                    f"died/{scales_name}-{lr_name}",
                    "died",
                    flags,
                    {
                        "residual_scales": ",".join(scales),
                        "learning_rate": lr,
                        "steps_per_window": window,
                    },
                )
            )
    return runs


def all_runs(scale):
    return speed_runs(scale) + died_runs(scale)
