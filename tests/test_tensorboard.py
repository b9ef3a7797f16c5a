"""TensorBoard itself reads a run's logs: its scalars data provider (what the Scalars dashboard
and `tensorboard --logdir` serve) lists, for the demo-size run of conftest's ``trained_run``, every
scalar the trainer writes (``inception/train/observe.py``), with the values metrics.csv holds."""

import csv
import math
import os

import pytest

TRAIN_TAGS = (
    "loss",
    "learning_rate",
    "top1_accuracy",
    "top3_accuracy",
    "top5_accuracy",
    "images_per_sec",
    "grad_norm",
    "died_fraction",
    "dead_channels",
)
VALIDATION_TAGS = ("loss", "top1_accuracy", "top3_accuracy", "top5_accuracy")


@pytest.fixture(scope="module")
def scalars(trained_run):
    """{run: {tag: [(step, value)]}} as TensorBoard's data provider reads the run's logs."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer

    config, _, _ = trained_run
    logdir = os.path.join(config.run.model_dir, "tensorboard")
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, logdir)
    ctx = context.RequestContext()
    listing = provider.list_scalars(ctx, experiment_id="", plugin_name="scalars")
    data = provider.read_scalars(ctx, experiment_id="", plugin_name="scalars", downsample=10_000)
    assert set(listing) == set(data)
    return {
        run: {tag: [(p.step, p.value) for p in points] for tag, points in tags.items()}
        for run, tags in data.items()
    }


def test_every_scalar_of_train_and_validation(scalars, trained_run):
    config, _, _ = trained_run
    steps = int(config.recipe.epochs * config.recipe.steps_per_epoch)
    assert set(scalars) == {"train", "validation"}
    assert set(TRAIN_TAGS) <= set(scalars["train"]), sorted(scalars["train"])
    assert set(VALIDATION_TAGS) <= set(scalars["validation"]), sorted(scalars["validation"])
    for run, tags in (("train", TRAIN_TAGS), ("validation", VALIDATION_TAGS)):
        for tag in tags:
            points = scalars[run][tag]
            assert points and all(0 < step <= steps for step, _ in points), (run, tag, points)
            assert all(math.isfinite(value) for _, value in points), (run, tag, points)
    train = scalars["train"]
    assert all(
        v > 0 for _, v in train["learning_rate"] + train["images_per_sec"] + train["grad_norm"]
    )
    # Every --log_every_steps steps, and at each epoch's end.
    assert [s for s, _ in train["loss"]] == list(
        range(config.run.log_every_steps, steps + 1, config.run.log_every_steps)
    )
    for run in ("train", "validation"):
        top = [dict(scalars[run][f"top{k}_accuracy"]) for k in (1, 3, 5)]
        for step in top[0]:
            assert 0 <= top[0][step] <= top[1][step] <= top[2][step] <= 1, (run, step)


def test_values_are_the_runs_metrics(scalars, trained_run):
    """One validation point and one died fraction per epoch, equal to metrics.csv's row."""
    config, _, summary = trained_run
    with open(os.path.join(config.run.model_dir, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    epoch_ends = [int(r["step"]) for r in rows]
    epochs = range(1, int(config.recipe.epochs) + 1)
    assert epoch_ends == [config.recipe.steps_per_epoch * epoch for epoch in epochs]
    validation = scalars["validation"]
    for k in (1, 3, 5):
        assert [s for s, _ in validation[f"top{k}_accuracy"]] == epoch_ends
        assert [v for _, v in validation[f"top{k}_accuracy"]] == pytest.approx(
            [float(r[f"val_top{k}"]) for r in rows], rel=1e-5
        )
    assert validation["top1_accuracy"][-1][1] == pytest.approx(summary["val_top1"], rel=1e-6)
    died = scalars["train"]["died_fraction"]
    assert [s for s, _ in died] == epoch_ends
    assert [v for _, v in died] == pytest.approx(
        [float(r["died_fraction"]) for r in rows], rel=1e-5, abs=1e-7
    )
