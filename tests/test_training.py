"""Training: learns, writes a complete run directory, stops on NaN, validates flags, and
--mode=eval reproduces summary.json. Resuming after kill -9 and SIGTERM, several workers and other
file systems: tests/test_resilience.py; several replicas: tests/test_distributed.py.

Small on purpose (2 shared CPU cores): reduced-width networks, 75x75 images, a few dozen steps.
One in-process run is shared by several tests; a subprocess only where a test needs a process of
its own (a bad flag must fail before TensorFlow loads).
"""

import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from training_runs import MAIN, REPO, no_grappler
from training_runs import checkpoint_steps as _checkpoint_steps
from training_runs import env as _env


@pytest.fixture(scope="module")
def data_dir(digits_dir):
    return digits_dir


# ------------------------------------------------------------------------------ flags --------
BAD_FLAGS = [
    (["--image_size=64"], "--image_size must be at least 75"),
    (["--batch_size=0"], "--batch_size must be a positive integer"),
    (["--model=inception_v5"], "value should be one of"),
    (["--model=inception_v4", "--variant=release"], "--variant must fit --model"),
    (["--strategy=tpu"], "--strategy=tpu needs --tpu"),
    (["--label_smoothing=1.5"], "--label_smoothing must be in [0.0, 1.0)"),
    (["--residual_scales=0.1,0.2"], "--residual_scales must be three positive numbers"),
    (["--area_range=0.5,0.1"], "--area_range must be 'lo,hi'"),
    (["--no_such_flag=1"], "Unknown command line flag 'no_such_flag'"),
    (["--ema_decay=1.0"], "--ema_decay must be in [0.0, 1.0)"),
    (["--steps_per_loop=0"], "--steps_per_loop must be a positive integer"),
    (["--sync_batch_norm", "--jit_compile"], "--sync_batch_norm and --jit_compile cannot be"),
    (["--deterministic", "--jit_compile"], "--deterministic and --jit_compile cannot be"),
]


