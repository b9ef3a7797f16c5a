"""The paths a real ImageNet run turns on (issue 25): bfloat16 training (``--mixed_precision``),
the whole training step under XLA (``--jit_compile``) and many steps per host call
(``--steps_per_loop``).

XLA: the compiled and the uncompiled update are compared step by step from the same state (every
variable of the plain run copied into the compiled one before each step), for each network. A
comparison of two free-running trajectories would not test the step: the first training steps
of these small BatchNorm networks amplify round-off, so two runs that differ in nothing but
rounding part after a few steps (BUILD_NOTES "The whole step under XLA": Grappler on against off
diverges as much as XLA against plain). Dropout is off there: XLA draws its own random numbers
(same distribution, other values).
"""

import contextlib
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from training_runs import SHALLOW, env, no_grappler

STEPS = 20
BATCH = 16


@contextlib.contextmanager
def no_op_determinism():
    """Inside: TensorFlow's op determinism off (another test in this process may have turned it
    on; XLA refuses max pooling's gradient under it, and the config refuses --deterministic with
    --jit_compile)."""
    from tensorflow.python.framework import config as tf_config

    before = tf_config.is_op_determinism_enabled()
    tf_config.disable_op_determinism()
    try:
        yield
    finally:
        if before:
            tf_config.enable_op_determinism()


@contextlib.contextmanager
def precision(mixed):
    """Keras' global policy inside: ``mixed`` True, False or "float64"."""
    from inception.train import devices

    before = keras.mixed_precision.dtype_policy()
    if mixed == "float64":
        keras.mixed_precision.set_dtype_policy("float64")
    else:
        devices.set_precision(mixed)
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(before)


def _config(digits_dir, model_dir, name, jit=False, mixed=False):
    from inception.train.config import TrainConfig

    return TrainConfig.from_flat(
        dict(
            model=name,
            width_multiplier=0.1,
            image_size=75,
            repeats=SHALLOW,
            aux_logits=True,
            dataset="sklearn_digits",
            data_dir=digits_dir,
            model_dir=str(model_dir),
            batch_size=BATCH,
            steps_per_epoch=STEPS,
            epochs=1,
            mode="train",
            jit_compile=jit,
            mixed_precision=mixed is True,
            dropout_rate=0.0,
            bn_momentum=0.9,
            progress=False,
            seed=0,
        )
    )


def _task(config):
    """(strategy, plan, the Task, its TrainState built as the trainer builds it, from seed 0: the
    same initial weights each time)."""
    from inception.train import plan as plan_lib
    from inception.train import state as state_lib
    from inception.train import task as task_lib

    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    plan = plan_lib.make_plan(config, strategy)
    task = task_lib.Task(config, plan)
    keras.utils.set_random_seed(0)
    return strategy, plan, task, state_lib.TrainState.build(task, strategy, chief=True)


def _groups(s):
    """Every variable a training step of TrainState ``s`` writes, by kind, in build order."""
    statistics = [w for w in s.model.non_trainable_weights if "moving_" in w.path]
    return {
        "weights": list(s.model.trainable_variables),
        "statistics": statistics,
        "slots": [v for v in s.optimizer.variables if v is not s.optimizer.iterations],
        "ema": list(s.ema.averages),
    }


def _state(s):
    """Every variable a training step of TrainState ``s`` reads or writes, in build order."""
    return (
        list(s.model.weights) + list(s.optimizer.variables) + list(s.ema.averages) + s.rng_states()
    )


def _batches(config, plan):
    """STEPS batches of uniform noise in [-1, 1] and random labels. Not the digits: their
    constant backgrounds give the first BatchNorm channels of near-zero variance, where any
    reordering of the moments' sums changes the normalised values (and gradients) by percents."""
    rng = np.random.default_rng(0)
    size, classes = config.model.image_size, plan.info.num_classes
    return (
        rng.uniform(-1, 1, (STEPS * BATCH, size, size, 3)).astype("float32"),
        rng.integers(0, classes, STEPS * BATCH).astype("int64"),
    )


