"""Training as a package: the paper's recipe under tf.distribute, resumable and observable.

    from inception import config, train
    cfg = config.TrainConfig(...)          # or config.TrainConfig.from_flat({...flag names...})
    summary = train.run(cfg)               # sets up the strategy first (train.setup)

Modules, in the order a run uses them:
- ``devices``: the strategy, logical devices, precision and seeds (before any TensorFlow work).
- ``plan``: the checks that need the dataset or the strategy; steps, epochs, peak learning rate.
- ``rundir``: the run directory's identity, checkpoints and atomic files.
- ``task``: the models, starting weights, loss, optimizer and EMA (``state``: schedule,
  optimizer, EMA; ``replicas``: per-replica dropout and one set of BatchNorm statistics).
- ``steps``: the compiled train and eval steps; ``inputs``: the pipelines per epoch.
- ``validate``: evaluation and ``ema_model.keras``; ``observe``: progress, TensorBoard, CSV,
  summary and the died signal.
- ``loop``: the loop and ``run``.
"""

from inception.train.devices import setup
from inception.train.errors import TrainingError
from inception.train.loop import Trainer, run
from inception.train.plan import check_runtime

__all__ = ["TrainingError", "Trainer", "check_runtime", "run", "setup"]
