"""How long the training loop blocks while it writes a checkpoint of a full-size
Inception-ResNet-v2 (release, aux head, 1000 classes): weights, RMSProp slots, EMA, step.

    .venv/bin/python benchmarks/checkpoint_save.py [--dir /tmp/ckpt_bench] [--rounds 3]

The state is built as the trainer builds it (``inception.train.state.TrainState``, one device)
and saved with the trainer's ``rundir.Checkpoints`` (synchronous: the loop waits for the
files). Then TensorFlow's asynchronous checkpointing (``tf.train.CheckpointOptions(
experimental_enable_async_checkpoint=True)``): on the state's own objects it fails with Keras 3's
variables in TensorFlow 2.21 (printed), so it is timed on plain ``tf.Variable`` copies of the
same tensors (the same bytes): the time ``save`` keeps the caller waiting and the time until the
files are complete. Prints the size and the best and median of ``--rounds`` saves; BUILD_NOTES
"Training" has the figures.
"""

import argparse
import os
import shutil
import statistics
import tempfile
import time
import types

from inception_cli import common

common.setup_script()  # before TensorFlow loads

import tensorflow as tf  # noqa: E402

from inception.train import config as config_lib  # noqa: E402
from inception.train import plan as plan_lib  # noqa: E402
from inception.train import rundir  # noqa: E402
from inception.train import state as state_lib  # noqa: E402
from inception.train import task as task_lib  # noqa: E402


def full_size_state(model_dir):
    """The trainer's TrainState of the ImageNet recipe (IRv2 release, 299x299, 1000 classes)."""
    config = config_lib.TrainConfig.from_flat(dict(model_dir=model_dir, dataset="imagenet2012"))
    info = types.SimpleNamespace(num_classes=1000, name="imagenet2012")
    options = plan_lib.build_options(config, info.num_classes)
    plan = plan_lib.Plan(
        info=info,
        strategy_name="OneDeviceStrategy",
        num_replicas=1,
        steps_per_epoch=5004,
        total_steps=500400,
        num_epochs=100,
        eval_batch_size=256,
        peak_lr=0.36,
        train_options=options,
        inference_options=plan_lib.inference_options(options),
    )
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    return state_lib.TrainState.build(task_lib.Task(config, plan), strategy, chief=True)


def trainer_checkpoints(train_state, directory):
    return rundir.Checkpoints(
        directory,
        True,
        "chief",
        2,
        model=train_state.model,
        optimizer=train_state.optimizer,
        ema=train_state.ema.averages,
        rng=train_state.rng_states(),
    )


def time_saves(save, wait, rounds):
    """[(seconds the caller waited, seconds until the files were complete)] per save."""
    times = []
    for step in range(1, rounds + 1):
        start = time.perf_counter()
        save(step)
        blocked = time.perf_counter() - start
        wait()
        times.append((blocked, time.perf_counter() - start))
    return times


def _report(name, directory, step, times):
    blocked, done = [t[0] for t in times], [t[1] for t in times]
    print(
        f"{name}: {_size(directory, step) / 1e9:.2f} GB; the loop waits {min(blocked):.2f} s "
        f"best, {statistics.median(blocked):.2f} s median; files complete after "
        f"{min(done):.2f} s best, {statistics.median(done):.2f} s median",
        flush=True,
    )


def _size(directory, step):
    prefix = os.path.join(directory, f"ckpt-{step}")
    return sum(
        os.path.getsize(os.path.join(directory, n))
        for n in os.listdir(directory)
        if os.path.join(directory, n).startswith(prefix)
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="where to write (default: a temporary dir)")
    parser.add_argument("--rounds", type=int, default=3)
    common.add_verbose_argument(parser)
    args = parser.parse_args()
    root = args.dir or tempfile.mkdtemp(prefix="ckpt_bench_")
    train_state = full_size_state(os.path.join(root, "run"))
    variables = (
        train_state.model.trainable_variables
        + train_state.optimizer.variables
        + train_state.ema.averages
    )
    print(f"{sum(int(tf.size(v)) for v in variables):,} values in {len(variables)} variables")
    async_options = tf.train.CheckpointOptions(experimental_enable_async_checkpoint=True)
    try:
        directory = os.path.join(root, "synchronous")
        ckpt = trainer_checkpoints(train_state, directory)
        _report(
            "synchronous (the trainer's)",
            directory,
            args.rounds,
            time_saves(ckpt.save, lambda: None, args.rounds),
        )
        own = trainer_checkpoints(train_state, os.path.join(root, "async_own")).checkpoint
        for attempt in (1, 2):  # the trainer saves many times
            try:
                own.write(os.path.join(root, "async_own", f"ckpt-{attempt}"), options=async_options)
                own.sync()
                print(f"asynchronous save {attempt} of the state's own objects: works", flush=True)
            except ValueError as err:
                print(
                    f"asynchronous save {attempt} of the state's own objects fails: "
                    f"{' '.join(str(err).split())[-160:]}",
                    flush=True,
                )
        copies = tf.train.Checkpoint(values=[tf.Variable(v) for v in variables])
        directory = os.path.join(root, "asynchronous")
        manager = tf.train.CheckpointManager(copies, directory, max_to_keep=2)
        _report(
            "asynchronous (tf.Variable copies)",
            directory,
            args.rounds,
            time_saves(
                lambda step: manager.save(checkpoint_number=step, options=async_options),
                copies.sync,
                args.rounds,
            ),
        )
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