def _iterator(strategy, batches):
    dataset = tf.data.Dataset.from_tensor_slices(batches).batch(BATCH)
    return iter(strategy.experimental_distribute_dataset(dataset))


def _compare_steps(digits_dir, tmp_path, name, others):
    """Runs STEPS updates of the plain step of ``name``; before each, the TrainState of every
    label of ``others`` ({label: (jit, mixed)}) gets the plain one's values and runs the same
    update. Returns the
    plain losses and, per label, the largest relative differences from the plain run: of the
    loss, and of each group's update (``_update_difference``)."""
    mixed = others.pop("plain")
    with precision(mixed), no_grappler(), no_op_determinism():  # no Grappler: test speed
        config = _config(digits_dir, tmp_path / "plain", name, mixed=mixed)
        built = {"plain": _task(config)}
        strategy, plan, _, plain = built["plain"]
        batches = _batches(config, plan)
        states = {}
        for label, (jit, other_mixed) in others.items():
            with precision(other_mixed):
                built[label] = _task(_config(digits_dir, tmp_path / label, name, jit, other_mixed))
                states[label] = built[label][3]
        runs = {
            label: (s, task.train_step(own_strategy, s), _iterator(strategy, batches))
            for label, (own_strategy, _, task, s) in built.items()
        }
        one, no_stop = tf.constant(1), tf.constant(0.0)
        losses, worst = [], {label: {} for label in others}
        for _ in range(STEPS):
            for other in states.values():
                for target, source in zip(_state(other), _state(plain)):
                    target.assign(source.numpy())
            before = {k: [v.numpy() for v in vs] for k, vs in _groups(plain).items()}
            out = {label: step(data, no_stop, one) for label, (_, step, data) in runs.items()}
            loss = float(out["plain"]["loss_sum"] / out["plain"]["count"])
            losses.append(loss)
            for label, other_state in states.items():
                other = float(out[label]["loss_sum"] / out[label]["count"])
                differences = dict(
                    _update_difference(before, _groups(plain), _groups(other_state)),
                    loss=abs(other - loss) / abs(loss),
                )
                for key, value in differences.items():
                    worst[label][key] = max(worst[label].get(key, 0.0), value)
    return plain, losses, worst


def _update_difference(before, plain, other):
    """Per group (weights, BatchNorm statistics, optimizer slots, EMA): ||other's update -
    plain's update|| / ||plain's update||, the group's variables as one vector. Per variable the
    ratio would say little: a BatchNorm beta's gradient is a sum that nearly cancels, so its
    tiny update carries the round-off of the large terms."""
    out = {}
    for group, old in before.items():
        difference = size = 0.0
        for b, p, o in zip(old, plain[group], other[group]):
            p, o = p.numpy().astype("float64"), o.numpy().astype("float64")
            difference += float(np.sum(np.square(o - p)))
            size += float(np.sum(np.square(p - b)))
        out[group] = (difference / size) ** 0.5 if size else float(difference > 0)
    return out


# In float64 the compiled update is the plain one to round-off: measured at most 3e-7 (the
# classifier and the loss stay float32), where a missing or doubled part of the update (EMA,
# BatchNorm statistics, RMSProp slots) would be 1. Not float32: there XLA's own convolutions
# round differently, and a ReLU input within round-off of zero flips on about one step in three
# (BUILD_NOTES "The whole step under XLA": from 1e-5 to a few percent of a step's update).
FLOAT64 = 1e-5


# XLA compiles each network's step in 20-30 s here: the default suite checks Inception-ResNet-v2
# (the demo's network); `make test-slow` the other two and the bfloat16 step.
@pytest.mark.parametrize(
    "name",
    [
        "inception_resnet_v2",
        pytest.param("inception_v4", marks=pytest.mark.slow),
        pytest.param("inception_resnet_v1", marks=pytest.mark.slow),
    ],
)
def test_the_compiled_step_computes_the_plain_update(digits_dir, tmp_path, name):
    """--jit_compile with one replica compiles forward, backward, RMSProp, the BatchNorm
    statistics and the EMA into one XLA computation; it computes what the plain step does."""
    _, losses, worst = _compare_steps(
        digits_dir, tmp_path, name, {"plain": "float64", "xla": (True, "float64")}
    )
    assert all(np.isfinite(losses))
    assert set(worst["xla"]) == {"loss", "weights", "statistics", "slots", "ema"}
    assert max(worst["xla"].values()) <= FLOAT64, worst