@pytest.mark.parametrize("args,message", BAD_FLAGS, ids=[a[0] for a, _ in BAD_FLAGS])
def test_bad_flag_fails_before_any_work(args, message, tmp_path):
    proc = subprocess.run(
        [sys.executable, MAIN, f"--model_dir={tmp_path}/run"] + args,
        capture_output=True,
        text=True,
        env=_env(),
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 1  # as a NaN stop; SIGTERM (75) and a lost worker (69) differ
    assert message in proc.stderr, proc.stderr[-2000:]
    assert not os.path.exists(tmp_path / "run"), "a bad flag must fail before creating the run"
    assert "tensorflow" not in proc.stderr.lower() or "Traceback" not in proc.stderr


def _main_py(config, capsys, loss_hook=None):
    """main.py's exit status and stderr for ``config``, in this process (inception_cli.train)."""
    from inception_cli import train as train_cli

    capsys.readouterr()
    status = train_cli.run_training(config, loss_hook=loss_hook)
    return status, capsys.readouterr().err


def test_runtime_checks_give_clear_messages(tmp_path, data_dir, capsys):
    """main.py's own checks before any model is built (a global batch that does not divide by
    the replicas needs two devices: tests/test_distributed.py)."""
    from inception.train.config import TrainConfig

    base = dict(dataset="sklearn_digits", data_dir=data_dir, progress=False)
    # ImageNet without its archives: says which files go where.
    config = TrainConfig.from_flat(
        dict(
            base,
            model_dir=str(tmp_path / "a"),
            dataset="imagenet2012",
            data_dir=str(tmp_path / "empty_tfds"),
        )
    )
    rc, err = _main_py(config, capsys)
    assert rc == 1 and "ILSVRC2012_img_train.tar" in err and "--manual_dir" in err, err
    # Evaluating a directory that holds no run.
    config = TrainConfig.from_flat(dict(base, model_dir=str(tmp_path / "c"), mode="eval"))
    rc, err = _main_py(config, capsys)
    assert rc == 1 and "--mode=eval needs a trained run" in err, err
    assert not os.path.exists(tmp_path / "a") and not os.path.exists(tmp_path / "c")


def test_flagfile_and_command_line_override(tmp_path):
    from absl import flags as absl_flags

    from inception_cli import train_flags

    cfg = tmp_path / "x.cfg"
    cfg.write_text("--batch_size=64\n--image_size=99\n")
    values = absl_flags.FlagValues()
    for flag in train_flags.FLAGS.get_flags_for_module(train_flags.__name__):
        values[flag.name] = flag
    values(["prog", f"--flagfile={cfg}", "--image_size=80"])
    try:
        assert values.batch_size == 64 and values.image_size == 80
    finally:
        values.unparse_flags()


# ------------------------------------------------------------------------ recipe units -------
def test_learning_rate_schedule_and_scaling():
    from inception.train import state as train_state

    assert train_state.scaled_learning_rate(0.045, 256, 32, "linear") == pytest.approx(0.36)
    assert train_state.scaled_learning_rate(0.045, 128, 32, "sqrt") == pytest.approx(0.09)
    assert train_state.scaled_learning_rate(0.045, 128, 32, "none") == pytest.approx(0.045)
    sched = train_state.WarmupStaircaseDecay(0.36, decay_steps=10, decay_rate=0.94, warmup_steps=5)
    values = [float(sched(s)) for s in (0, 4, 5, 9, 10, 25)]
    assert values[0] == pytest.approx(0.36 / 5) and values[1] == pytest.approx(0.36)
    assert values[2] == pytest.approx(0.36) and values[3] == pytest.approx(0.36)
    assert values[4] == pytest.approx(0.36 * 0.94) and values[5] == pytest.approx(0.36 * 0.94**2)


def test_weight_average_follows_the_released_decay_rule():
    import keras
    import tensorflow as tf

    from inception.train import state as train_state

    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        var = keras.Variable(np.zeros(3, "float32"))
        ema = train_state.WeightAverage([var], decay=0.9999)
    expected = np.zeros(3)
    for step in (1, 2, 3):
        var.assign(np.full(3, float(step), "float32"))
        tf.function(lambda s: ema.update(strategy, s))(tf.constant(step))
        decay = min(0.9999, (1 + step) / (10 + step))
        expected = decay * expected + (1 - decay) * step
    np.testing.assert_allclose(ema.averages[0].numpy(), expected, rtol=1e-6)


# --------------------------------------------------------------- one shared trained run ------
@pytest.fixture(scope="module")
def trained(trained_run):
    """The session's shared in-process run (tests/conftest.py): IRv1 x0.1 with the aux head,
    3 epochs of 20 steps."""
    return trained_run


def test_short_run_learns(trained):
    _, _, summary = trained
    # Ten classes: chance is 0.1 top-1.
    assert summary["val_top1"] > 0.5, summary
    assert summary["val_top1_error"] == pytest.approx(1 - summary["val_top1"])
    assert summary["val_top5_error"] <= summary["val_top3_error"] <= summary["val_top1_error"]
    assert summary["steps"] == 60 and summary["epochs"] == pytest.approx(3.0)
    assert summary["num_eval"] == 359  # every validation image (one device)
    assert summary["train_images_per_sec"] > 0
    assert 0.0 <= summary["died_fraction"] < 1.0


def test_run_directory_is_complete(trained):
    import keras
    import tensorflow as tf

    config, _, summary = trained
    d = config.run.model_dir
    run_record = json.load(open(os.path.join(d, "run_config.json")))
    assert run_record["model"] == "inception_resnet_v1" and run_record["image_size"] == 75
    assert run_record["num_classes"] == 10 and run_record["build_options"]["aux_logits"] is False
    assert open(os.path.join(d, "labels.txt")).read().split() == [str(i) for i in range(10)]
    with open(os.path.join(d, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["val_top1"]) == pytest.approx(summary["val_top1"])
    assert all(0 <= float(r["died_fraction"]) <= 1 for r in rows)
    # Checkpoints every 25 steps and each epoch, the last 2 kept.
    assert _checkpoint_steps(d) == [50, 60]
    # TensorBoard: train and validation scalars.
    tags = set()
    for sub in ("train", "validation"):
        for name in os.listdir(os.path.join(d, "tensorboard", sub)):
            for event in tf.compat.v1.train.summary_iterator(
                os.path.join(d, "tensorboard", sub, name)
            ):
                tags.update(f"{sub}/{v.tag}" for v in event.summary.value)
    for tag in (
        "train/loss",
        "train/learning_rate",
        "train/top1_accuracy",
        "train/top5_accuracy",
        "train/images_per_sec",
        "train/died_fraction",
        "validation/top1_accuracy",
        "validation/top3_accuracy",
        "validation/top5_accuracy",
    ):
        assert tag in tags, sorted(tags)
    # The exported model: one softmax output, EMA weights, loads in safe mode.
    model = keras.saving.load_model(os.path.join(d, "ema_model.keras"), safe_mode=True)
    probs = model.predict(np.zeros((2, 75, 75, 3), "float32"), verbose=0)
    assert probs.shape == (2, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_eval_mode_reproduces_summary(trained, tmp_path):
    from inception import train

    config, strategy, summary = trained
    # On a copy: --mode=eval writes eval.json, and the shared run is only read (conftest).
    copy = str(tmp_path / "demo")
    shutil.copytree(config.run.model_dir, copy)
    result = train.run(config.replace(mode="eval", model_dir=copy), strategy)
    for k in (1, 3, 5):
        assert result[f"val_top{k}_error"] == pytest.approx(summary[f"val_top{k}_error"], abs=1e-9)
    assert result["num_eval"] == summary["num_eval"] and result["step"] == summary["steps"]


def test_exported_model_matches_evaluation(trained, data_dir):
    """ema_model.keras, run on the validation pipeline, gives summary.json's top-1."""
    import keras

    from inception import data

    config, _, summary = trained
    model = keras.saving.load_model(os.path.join(config.run.model_dir, "ema_model.keras"))
    pipe = data.InputPipeline(
        "sklearn_digits",
        split="eval",
        image_size=75,
        global_batch_size=64,
        is_training=False,
        data_dir=data_dir,
    )
    correct = total = 0
    for images, labels in pipe.input_fn(None):
        correct += int(np.sum(np.argmax(model(images, training=False), -1) == labels.numpy()))
        total += int(labels.shape[0])
    assert correct / total == pytest.approx(summary["val_top1"], abs=1.5 / total)


def test_a_different_run_in_the_same_model_dir_is_refused(trained):
    from inception import train

    config, strategy, _ = trained
    for other in (config.replace(width_multiplier=0.2), config.replace(repeats="1,2,1")):
        with pytest.raises(train.TrainingError, match="holds a different run"):
            train.run(other, strategy)
    # Its checkpoints hold averaged BatchNorm statistics: evaluating without them is refused.
    other = config.replace(mode="eval", ema_bn_statistics=False)
    with pytest.raises(train.TrainingError, match="--noema_bn_statistics"):
        train.run(other, strategy)


def test_noema_bn_statistics_evaluates_with_the_raw_statistics(trained, tmp_path):
    """The default averages the BN statistics (tests/test_distributed.py checks the values); the
    flag keeps them out of the EMA and evaluates/exports the raw ones."""
    from inception import train

    config, strategy, _ = trained
    raw = config.replace(model_dir=str(tmp_path / "raw"), ema_bn_statistics=False)
    built = train.Trainer(raw, strategy, train.make_plan(raw, strategy)).state
    statistics = {id(v) for v in built.moving_statistics}
    assert len(statistics) == 2 * _batch_norms(built.model) > 50
    assert len(built.ema.averages) == len(built.model.trainable_variables)
    pairs = [
        (s, t) for s, t in zip(built.eval_sources, built.eval_targets) if not t.trainable
    ]  # the inference model's BN statistics (no aux head)
    assert len(pairs) == 2 * _batch_norms(built.eval_model) > 50
    assert all(id(s) in statistics for s, _ in pairs)


def _batch_norms(model):
    import keras

    return sum(
        isinstance(layer, keras.layers.BatchNormalization)
        for layer in model._flatten_layers(include_self=False, recursive=True)
    )


# ---------------------------------------------------------------------------- NaN -----------
def test_nan_loss_stops_cleanly_keeping_the_last_good_checkpoint(trained, tmp_path, capsys):
    """main.py's path (exit status 1, the message) in this process, with the NaN injected by
    tests/faulty_main.py's loss hook."""
    from faulty_main import nan_at

    config, _, _ = trained
    d = tmp_path / "nan"
    nan = config.replace(
        model_dir=str(d),
        mode="train",
        aux_logits=False,
        batch_size=8,
        steps_per_epoch=20,
        epochs=1,
        checkpoint_every_steps=2,
        keep_checkpoints=5,
    )
    with no_grappler():
        rc, err = _main_py(nan, capsys, loss_hook=nan_at(4))
    assert rc == 1, err
    assert "training stopped at step 5: the loss is NaN" in err
    assert "last good checkpoint" in err and "ckpt-4" in err
    assert _checkpoint_steps(d) == [2, 4]
    assert not os.path.exists(d / "summary.json")
