"""Training as a package: the paper's recipe under tf.distribute, resumable and observable.

    from inception import config, train
    cfg = config.TrainConfig(...)          # or config.TrainConfig.from_flat({...flag names...})
    summary = train.run(cfg)               # sets up the strategy first (train.setup)

Modules, in the order a run uses them:
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
"""

from inception.train.devices import setup
from inception.train.errors import (EXIT_ERROR, EXIT_INTERRUPTED, EXIT_WORKER_LOST, Interrupted,
                                    TrainingError, WorkerLost)
from inception.train.plan import make_plan
from inception.train.task import Task
from inception.train.trainer import Trainer, run

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_WORKER_LOST", "Interrupted", "Task",
           "TrainingError", "Trainer", "WorkerLost", "make_plan", "run", "setup"]
