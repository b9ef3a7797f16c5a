"""Evaluation of the EMA weights on the validation split, and the exported ``ema_model.keras``."""

from inception import fileio
from inception.runfiles import EMA_MODEL
from inception.train import inputs
from inception.train.steps import TOP_K


class Validation:
    """Loads the EMA weights into the inference model, then evaluates or exports it. The eval
    step and pipeline are made on first use (``pipe`` may be replaced, e.g. by another batch)."""

    def __init__(self, config, strategy, plan, task):
        self.config, self.strategy, self.plan, self.task = config, strategy, plan, task
        self._steps = None
        self.pipe = None

    def _ready(self):
        if self._steps is None:
            self._steps = self.task.eval_steps()
            self.pipe = inputs.pipeline(self.config, self.plan, "eval", self.config.run.seed,
                                        is_training=False)
        return self._steps

    def evaluate(self):
        """Validation metrics (loss without smoothing, top-1/3/5) of the EMA weights."""
        steps = self._ready()
        steps.load_weights()
        dataset = self.strategy.distribute_datasets_from_function(self.pipe.input_fn)
        totals = None
        for batch in dataset:
            out = {k: v.numpy() for k, v in steps.step(batch).items()}
            totals = out if totals is None else {k: totals[k] + out[k] for k in totals}
        n = max(float(totals["count"]), 1.0)
        result = {"val_loss": float(totals["loss"]) / n, "num_eval": int(totals["count"])}
        for k in TOP_K:
            result[f"val_top{k}"] = float(totals[f"top{k}"]) / n
        return result

    def export(self, chief):
        """``ema_model.keras`` <- the inference model with the EMA weights (the chief writes)."""
        self._ready().load_weights()
        if chief:
            fileio.save_keras(self.task.eval_model,
                              fileio.join(self.config.run.model_dir, EMA_MODEL))
