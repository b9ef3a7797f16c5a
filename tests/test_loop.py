"""A new training-loop job is one ``Action`` (ARCHITECTURE.md "Where a new thing goes"): the loop
calls each action at its moments, in order, at exactly the steps it asks to see, and a stop
request ends the run after the moment that asked.

The train step here is a stand-in that counts updates (no network): what is tested is the loop's
contract with its actions, which ``Trainer.make_actions`` relies on.
"""

import numpy as np
import tensorflow as tf

from inception.train.loop import Action, Loop


class _NoSignals:
    def requested(self):
        return False

    def describe(self):
        return ""


class _Pipe:
    def skipped_report(self):
        return "no records skipped"


def _train_step(iterator, flag, length):
    """What ``steps.make_train_loop``'s call returns, for ``length`` updates of loss 1."""
    n = int(length)
    return {
        "loss_sum": tf.constant(float(n)),
        "count": tf.constant(float(n)),
        "grad_norm_sum": tf.constant(float(n)),
        "steps": tf.constant(n),
        "stop_requests": tf.constant(0.0),
    }


def _data(epoch, offset):
    return tf.data.Dataset.range(1000), _Pipe()


class Recorder(Action):
    """Every moment it sees, and a step it asks to see exactly."""

    def __init__(self, every, stop_at=None):
        self.every, self.stop_at, self.seen = every, stop_at, []

    def on_start(self, loop, step):
        self.seen.append(("start", step))

    def on_epoch_begin(self, loop, epoch, step):
        self.seen.append(("epoch_begin", epoch, step))

    def next_moment(self, step):
        return (step // self.every + 1) * self.every

    def on_step(self, loop, step, out):
        self.seen.append(("step", step))
        if step == self.stop_at:
            loop.request_stop("target", "reached")

    def on_epoch_end(self, loop, epoch, step, logs):
        logs["recorded"] = step
        self.seen.append(("epoch_end", epoch, step))

    def on_stop(self, loop, step, stop):
        self.seen.append(("stop", step, stop.reason))

    def on_run_end(self, loop, step):
        self.seen.append(("run_end", step))


class LogsReader(Action):
    """An action after another reads what it put into the epoch's logs."""

    def __init__(self):
        self.read = []

    def on_epoch_end(self, loop, epoch, step, logs):
        self.read.append(logs.get("recorded"))


def test_an_action_sees_every_moment_in_order_at_the_steps_it_asks_for():
    recorder, reader = Recorder(every=3), LogsReader()
    loop = Loop(
        _train_step,
        _data,
        steps_per_epoch=5,
        total_steps=10,
        actions=[recorder, reader],
        signals=_NoSignals(),
        steps_per_loop=4,
    )
    assert loop.run(0) == 10
    steps = [m[1] for m in recorder.seen if m[0] == "step"]
    # Calls of up to 4 updates, cut at the epoch end (5, 10) and at every 3rd step asked for.
    assert steps == [3, 5, 6, 9, 10]
    assert [m for m in recorder.seen if m[0] != "step"] == [
        ("start", 0),
        ("epoch_begin", 0, 0),
        ("epoch_end", 1, 5),
        ("epoch_begin", 1, 5),
        ("epoch_end", 2, 10),
        ("run_end", 10),
    ]
    assert reader.read == [5, 10]


def test_a_stop_request_ends_the_run_after_that_moment():
    recorder = Recorder(every=2, stop_at=4)
    loop = Loop(
        _train_step,
        _data,
        steps_per_epoch=5,
        total_steps=10,
        actions=[recorder],
        signals=_NoSignals(),
    )
    assert loop.run(0) == 4
    assert recorder.seen[-2:] == [("stop", 4, "target"), ("run_end", 4)]
    assert not [m for m in recorder.seen if m[0] == "epoch_end"]


def test_a_resumed_run_starts_inside_its_epoch():
    recorder = Recorder(every=100)
    loop = Loop(
        _train_step,
        _data,
        steps_per_epoch=5,
        total_steps=10,
        actions=[recorder],
        signals=_NoSignals(),
        steps_per_loop=10,
    )
    assert loop.run(7) == 10
    assert recorder.seen == [
        ("start", 7),
        ("epoch_begin", 1, 7),
        ("step", 10),
        ("epoch_end", 2, 10),
        ("run_end", 10),
    ]
    assert np.isfinite(loop.epoch_label(7))
