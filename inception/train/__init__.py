"""Training as a package: the paper's recipe under tf.distribute, resumable and observable.

    from inception import config, train
    cfg = config.TrainConfig(...)          # or config.TrainConfig.from_flat({...flag names...})
    summary = train.run(cfg)               # sets up the strategy first (train.setup)

Modules, in the order a run uses them:
- ``devices``: the strategy, logical devices, precision and seeds (before any TensorFlow work).
- ``plan``: the checks that need the dataset or the strategy; steps, epochs, peak learning rate,
  the models' build options.
- ``rundir``: the run directory's identity, checkpoints and resume.
- ``task``: the models, starting weights, loss, optimizer, EMA and the compiled steps
  (``steps``; ``state``: schedule, optimizer, EMA; ``replicas``: per-replica dropout and one set
  of BatchNorm statistics); ``inputs``: the pipelines per epoch.
- ``loop``: the loop, which runs steps and calls actions at their moments; ``actions``:
  checkpoints, the finite check, the died signal, evaluation and the EMA model export
  (``validate``), the target stop, the preemption save; ``observe``: progress, TensorBoard and
  metrics.csv; ``signals``: SIGTERM/SIGINT; ``workers``: a lost worker.
- ``trainer``: the ``Trainer`` that assembles them, and ``run``.
"""

from inception.train.devices import setup
from inception.train.errors import (EXIT_ERROR, EXIT_INTERRUPTED, EXIT_WORKER_LOST, Interrupted,
                                    TrainingError, WorkerLost)
from inception.train.plan import check_runtime
from inception.train.trainer import Trainer, run

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_WORKER_LOST", "Interrupted", "TrainingError",
           "Trainer", "WorkerLost", "check_runtime", "run", "setup"]
