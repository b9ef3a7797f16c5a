"""One run: the trainer builds and owns the state its task describes (``state.TrainState``: the
models, optimizer, EMA), the checkpoints and the loop's actions, then trains (``train``) or
evaluates (``evaluate_checkpoint``); ``run`` is the library's entry point.

Nothing here writes until ``train`` or ``evaluate_checkpoint`` starts: constructing a Trainer
builds the models and reads the run directory (the identity check), no more. A rerun resumes from
the newest checkpoint (mid-epoch resume: ``inputs.epoch_dataset``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import tensorflow as tf
from absl import logging

from inception import fileio, networks, runfiles
from inception.runfiles import EMA_MODEL, EVAL_JSON, SUMMARY_JSON
from inception.train import actions as actions_lib
from inception.train import devices, inputs, observe, rundir, state, validate, workers
from inception.train import plan as plan_lib
from inception.train import signals as signals_lib
from inception.train import task as task_lib
from inception.train.config import TrainConfig
from inception.train.loop import Loop
from inception.train.steps import TOP_K


class Trainer:
    """One run in its model_dir: the task (``task.Task(config, plan)`` unless given), the state
    built from it, its checkpoints, validation and the loop's actions."""

    def __init__(self, config, strategy, plan, task=None, loss_hook=None):
        self.config, self.strategy, self.plan = config, strategy, plan
        self.loss_hook = loss_hook
        self.chief = devices.is_chief(strategy)
        self.worker_name = devices.worker_name(strategy)
        self._run_record = rundir.check_identity(
            config.run, rundir.describe(config, plan), self.chief
        )
        self.task = task if task is not None else task_lib.Task(config, plan)
        self.state = state.TrainState.build(self.task, strategy, self.chief)
        self.checkpoints = rundir.Checkpoints(
            rundir.checkpoint_dir(config.run.model_dir),
            self.chief,
            self.worker_name,
            config.run.keep_checkpoints,
            model=self.state.model,
            optimizer=self.state.optimizer,
            ema=self.state.ema.averages,
            rng=self.state.rng_states(),
        )
        self.validator = validate.Validator(self.task, strategy, self.state)
        self.metrics_log = observe.MetricsLog(config.run.model_dir, self.chief)
        self.resumed_from = None
        self.actions = None

    @property
    def last_eval(self):
        validation = (self.actions or {}).get("validation")
        return validation.last if validation else None

    def _write_start(self):
        # Only once the model is built and its weights loaded: a refused --init_weights leaves
        # nothing behind, in particular no identity blocking the fix.
        rundir.write_start(self.config.run.model_dir, self._run_record, self.plan.info.label_names)

    def restore(self):
        """Restores the newest checkpoint, if any; returns (its path or None, the step)."""
        path = self.checkpoints.restore()
        step = int(self.state.optimizer.iterations.numpy())
        if path:
            spe = self.plan.steps_per_epoch
            logging.info(
                "resuming from step %d (epoch %d, step %d of %d in it) of checkpoint %s",
                step,
                step // spe + 1,
                step % spe,
                spe,
                path,
            )
            print(f"Resuming from step {step} (checkpoint {path})", flush=True)
        return path, step

    def rebuild_ema_model(self, restored):
        """ema_model.keras <- the restored checkpoint's EMA weights when the file is damaged
        (export.py and evaluate.py refuse a damaged one and send the user here). One worker
        only: the other workers of a multi-worker run would not take part."""
        path = fileio.join(self.config.run.model_dir, EMA_MODEL)
        if not restored or self.worker_name != "chief" or not fileio.exists(path):
            return
        problem = runfiles.keras_file_problem(path)
        if problem:
            self.validator.export(self.chief)
            print(f"Rebuilt {path} ({problem}) from checkpoint {restored}", flush=True)

    def make_actions(self):
        """The loop's actions, by name, in the order the loop calls them."""
        run, schedule = self.config.run, self.state.schedule
        checkpointing = actions_lib.Checkpointing(
            self.checkpoints, run.checkpoint_every_steps, self.state.model.trainable_variables
        )
        named = {
            "finite": actions_lib.FiniteCheck(self.checkpoints),
            "checkpointing": checkpointing,
            "died": actions_lib.DiedCheck(run.died_threshold, run.stop_if_died),
            "validation": actions_lib.EpochValidation(self.validator),
            # Before the target stop: the epoch's figures print before its "stopping" line.
            "metrics": observe.Metrics(
                run.model_dir,
                self.chief,
                run.progress,
                run.log_every_steps,
                self.plan.num_epochs,
                schedule,
            ),
            "target": actions_lib.TargetStop(run.target_top1_error, self.metrics_log, self.chief),
            "ema_export": actions_lib.EmaExport(self.validator, self.chief),
            "preemption": actions_lib.PreemptionSave(checkpointing),
        }
        if run.mode != "train_and_eval":
            del named["validation"]
        if not run.target_top1_error:
            del named["target"]
        return named

    def train(self):
        """Trains from the newest checkpoint to ``plan.total_steps``; returns the last step."""
        # Restore first: a run whose checkpoints are all damaged stops with its directory as it was.
        self.resumed_from, step = self.restore()
        self._write_start()
        self.rebuild_ema_model(self.resumed_from)
        self._warn_about_start(step)
        self.actions = self.make_actions()
        train_step = self.task.train_step(self.strategy, self.state, self.loss_hook)

        def data(epoch, offset):
            pipe = self.task.build_inputs(training=True, epoch=epoch, offset=offset)
            return inputs.epoch_dataset(
                self.strategy, pipe, epoch, offset, self.config.run.deterministic
            ), pipe

        with signals_lib.StopSignals() as stop_signals:
            loop = Loop(
                train_step,
                data,
                self.plan.steps_per_epoch,
                self.plan.total_steps,
                self.actions.values(),
                stop_signals,
                self.config.run.steps_per_loop,
            )
            return loop.run(step)

    def _warn_about_start(self, step):
        model_dir = self.config.run.model_dir
        if not self.resumed_from and self.metrics_log.rows():
            logging.warning(
                "%s holds metrics of an earlier run but no checkpoint: starting from step 0",
                model_dir,
            )
            print(f"Warning: no checkpoint in {model_dir}; starting from step 0", flush=True)
        if step > self.plan.total_steps:
            logging.warning(
                "the checkpoint is at step %d, beyond the %d steps asked for; nothing to train",
                step,
                self.plan.total_steps,
            )

    def summary(self, step, wall_time):
        """summary.json: final validation errors, length, throughput, weights fingerprint."""
        c, plan, named = self.config, self.plan, self.actions
        result = self.last_eval
        if result is None and c.run.mode == "train_and_eval":
            result = self.validator.validate()
        target = named.get("target")
        summary = {
            "model": c.model.name,
            "variant": c.model.variant or networks.DEFAULT_VARIANT[c.model.name],
            "dataset": plan.info.name,
            "global_batch_size": c.recipe.batch_size,
            "num_replicas": plan.num_replicas,
            "strategy": plan.strategy_name,
            "steps": step,
            "steps_per_epoch": plan.steps_per_epoch,
            "epochs": step / plan.steps_per_epoch,
            "train_images_per_sec": observe.finite_or_none(
                named["metrics"].session_stats.images_per_sec()
            ),
            "wall_time_s": wall_time,
            "resumed_from": self.resumed_from,
            "stopped_at_target": bool(target and target.reached),
            "weights_fingerprint": state.fingerprint(self.state.model.trainable_variables),
        }
        if result is not None:
            summary.update(_errors(result))
            summary.update({f"val_top{k}": result[f"val_top{k}"] for k in TOP_K})
            summary.update(val_loss=result["val_loss"], num_eval=result["num_eval"])
        summary["died_fraction"] = observe.finite_or_none(named["died"].last)
        self._write_json(SUMMARY_JSON, summary)
        return summary

    def _write_json(self, name, payload):
        if self.chief:
            fileio.write_json(fileio.join(self.config.run.model_dir, name), payload)

    def evaluate_checkpoint(self):
        """--mode=eval: the newest checkpoint's EMA weights (or, without one, --init_weights)."""
        config = self.config
        init_weights, model_dir = config.model.init_weights, config.run.model_dir
        self._write_start()
        path, step = self.restore()
        self.rebuild_ema_model(path)
        result = self.validator.validate()
        result.update(_errors(result))
        # Without a checkpoint the EMA holds exactly the --init_weights values.
        result.update(step=step, checkpoint=path, init_weights=None if path else init_weights)
        self._write_json(EVAL_JSON, result)
        what = f"{path} (EMA weights)" if path else f"--init_weights={init_weights}"
        if path and init_weights:
            print(
                f"{model_dir} holds checkpoint {path}: it is evaluated, not --init_weights (use "
                "another --model_dir to evaluate the file)",
                flush=True,
            )
        print(
            f"Evaluation of {what}: top-1 error {result['val_top1_error']:.4f}, "
            f"top-3 {result['val_top3_error']:.4f}, top-5 {result['val_top5_error']:.4f} on "
            f"{result['num_eval']} images",
            flush=True,
        )
        return result