@pytest.mark.slow
def test_the_compiled_bfloat16_step_is_as_close_to_float32_as_the_plain_one(digits_dir, tmp_path):
    """Inception-ResNet-v2 in bfloat16, the TPU's precision, under XLA: bfloat16 rounding (8
    bits of mantissa) moves each update by tens of percent from the float32 one, so the compiled
    bfloat16 update is held to the distance of the plain bfloat16 update from float32."""
    _, losses, worst = _compare_steps(
        digits_dir,
        tmp_path,
        "inception_resnet_v2",
        {"plain": False, "xla_bf16": (True, True), "plain_bf16": (False, True)},
    )
    assert all(np.isfinite(losses))
    for key, plain_distance in worst["plain_bf16"].items():
        assert worst["xla_bf16"][key] <= 1.5 * plain_distance + 1e-3, (key, worst)


def test_bfloat16_training_keeps_float32_state(digits_dir, tmp_path):
    """--mixed_precision computes the body in bfloat16; variables, BatchNorm moving statistics,
    the EMA, RMSProp's slots, the logits and the loss stay float32; evaluation is float32."""
    with precision(True):
        config = _config(digits_dir, tmp_path, "inception_resnet_v2", mixed=True)
        with no_grappler():
            strategy, plan, task, s = _task(config)
            images, labels = (t[:BATCH] for t in _batches(config, plan))
            outputs = s.train_net(images, training=True)
            loss, logits = task.loss(s.model, tf.constant(labels), outputs, float(BATCH), 1.0)
            step = task.train_step(strategy, s)
            out = step(_iterator(strategy, (images, labels)), tf.constant(0.0), tf.constant(1))
    assert s.model.get_layer("stem").compute_dtype == "bfloat16"
    assert outputs[-1].dtype == tf.bfloat16  # the feature map before pooling
    assert logits.dtype == tf.float32 and outputs[1].dtype == tf.float32  # main and aux logits
    assert loss.dtype == tf.float32 and out["loss_sum"].dtype == tf.float32
    statistics = [w for w in s.model.weights if "moving_" in w.path]
    assert statistics and all(w.dtype == "float32" for w in statistics)
    assert all(w.dtype == "float32" for w in s.model.weights)
    assert all(v.dtype == "float32" for v in s.ema.averages)
    slots = [v for v in s.optimizer.variables if "velocity" in v.path or "momentum" in v.path]
    assert len(slots) == 2 * len(s.model.trainable_variables)
    assert all(v.dtype == "float32" for v in slots)
    assert int(s.optimizer.iterations.numpy()) == 1 and np.isfinite(float(out["loss_sum"]))
    assert s.eval_model.get_layer("stem").compute_dtype == "float32"


# Two --deterministic runs on one epoch of 13 steps: one step per call, and --steps_per_loop=10
# (calls of 10, then 2 up to the checkpoint at step 12, then 1 to the epoch end); then a bfloat16
# rerun in the float32 run's directory, which is refused.
SCRIPT = r"""
import json, sys
import tensorflow as tf
from inception import train
from inception.train import config

tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})  # test speed


def cfg(model_dir, steps_per_loop, mixed=False, epochs=1):
    return config.TrainConfig(
        model=config.ModelConfig(name="inception_resnet_v1", width_multiplier=0.1, image_size=75,
                                 repeats=(1, 1, 1), aux_logits=False, bn_momentum=0.9),
        data=config.DataConfig(dataset="sklearn_digits", data_dir=sys.argv[1]),
        recipe=config.RecipeConfig(batch_size=8, steps_per_epoch=13, epochs=epochs, ema_decay=0.9),
        run=config.RunConfig(mode="train", model_dir=model_dir, progress=True, seed=4,
                             deterministic=True, strategy="one_device", steps_per_loop=steps_per_loop,
                             checkpoint_every_steps=12, log_every_steps=5, mixed_precision=mixed))

strategy = None
out = {}
for n in (1, 10):
    c = cfg(f"{sys.argv[2]}/n{n}", n)
    strategy = strategy or train.setup(c)
    out[n] = train.run(c, strategy)
try:
    train.run(cfg(f"{sys.argv[2]}/n1", 1, mixed=True, epochs=2), strategy)
    out["refused"] = None
except train.TrainingError as err:
    out["refused"] = str(err)
print(json.dumps(out))
"""


