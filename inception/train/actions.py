"""The jobs of a training run, each one loop action (``loop.Action``), in the order the trainer
gives them to the loop: the finite check, checkpoints, the died signal, validation at each epoch
end, the target stop, the EMA model export, the preemption save. The metrics/CSV/TensorBoard
writer is ``observe.Metrics``."""

import math
import time

from absl import logging

from inception.train import observe, state
from inception.train.errors import Interrupted, TrainingError
from inception.train.loop import Action


class Checkpointing(Action):
    """A checkpoint every ``every_steps`` steps and at each epoch end (``rundir.Checkpoints``);
    refuses to save weights that are no longer finite."""

    def __init__(self, checkpoints, every_steps, weights):
        self.checkpoints, self.every, self.weights = checkpoints, every_steps, weights

    def save(self, step):
        """The checkpoint of ``step`` (written once); returns its path."""
        if self.checkpoints.saved_step != step:
            if not state.all_finite(self.weights):
                raise TrainingError(
                    diverged_message(self.checkpoints, step, "the weights are no longer finite")
                )
            self.checkpoints.save(step)
        return self.checkpoints.latest

    def next_moment(self, step):
        return (step // self.every + 1) * self.every

    def on_step(self, loop, step, out):
        if step % self.every == 0 and step != loop.epoch_end:
            self.save(step)

    def on_epoch_end(self, loop, epoch, step, logs):
        self.save(step)


def diverged_message(checkpoints, step, what):
    """Why a run stopped at ``step`` without saving, and what is kept."""
    last = checkpoints.latest
    kept = (
        f"the last good checkpoint ({last}, step {checkpoints.saved_step}) is kept"
        if last
        else "no checkpoint was written"
    )
    return (
        f"training stopped at step {step}: {what}. Nothing was saved after the last "
        f"finite step; {kept}. Lower --learning_rate, clip the gradient (--clip_norm), "
        "or check the data, then rerun the same command to resume from that checkpoint."
    )


class FiniteCheck(Action):
    """A NaN or infinite loss or gradient norm stops the run at once, before the step's other
    actions (no checkpoint of that step)."""

    def __init__(self, checkpoints):
        self.checkpoints = checkpoints

    def on_step(self, loop, step, out):
        loss = float(out["loss"])
        if math.isfinite(loss) and math.isfinite(float(out["grad_norm"])):
            return
        what = (
            "the loss is NaN"
            if math.isnan(loss)
            else (
                f"the loss is {loss}"
                if not math.isfinite(loss)
                else "the gradient norm is not finite"
            )
        )
        raise TrainingError(diverged_message(self.checkpoints, step, what))


class DiedCheck(Action):
    """The paper's "died" signal (section 3.3): the epoch's fraction of exactly-zero activations
    before average pooling, into the epoch's logs; over ``threshold`` a warning, and with
    ``stop`` the run stops with an error once the epoch is reported."""

    def __init__(self, threshold, stop):
        self.threshold, self.stop = threshold, stop
        self.stats, self.last = observe.StepStats(), None

    def on_epoch_begin(self, loop, epoch, step):
        self.stats.reset()

    def on_step(self, loop, step, out):
        self.stats.add_step(out, died=True)

    def on_epoch_end(self, loop, epoch, step, logs):
        if not self.stats.count:
            return
        fraction, channels = self.stats.died_fraction(), self.stats.dead_channels()
        logs.update(died_fraction=fraction, dead_channels=channels)
        self.last = fraction
        self.stats.reset()
        if observe.check_died(fraction, channels, self.threshold, epoch) and self.stop:
            loop.request_stop(
                "died",
                f"stopping at epoch {epoch} (--stop_if_died): the layer "
                "before average pooling has died; see the warning above",
            )

    def on_stop(self, loop, step, stop):
        if stop.reason == "died":
            raise TrainingError(stop.message)


class EpochValidation(Action):
    """Validates the EMA weights at each epoch end (``validate.Validator``) into the logs."""

    def __init__(self, validator):
        self.validator = validator
        self.last = None

    def on_epoch_end(self, loop, epoch, step, logs):
        started = time.time()
        self.last = result = self.validator.validate()
        logging.info("evaluation took %.1f s", time.time() - started)
        logs.update(result)
        logging.info(
            "epoch %g: val top-1 %.4f top-3 %.4f top-5 %.4f loss %.4f (%d images, EMA weights)",
            epoch,
            result["val_top1"],
            result["val_top3"],
            result["val_top5"],
            result["val_loss"],
            result["num_eval"],
        )


class TargetStop(Action):
    """--target_top1_error: stops after the first evaluation at or below the target; a resumed
    run that reached it before (metrics.csv) trains no further."""

    def __init__(self, target, metrics_log, chief):
        self.target, self.metrics_log, self.chief = target, metrics_log, chief
        self.reached = False

    def on_start(self, loop, step):
        if step:
            for epoch, val_top1 in self.metrics_log.logged_val_top1():
                self._check(loop, epoch, val_top1)

    def on_epoch_end(self, loop, epoch, step, logs):
        if "val_top1" in logs:
            self._check(loop, epoch, logs["val_top1"])

    def _check(self, loop, epoch, val_top1):
        if 1.0 - val_top1 <= self.target and not self.reached:
            self.reached = True
            if self.chief:
                print(
                    f"Epoch {epoch}: validation top-1 error {1.0 - val_top1:.4f} is at most "
                    f"--target_top1_error={self.target:g}: stopping",
                    flush=True,
                )
            loop.request_stop("target")


class EmaExport(Action):
    """``ema_model.keras`` (the inference model with the EMA weights) at each epoch end."""

    def __init__(self, validator, chief):
        self.validator, self.chief = validator, chief

    def on_epoch_end(self, loop, epoch, step, logs):
        started = time.time()
        self.validator.export(self.chief)
        logging.info("ema_model.keras written in %.1f s", time.time() - started)


class PreemptionSave(Action):
    """SIGTERM or SIGINT (``signals.StopSignals``): every worker saves the checkpoint of the step
    it stopped after (the same step everywhere, ``loop``), then the run ends with
    ``Interrupted``: where it stopped and how to resume."""

    def __init__(self, checkpointing):
        self.checkpointing = checkpointing

    def on_stop(self, loop, step, stop):
        if stop.reason != "signal":
            return
        path = self.checkpointing.save(step)
        epoch, rest = divmod(step, loop.steps_per_epoch)
        where = (
            f"the end of epoch {epoch}"
            if rest == 0
            else f"epoch {epoch + 1}, step {rest} of {loop.steps_per_epoch}"
        )
        raise Interrupted(
            step,
            path,
            f"{stop.message}: stopped after step {step} ({where}) and "
            f"saved {path}; rerun the same command to resume from there",
        )
