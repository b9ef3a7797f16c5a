"""The training loop: resume, train epoch by epoch, evaluate, save, and report.

One global step = one synchronous update on ``batch_size`` images spread over all replicas
(``steps.make_train_step``). A checkpoint is written every ``checkpoint_every_steps`` and at
each epoch end; a rerun resumes from the newest one (mid-epoch resume: ``inputs.epoch_dataset``).
A non-finite loss or gradient norm stops the run before anything else is saved.
"""

import math
import os
import time

from absl import logging

from inception import networks
from inception.train import devices
from inception.train import inputs
from inception.train import observe
from inception.train import plan as plan_lib
from inception.train import rundir
from inception.train import state
from inception.train import steps
from inception.train import task as task_lib
from inception.train import validate
from inception.train.errors import TrainingError


class Trainer:
    """One run in its model_dir: the task, its checkpoints, observation and validation."""

    def __init__(self, config, strategy, plan, loss_hook=None):
        self.config, self.strategy, self.plan = config, strategy, plan
        self.loss_hook = loss_hook
        self.chief = devices.is_chief(strategy)
        self.task_name = devices.task_name(strategy)
        train_options = task_lib.build_options(config, plan.info.num_classes)
        described = rundir.describe(config, plan, train_options,
                                    task_lib.inference_options(train_options))
        write = rundir.check_identity(config.run, described, self.chief)
        self.task = task_lib.Task(config, strategy, plan, self.chief)
        self.checkpoints = rundir.Checkpoints(
            rundir.checkpoint_dir(config.run.model_dir), self.chief, self.task_name,
            config.run.keep_checkpoints, model=self.task.model, optimizer=self.task.optimizer,
            ema=self.task.ema.averages, rng=self.task.rng_states())
        self.validation = validate.Validation(config, strategy, plan, self.task)
        # The run directory only once the model is built and its weights loaded: a refused
        # --init_weights leaves nothing behind, in particular no identity blocking the fix.
        os.makedirs(config.run.model_dir, exist_ok=True)
        self.observer = observe.Observer(config.run.model_dir, self.chief, config.run.progress)
        if write:
            self.observer.write_json(rundir.RUN_CONFIG, write)
            rundir.write_labels(config.run.model_dir, plan.info.label_names)
        self.last_eval = self.last_died = self.resumed_from = None
        self._last_good = None
        self.reached_target = False

    def restore(self):
        """Restores the newest checkpoint, if any; returns (its path or None, the step)."""
        path = self.checkpoints.restore()
        step = int(self.task.optimizer.iterations.numpy())
        if path:
            spe = self.plan.steps_per_epoch
            logging.info("resuming from step %d (epoch %d, step %d of %d in it) of checkpoint %s",
                         step, step // spe + 1, step % spe, spe, path)
            print(f"Resuming from step {step} (checkpoint {path})", flush=True)
        return path, step

    def _save(self, step):
        if not state.all_finite(self.task.model.trainable_variables):
            raise TrainingError(self._diverged_message(step, "the weights are no longer finite"))
        self.checkpoints.save(step)
        self._last_good = (step, self.checkpoints.manager.latest_checkpoint)

    def _diverged_message(self, step, what):
        last = self._last_good
        kept = (f"the last good checkpoint ({last[1]}, step {last[0]}) is kept"
                if last and last[1] else "no checkpoint was written")
        return (f"training stopped at step {step}: {what}. Nothing was saved after the last "
                f"finite step; {kept}. Lower --learning_rate, clip the gradient (--clip_norm), "
                "or check the data, then rerun the same command to resume from that checkpoint.")

    def _end_of_epoch(self, epoch, step, stats):
        """Evaluation, died signal, exported EMA model and the CSV row for epoch ``epoch``."""
        run = self.config.run
        row = {"epoch": epoch, "step": step,
               "lr": float(self.task.schedule(max(step - 1, 0))),
               "wall_time_s": time.time() - self.observer.start}
        died = False
        if stats is not None and stats.count:
            row.update(observe.epoch_row(stats))
            self.last_died = row["died_fraction"]
            died = observe.check_died(row["died_fraction"], row["dead_channels"],
                                      run.died_threshold, epoch)
            self.observer.train_scalars(step, {"died_fraction": row["died_fraction"],
                                               "dead_channels": row["dead_channels"]})
        if run.mode == "train_and_eval":
            started = time.time()
            self.last_eval = self.validation.evaluate()
            logging.info("evaluation took %.1f s", time.time() - started)
            row.update(self.last_eval)
            self.observer.report_eval(step, epoch, self.last_eval)
            self._check_target(epoch, self.last_eval["val_top1"])
        started = time.time()
        self.validation.export(self.chief)
        logging.info("ema_model.keras written in %.1f s", time.time() - started)
        self.observer.csv_row(row)
        if died and run.stop_if_died:
            raise TrainingError(f"stopping at epoch {epoch} (--stop_if_died): the layer before "
                                "average pooling has died; see the warning above")

    def _check_target(self, epoch, val_top1):
        """--target_top1_error: marks the run done once an evaluation reaches the target."""
        target = self.config.run.target_top1_error
        if target and 1.0 - val_top1 <= target and not self.reached_target:
            self.reached_target = True
            if self.chief:
                print(f"Epoch {epoch}: validation top-1 error {1.0 - val_top1:.4f} is at most "
                      f"--target_top1_error={target:g}: stopping", flush=True)

    def _start(self):
        """Restores; finishes the report of an epoch whose checkpoint outran its CSV row."""
        resumed_from, step = self.restore()
        self._last_good = (step, resumed_from)
        model_dir, spe = self.config.run.model_dir, self.plan.steps_per_epoch
        if not resumed_from and self.observer.logged_epochs():
            logging.warning("%s holds metrics of an earlier run but no checkpoint: starting from "
                            "step 0", model_dir)
            print(f"Warning: no checkpoint in {model_dir}; starting from step 0", flush=True)
        if step > self.plan.total_steps:
            logging.warning("the checkpoint is at step %d, beyond the %d steps asked for; nothing "
                            "to train", step, self.plan.total_steps)
        # A crash between an epoch-end checkpoint and its CSV row: finish that epoch's report.
        if step and step % spe == 0:
            done_epoch = step // spe
            if done_epoch not in self.observer.logged_epochs():
                self._end_of_epoch(done_epoch, step, None)
        if resumed_from and self.config.run.target_top1_error:
            for epoch, val_top1 in self.observer.logged_val_top1():  # reached before the rerun
                self._check_target(epoch, val_top1)
        return resumed_from, step

    def train(self):
        """Trains from the newest checkpoint to ``plan.total_steps``; returns the last step."""
        spe, total = self.plan.steps_per_epoch, self.plan.total_steps
        self.resumed_from, step = self._start()
        train_step = steps.make_train_step(self.task, self.config, self.strategy, self.loss_hook)
        stats, self.session_stats = observe.StepStats(), observe.StepStats()
        first_step = step
        while step < total and not self.reached_target:
            epoch, offset = divmod(step, spe)
            end = min((epoch + 1) * spe, total)
            dataset, pipe = inputs.epoch_dataset(self.config, self.strategy, self.plan, epoch,
                                                 offset)
            bar = self.observer.progbar(spe, epoch, self.plan.num_epochs)
            stats.reset()
            step = self._train_epoch(train_step, iter(dataset), bar, stats, step, end, first_step)
            self._save(step)
            logging.info("epoch %d: %s", epoch + 1, pipe.skipped_report())
            self._end_of_epoch(epoch + 1 if step % spe == 0 else step / spe, step, stats)
        return step

    def _train_epoch(self, train_step, iterator, bar, stats, step, end, first_step):
        """Steps up to ``end`` (the epoch's end); returns the step reached."""
        run, epoch_start = self.config.run, step - step % self.plan.steps_per_epoch
        while step < end:
            start = time.perf_counter()
            out = {k: v.numpy() for k, v in train_step(iterator).items()}
            seconds = time.perf_counter() - start
            step += 1
            self._check_finite(step, out)
            timed = seconds if step > first_step + 1 else None  # the first step compiles
            stats.add_step(out, timed, died=True)
            self.session_stats.add_step(out, timed)
            if bar is not None:
                bar.update(step - epoch_start, [
                    ("loss", stats.loss()), ("top1", stats.accuracy()[0]),
                    ("lr", float(out["lr"])), ("img/s", float(out["count"]) / seconds)])
            if step % run.log_every_steps == 0 or step == end:
                self.observer.train_step_scalars(step, stats, out)
            if step % run.checkpoint_every_steps == 0 and step != end:
                self._save(step)
        return step

    def _check_finite(self, step, out):
        loss = float(out["loss"])
        if not (math.isfinite(loss) and math.isfinite(float(out["grad_norm"]))):
            what = "the loss is NaN" if math.isnan(loss) else (
                f"the loss is {loss}" if not math.isfinite(loss)
                else "the gradient norm is not finite")
            raise TrainingError(self._diverged_message(step, what))

    def summary(self, step, wall_time):
        """summary.json: final validation errors, length, throughput, weights fingerprint."""
        c, plan = self.config, self.plan
        result = self.last_eval
        if result is None and c.run.mode == "train_and_eval":
            result = self.validation.evaluate()
        summary = {
            "model": c.model.name,
            "variant": c.model.variant or networks.DEFAULT_VARIANT[c.model.name],
            "dataset": plan.info.name, "global_batch_size": c.recipe.batch_size,
            "num_replicas": plan.num_replicas, "strategy": plan.strategy_name,
            "steps": step, "steps_per_epoch": plan.steps_per_epoch,
            "epochs": step / plan.steps_per_epoch,
            "train_images_per_sec": observe.finite_or_none(self.session_stats.images_per_sec()),
            "wall_time_s": wall_time,
            "resumed_from": self.resumed_from,
            "stopped_at_target": self.reached_target,
            "weights_fingerprint": state.fingerprint(self.task.model.trainable_variables),
        }
        if result is not None:
            summary.update(_errors(result))
            summary.update({f"val_top{k}": result[f"val_top{k}"] for k in steps.TOP_K})
            summary.update(val_loss=result["val_loss"], num_eval=result["num_eval"])
        summary["died_fraction"] = observe.finite_or_none(self.last_died)
        self.observer.write_json("summary.json", summary)
        return summary


def _errors(result):
    return {f"val_top{k}_error": 1.0 - result[f"val_top{k}"] for k in steps.TOP_K}


def _evaluate_checkpoint(trainer):
    """--mode=eval: the newest checkpoint's EMA weights (or, without one, --init_weights)."""
    config = trainer.config
    init_weights, model_dir = config.model.init_weights, config.run.model_dir
    path, step = trainer.restore()
    result = trainer.validation.evaluate()
    result.update(_errors(result))
    # Without a checkpoint the EMA holds exactly the --init_weights values.
    result.update(step=step, checkpoint=path, init_weights=None if path else init_weights)
    trainer.observer.write_json("eval.json", result)
    what = f"{path} (EMA weights)" if path else f"--init_weights={init_weights}"
    if path and init_weights:
        print(f"{model_dir} holds checkpoint {path}: it is evaluated, not --init_weights (use "
              "another --model_dir to evaluate the file)", flush=True)
    print(f"Evaluation of {what}: top-1 error {result['val_top1_error']:.4f}, "
          f"top-3 {result['val_top3_error']:.4f}, top-5 {result['val_top5_error']:.4f} on "
          f"{result['num_eval']} images", flush=True)
    return result


def run(config, strategy=None, *, loss_hook=None):
    """Runs ``config`` (a ``config.TrainConfig``): trains (``train``, ``train_and_eval``) and
    returns the summary dict, or evaluates (``eval``) and returns the evaluation.

    ``strategy``: None sets up devices and the strategy from ``config.run`` (``devices.setup``;
    then this must be the process's first TensorFlow work). ``loss_hook(loss, step)``: an
    optional function that may replace each replica's loss inside the step (tests inject
    faults with it).
    """
    if strategy is None:
        strategy = devices.setup(config)
    start = time.time()
    plan = plan_lib.check_runtime(config, strategy)  # may prepare the dataset
    devices.reseed(config.run.seed)
    trainer = Trainer(config, strategy, plan, loss_hook=loss_hook)
    if config.run.mode == "eval":
        return _evaluate_checkpoint(trainer)
    step = trainer.train()
    logging.info("training loop done after %.1f s", time.time() - start)
    summary = trainer.summary(step, time.time() - start)
    fingerprint = summary["weights_fingerprint"]
    logging.info("final weights fingerprint (%s): %s", trainer.task_name, fingerprint)
    print(f"[{trainer.task_name}] final weights fingerprint: {fingerprint}", flush=True)
    if "val_top1_error" in summary:
        print(f"Done: {step} steps, val top-1 error {summary['val_top1_error']:.4f}, top-5 "
              f"{summary['val_top5_error']:.4f}; summary in "
              f"{os.path.join(config.run.model_dir, 'summary.json')}", flush=True)
    return summary
