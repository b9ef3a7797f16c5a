"""The training loop: it runs steps and calls actions at their moments, nothing else.

In the spirit of TF Model Garden's orbit controller and Keras callbacks: an ``Action`` has a
method per moment (``on_start``, ``on_epoch_begin``, ``on_step``, ``on_epoch_end``, ``on_stop``,
``on_run_end``), the loop calls every action's in order, and a new job (a checkpoint policy, an
evaluation, a stop rule) is a new action, not an edit here. Actions keep their own intervals
("every N steps"), put their epoch results into the epoch's ``logs`` for the actions after them,
and may ask the loop to stop (``Loop.request_stop``); the loop then calls ``on_stop`` (an action
may end the run there by raising) and returns.

One global step = one synchronous update on the global batch (``steps.make_train_step``). One
call of the train step runs up to ``steps_per_loop`` of them on the device and returns their
outputs summed; the loop then calls ``on_step`` once with the step reached. A call never crosses
an epoch end or a step an action asks to see (``Action.next_moment``: checkpoints, scalars), so
those happen at exactly the steps they would with one step per call. Each call takes the stop
flag of this worker's ``signals`` and returns it summed over every worker, so a signal on any
worker stops all of them after the same step; it is read at call boundaries, so it takes effect
up to ``steps_per_loop`` steps later than with one step per call.
"""

import dataclasses
import time

import tensorflow as tf
from absl import logging


@dataclasses.dataclass
class Stop:
    """Why the loop stops early: ``reason`` ("signal", "target", "died", ...) and a message."""

    reason: str
    message: str = ""


class Action:
    """One job of the run. Override the moments it needs; ``logs`` (epoch end) collects the
    epoch's results for the actions after this one."""

    def on_start(self, loop, step):
        """Before the first step (``step``: where the run resumes)."""

    def missed_epoch_end(self, epoch):
        """True when the epoch that ended at the resumed step was never reported (a crash
        between its checkpoint and its report): the loop then replays its epoch end."""
        return False

    def on_epoch_begin(self, loop, epoch, step):
        """Before the first step of ``epoch`` (0-based)."""

    def next_moment(self, step):
        """The next step after ``step`` this action must see in ``on_step`` (None: any)."""
        return None

    def on_step(self, loop, step, out):
        """After every call of the train step: ``out`` holds the outputs (NumPy) of the
        ``out["steps"]`` updates that ended at ``step``, summed (``steps.SUMMED``), their mean
        ``loss`` and ``grad_norm``, and the call's ``seconds``."""

    def on_epoch_end(self, loop, epoch, step, logs):
        """After the last step of an epoch (``epoch``: 1-based, fractional at a run's end inside
        an epoch)."""

    def on_stop(self, loop, step, stop):
        """The loop stops early (``stop``: a ``Stop``); raising ends the run with that error."""

    def on_run_end(self, loop, step):
        """After the last step, when the loop ends without a stop that raised."""


class Loop:
    """Runs ``train_step`` from ``start`` to ``total_steps`` epoch by epoch.

    ``data(epoch, offset)`` -> (the distributed dataset of ``epoch`` from step ``offset`` in it,
    its pipeline); ``signals`` says whether this worker was asked to stop (``requested()``,
    ``describe()``)."""

    def __init__(
        self, train_step, data, steps_per_epoch, total_steps, actions, signals, steps_per_loop=1
    ):
        self.train_step, self.data = train_step, data
        self.steps_per_loop = steps_per_loop
        self.steps_per_epoch, self.total_steps = steps_per_epoch, total_steps
        self.actions, self.signals = list(actions), signals
        self.step = self.epoch_end = 0
        self.stop = None

    def request_stop(self, reason, message=""):
        """Asks the loop to stop after the current moment (the first request wins)."""
        if self.stop is None:
            self.stop = Stop(reason, message)

    def epoch_label(self, step):
        """The epoch that ends at ``step``: an integer at an epoch boundary, else a fraction."""
        epoch, rest = divmod(step, self.steps_per_epoch)
        return epoch if rest == 0 else step / self.steps_per_epoch

    def run(self, step):
        """Trains from ``step``; returns the step reached."""
        self.step = step
        self._call("on_start", step)
        if self.stop is None and step and step % self.steps_per_epoch == 0:
            epoch = self.epoch_label(step)
            if any(a.missed_epoch_end(epoch) for a in self.actions):
                self._call("on_epoch_end", epoch, step, {})
        while self.step < self.total_steps and self.stop is None:
            self._epoch()
        if self.stop is not None:
            self._call("on_stop", self.step, self.stop)
        self._call("on_run_end", self.step)
        return self.step

    def _epoch(self):
        spe = self.steps_per_epoch
        epoch, offset = divmod(self.step, spe)
        self.epoch_end = min((epoch + 1) * spe, self.total_steps)
        dataset, pipe = self.data(epoch, offset)
        self._call("on_epoch_begin", epoch, self.step)
        iterator = iter(dataset)
        while self.step < self.epoch_end:
            self._one_step(iterator)
            if self.stop is not None:
                return
        logging.info("epoch %d: %s", epoch + 1, pipe.skipped_report())
        self._call("on_epoch_end", self.epoch_label(self.step), self.step, {})

    def _call_length(self):
        """Updates in the next call: at most steps_per_loop, up to the epoch end and the
        actions' next moments."""
        end = min(self.step + self.steps_per_loop, self.epoch_end)
        moments = [a.next_moment(self.step) for a in self.actions]
        return min([end] + [m for m in moments if m is not None and m > self.step]) - self.step

    def _one_step(self, iterator):
        flag = tf.constant(1.0 if self.signals.requested() else 0.0, tf.float32)
        start = time.perf_counter()
        length = tf.constant(self._call_length(), tf.int32)
        out = {k: v.numpy() for k, v in self.train_step(iterator, flag, length).items()}
        out["seconds"] = time.perf_counter() - start
        out["loss"] = out["loss_sum"] / max(out["count"], 1.0)
        out["grad_norm"] = out["grad_norm_sum"] / max(out["steps"], 1.0)
        self.step += int(out["steps"])
        self._call("on_step", self.step, out)
        if out["stop_requests"] > 0:
            self.request_stop("signal", self.signals.describe())

    def _call(self, moment, *args):
        for action in self.actions:
            getattr(action, moment)(self, *args)