def test_steps_per_loop_changes_no_number_and_precision_is_kept(digits_dir, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, digits_dir, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env(),
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    one, ten = out["1"], out["10"]
    assert one["steps"] == ten["steps"] == 13
    assert one["weights_fingerprint"] == ten["weights_fingerprint"]
    from training_runs import checkpoint_steps

    for n in (1, 10):
        assert checkpoint_steps(tmp_path / f"n{n}") == [12, 13]  # at their exact steps
        with open(tmp_path / f"n{n}" / "metrics.csv") as f:
            assert len(f.read().strip().splitlines()) == 2  # header and the epoch's row
    # The epoch's line (stdout is a pipe: one line per epoch) counts its 13 steps.
    assert "13/13" in proc.stdout
    assert "precision: 'float32' there, 'mixed_bfloat16' now" in out["refused"]


@pytest.mark.parametrize(
    "flat,message",
    [
        (dict(steps_per_loop=0), "--steps_per_loop must be a positive integer"),
        (dict(steps_per_loop=-3), "--steps_per_loop must be a positive integer"),
        (
            dict(sync_batch_norm=True, jit_compile=True),
            "--sync_batch_norm and --jit_compile cannot be combined",
        ),
        (
            dict(deterministic=True, jit_compile=True),
            "--deterministic and --jit_compile cannot be combined",
        ),
    ],
)
def test_settings_the_step_cannot_serve_are_refused_by_the_config(flat, message):
    from inception.train.config import TrainConfig

    with pytest.raises(ValueError, match=message):
        TrainConfig.from_flat(flat)


def test_step_statistics_add_calls_of_several_steps():
    """One call of two steps counts as two steps in the epoch's means."""
    from inception.train import observe

    stats = observe.StepStats()
    stats.add_step(
        {
            "count": 8.0,
            "loss_sum": 12.0,
            "top1": 4.0,
            "top3": 6.0,
            "top5": 8.0,
            "zeros": 2.0,
            "size": 8.0,
            "dead_channels": 0.5,
            "steps": 2.0,
        },
        died=True,
    )
    stats.add_step(
        {
            "count": 4.0,
            "loss_sum": 0.0,
            "top1": 4.0,
            "top3": 4.0,
            "top5": 4.0,
            "zeros": 0.0,
            "size": 4.0,
            "dead_channels": 0.0,
            "steps": 1.0,
        },
        died=True,
    )
    assert stats.steps == 3 and stats.loss() == pytest.approx(1.0)
    assert stats.accuracy()[0] == pytest.approx(8 / 12)
    assert stats.dead_channels() == pytest.approx(0.5 / 3)
    assert stats.died_fraction() == pytest.approx(2 / 12)


def test_a_cpu_without_native_bfloat16_is_told_once(tmp_path, capsys, monkeypatch):
    """--mixed_precision on a CPU that reports neither AVX512_BF16 nor AMX_BF16: one line, and
    the run goes on (it is not an error)."""
    from inception.train import devices

    plain, native = tmp_path / "plain", tmp_path / "native"
    plain.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    native.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n")
    assert devices.bf16_native_cpu(str(plain)) is False
    assert devices.bf16_native_cpu(str(native)) is True
    assert devices.bf16_native_cpu(str(tmp_path / "missing")) is None  # cannot tell: no warning
    monkeypatch.setattr(devices, "bf16_native_cpu", lambda: False)
    with precision(True):
        assert keras.mixed_precision.dtype_policy().name == "mixed_bfloat16"
    warned = [line for line in capsys.readouterr().out.splitlines() if "bfloat16" in line]
    assert len(warned) == 1 and "no native bfloat16" in warned[0]
