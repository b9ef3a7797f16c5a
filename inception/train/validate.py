"""Validation of the EMA weights on the validation split, and the exported ``ema_model.keras``."""

from inception import fileio
from inception.runfiles import EMA_MODEL
from inception.train import steps


class Validator:
    """Loads the EMA weights of ``train_state`` into its inference model, then validates (the
    task's ``validation_step``, ``aggregate`` and ``validation_result``) or exports it. The eval
    step and pipeline are made on first use (``pipe`` may be replaced, e.g. by another batch)."""

    def __init__(self, task, strategy, train_state):
        self.task, self.strategy, self.state = task, strategy, train_state
        self._steps = None
        self.pipe = None

    def _ready(self):
        if self._steps is None:
            s = self.state
            parts = steps.EvalParts(
                eval_model=s.eval_model,
                validation_step=self.task.validation_step,
                sources=s.eval_sources,
                targets=s.eval_targets,
                jit_compile=bool(self.task.config.run.jit_compile),
            )
            self._steps = steps.make_eval_steps(self.strategy, parts)
            self.pipe = self.task.build_inputs(training=False)
        return self._steps

    def validate(self):
        """Validation metrics (loss without smoothing, top-1/3/5) of the EMA weights."""
        eval_steps = self._ready()
        eval_steps.load_weights()
        dataset = self.strategy.distribute_datasets_from_function(self.pipe.input_fn)
        totals = None
        for batch in dataset:
            outputs = {k: v.numpy() for k, v in eval_steps.step(batch).items()}
            totals = self.task.aggregate(totals, outputs)
        return self.task.validation_result(totals)

    def export(self, chief):
        """``ema_model.keras`` <- the inference model with the EMA weights (the chief writes)."""
        self._ready().load_weights()
        if chief:
            fileio.save_keras(
                self.state.eval_model, fileio.join(self.task.config.run.model_dir, EMA_MODEL)
            )
