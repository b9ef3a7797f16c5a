"""What a run will do, worked out before anything is built: the dataset, the replicas, steps per
epoch, the total steps and the peak learning rate, with the checks that need the dataset or the
strategy (the config checked everything else when it was made). Cheap; raises ValueError with
advice."""

import dataclasses
import math

from inception import data as data_lib
from inception.train import rundir, state


@dataclasses.dataclass
class Plan:
    """Everything derived from the config and the dataset before building anything."""

    info: object
    strategy_name: str
    num_replicas: int
    steps_per_epoch: int
    total_steps: int
    num_epochs: int
    eval_batch_size: int
    peak_lr: float
    train_options: dict  # models.build keyword arguments of the training model
    inference_options: dict  # ... and of the inference model (evaluation, ema_model.keras)


def build_options(config, num_classes):
    """models.build keyword arguments of the training model (the Plan's one computation)."""
    m = config.model
    return dict(
        num_classes=num_classes,
        input_shape=(m.image_size, m.image_size, 3),
        variant=m.variant or None,
        aux_logits=bool(m.aux_logits),
        dropout_rate=m.dropout_rate,
        residual_scales=m.residual_scales,
        width_multiplier=m.width_multiplier,
        repeats=m.repeats,
        bn_momentum=m.bn_momentum,
        bn_epsilon=m.bn_epsilon,
        weight_decay=config.recipe.weight_decay,
        bn_synchronized=bool(m.sync_batch_norm),
        classifier_activation=None,
    )


def inference_options(train_options):
    """The exported model: one softmax output, no aux head, plain BatchNorm."""
    return dict(
        train_options, aux_logits=False, classifier_activation="softmax", bn_synchronized=False
    )


def _check_batches(recipe, replicas):
    if recipe.batch_size % replicas:
        raise ValueError(
            f"--batch_size={recipe.batch_size} is the GLOBAL batch and must divide by the "
            f"{replicas} replicas of this strategy; use e.g. "
            f"--batch_size={max(1, recipe.batch_size // replicas) * replicas}"
        )
    eval_batch = recipe.eval_batch_size or recipe.batch_size
    if eval_batch % replicas:
        raise ValueError(f"--eval_batch_size={eval_batch} must divide by the {replicas} replicas")
    return eval_batch


def _steps_per_epoch(config, info):
    batch, steps = config.recipe.batch_size, config.recipe.steps_per_epoch
    if config.run.mode == "eval":
        return steps or max(1, (info.num_train or 0) // batch)
    if info.train_split is None:
        raise ValueError(f"dataset {info.name!r} has no train split to train on")
    if steps:
        return steps
    if info.num_train is None:
        raise ValueError(
            f"the size of {info.name!r} is unknown until it is prepared; pass --steps_per_epoch"
        )
    if info.num_train // batch < 1:
        raise ValueError(
            f"--batch_size={batch} is larger than the {info.num_train} training "
            f"images of {info.name!r}"
        )
    return info.num_train // batch


def _check_start(config):
    m, run = config.model, config.run
    checkpoints = rundir.checkpoint_dir(run.model_dir)
    if run.mode == "eval" and not m.init_weights and not rundir.checkpoint_candidates(checkpoints):
        raise ValueError(
            f"--mode=eval needs a trained run in --model_dir={run.model_dir!r} "
            f"but {checkpoints} holds no checkpoint (or pass --init_weights "
            "to evaluate a weights file)"
        )


def make_plan(config, strategy):
    """The Plan of ``config`` on ``strategy``, after the checks that need the dataset or the
    strategy (raises ValueError)."""
    d, r = config.data, config.recipe
    info = data_lib.describe(
        d.dataset, data_dir=d.data_dir or None, manual_dir=d.manual_dir or None, download=d.download
    )
    replicas = strategy.num_replicas_in_sync
    eval_batch = _check_batches(r, replicas)
    spe = _steps_per_epoch(config, info)
    if config.run.mode != "train" and info.eval_split is None:
        raise ValueError(f"dataset {info.name!r} has no validation/test split; use --mode=train")
    total = int(math.ceil(r.epochs * spe - 1e-9))
    _check_start(config)
    peak = state.scaled_learning_rate(
        r.learning_rate, r.batch_size, r.lr_reference_batch, r.lr_scaling
    )
    options = build_options(config, info.num_classes)
    return Plan(
        info=info,
        strategy_name=type(strategy).__name__,
        num_replicas=replicas,
        steps_per_epoch=spe,
        total_steps=total,
        num_epochs=int(math.ceil(total / spe)),
        eval_batch_size=eval_batch,
        peak_lr=peak,
        train_options=options,
        inference_options=inference_options(options),
    )