def _errors(result):
    return {f"val_top{k}_error": 1.0 - result[f"val_top{k}"] for k in TOP_K}


def run(
    config: TrainConfig,
    strategy: tf.distribute.Strategy | None = None,
    *,
    task_class: type[task_lib.Task] = task_lib.Task,
    loss_hook: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None = None,
) -> dict[str, Any]:
    """Runs ``config`` (a ``config.TrainConfig``): trains (``train``, ``train_and_eval``) and
    returns the summary dict, or evaluates (``eval``) and returns the evaluation.

    ``strategy``: None sets up devices and the strategy from ``config.run`` (``devices.setup``;
    then this must be the process's first TensorFlow work). ``task_class``: the job,
    ``task.Task`` or a subclass, made as ``task_class(config, plan)``. ``loss_hook(loss, step)``: an
    optional function that may replace each replica's loss inside the step (tests inject
    faults with it). Raises ``TrainingError`` (diverged, died, another run's model_dir),
    ``Interrupted`` (SIGTERM/SIGINT: saved, rerun to resume), ``WorkerLost``.
    """
    config.check_paths()
    if strategy is None:
        strategy = devices.setup(config)
    start = time.time()
    plan = plan_lib.make_plan(config, strategy)  # may prepare the dataset
    devices.reseed(config.run.seed)
    # Every collective from here on may find a worker gone.
    with workers.lost_worker_guard(strategy, rundir.checkpoint_dir(config.run.model_dir)):
        trainer = Trainer(
            config, strategy, plan, task=task_class(config, plan), loss_hook=loss_hook
        )
        if config.run.mode == "eval":
            return trainer.evaluate_checkpoint()
        step = trainer.train()
        summary = trainer.summary(step, time.time() - start)
    _report(trainer, config, step, summary, time.time() - start)
    return summary


def _report(trainer, config, step, summary, seconds):
    """The console's last lines of a finished run."""
    logging.info("training done after %.1f s", seconds)
    fingerprint = summary["weights_fingerprint"]
    logging.info("final weights fingerprint (%s): %s", trainer.worker_name, fingerprint)
    print(f"[{trainer.worker_name}] final weights fingerprint: {fingerprint}", flush=True)
    if "val_top1_error" in summary:
        print(
            f"Done: {step} steps, val top-1 error {summary['val_top1_error']:.4f}, top-5 "
            f"{summary['val_top5_error']:.4f}; summary in "
            f"{fileio.join(config.run.model_dir, SUMMARY_JSON)}",
            flush=True,
        )
