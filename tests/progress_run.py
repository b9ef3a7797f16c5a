"""Two epochs of made-up steps through the training console (``observe.Metrics``), called as the
loop calls it: for tests/test_progress.py, which runs this file as a program so that its
standard output is a real pipe or terminal.

    python tests/progress_run.py MODEL_DIR CASE...

Each CASE, in turn and in this one process (one TensorFlow import for them all), writes a line
``#### CASE`` and then its run's output; its metrics go to MODEL_DIR/CASE. CASE: ``auto``
(INCEPTION_PROGRESS unset), ``bar`` or ``line`` (INCEPTION_PROGRESS set to it), ``off``
(progress=False, INCEPTION_PROGRESS unset).
"""

import os
import sys
import time

from inception import console
from inception.train import observe

CASES = ("auto", "bar", "line", "off")

STEPS_PER_EPOCH = 5
EPOCHS = 2
# One step's sums: a batch of 4 images, loss 2 each, 2 of them right at top-1.
STEP = {
    "seconds": 0.01,
    "steps": 1,
    "loss_sum": 8.0,
    "count": 4.0,
    "top1": 2.0,
    "top3": 3.0,
    "top5": 4.0,
    "lr": 0.01,
    "grad_norm": 1.0,
}
VALIDATION = {"val_loss": 1.5, "val_top1": 0.5, "val_top3": 0.75, "val_top5": 0.9}


class Loop:
    """What the actions read of the loop."""

    steps_per_epoch = STEPS_PER_EPOCH
    epoch_end = 0


def drive(model_dir, progress=True):
    metrics = observe.Metrics(
        model_dir,
        chief=True,
        progress=progress,
        log_every_steps=100,
        num_epochs=EPOCHS,
        schedule=lambda step: 0.01,
    )
    loop, step = Loop(), 0
    metrics.on_start(loop, step)
    for epoch in range(EPOCHS):
        loop.epoch_end = (epoch + 1) * STEPS_PER_EPOCH
        metrics.on_epoch_begin(loop, epoch, step)
        while step < loop.epoch_end:
            step += 1
            time.sleep(0.06)  # Keras' bar redraws at most every 0.05 s
            metrics.on_step(loop, step, STEP)
        metrics.on_epoch_end(loop, epoch + 1, step, dict(VALIDATION))
    metrics.on_run_end(loop, step)


def main(model_dir, cases):
    for case in cases:
        if case not in CASES:
            raise SystemExit(f"unknown case {case!r}: expected one of {CASES}")
        os.environ.pop(console.PROGRESS_ENV, None)
        if case in ("bar", "line"):
            os.environ[console.PROGRESS_ENV] = case
        print(f"#### {case}", flush=True)
        drive(os.path.join(model_dir, case), progress=case != "off")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
