"""Training as a package: the paper's recipe under tf.distribute, resumable and observable.

    from inception import train
    from inception.train.config import TrainConfig
    cfg = TrainConfig(...)                 # or TrainConfig.from_flat({...flag names...})
    summary = train.run(cfg)               # sets up the strategy first (train.setup)

Modules, in the order a run uses them:
- ``config``: ``TrainConfig`` and its sections (model, data, recipe, run), with every check that
  needs neither the dataset nor the strategy; pure Python.
- ``devices``: the strategy, logical devices, precision and seeds (before any TensorFlow work).
- ``plan``: ``make_plan``, the ``Plan`` (steps, epochs, peak learning rate, the models' build
  options) after the checks that need the dataset or the strategy.
- ``rundir``: the run directory's identity, checkpoints and resume.
- ``task``: the ``Task``, the stateless description of the job (TF Model Garden's meaning): how
  to build the models, starting weights, inputs (``inputs``: the pipelines per epoch), schedule,
  optimizer and EMA; the loss, the training step (``steps``) and the validation step. A new job
  is a subclass.
- ``state``: the ``TrainState`` the trainer builds from the task in one fixed order and owns
  (models, optimizer, EMA; the schedule, optimizer and EMA classes); ``replicas``: per-replica
  dropout and one set of BatchNorm statistics.
- ``loop``: the loop, which runs steps and calls actions at their moments; ``actions``:
  checkpoints, the finite check, the died signal, validation at each epoch end and the EMA model
  export (``validate.Validator``), the target stop, the preemption save; ``observe``: progress,
  TensorBoard and metrics.csv; ``signals``: SIGTERM/SIGINT; ``workers``: a lost worker.
- ``trainer``: the ``Trainer`` that assembles them, and ``run``.

Importing the package loads nothing else: the names below load their module on first use
(PEP 562), so ``inception.train.config`` is read without TensorFlow.
"""

from inception import lazy

# Each public name -> the module that defines it.
_HOMES = {
    "setup": "devices",
    "EXIT_ERROR": "errors",
    "EXIT_INTERRUPTED": "errors",
    "EXIT_WORKER_LOST": "errors",
    "Interrupted": "errors",
    "TrainingError": "errors",
    "WorkerLost": "errors",
    "make_plan": "plan",
    "Task": "task",
    "Trainer": "trainer",
    "run": "trainer",
}

__all__ = sorted(_HOMES)

__getattr__, __dir__ = lazy.exports(__name__, _HOMES, globals())
