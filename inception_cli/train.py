"""Train or evaluate Inception-v4 / Inception-ResNet-v1/v2 with the paper's recipe (the command
``main.py`` runs; README "Training").

    python main.py --flagfile=configs/demo.cfg                      # embedded dataset, minutes
    python main.py --flagfile=configs/irv2.cfg --batch_size=512     # the command line wins
    python main.py --flagfile=configs/demo.cfg --mode=eval          # evaluate the last checkpoint

Rerunning a command resumes from the last checkpoint in --model_dir. Errors (a bad
--init_weights file included) print ``error: ...`` and exit with status 1.
"""

import os
import sys

from absl import app, logging

from inception_cli import common
from inception_cli import train_flags  # noqa: F401  (defines and validates the flags)


def run(argv, loss_hook=None):
    """Runs the parsed flags; returns the exit status. ``loss_hook``: see inception.train.run."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])} (flags start with --)")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from inception import train  # TensorFlow is imported only after the flags are valid

    # Our own INFO lines (checkpoints written, evaluation times, the strategy) repeat what the
    # progress bar and the epoch lines show: --verbose only.
    logging.set_verbosity(logging.INFO if common.VERBOSE.value else logging.WARNING)
    config = train_flags.to_config()
    try:
        train.run(config, loss_hook=loss_hook)
    except (ValueError, train.TrainingError) as err:
        logging.error("%s", err)
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 1
    return 0


def main():
    """The console entry point (``inception-train``): parses the command line, then ``run``."""
    common.start(run)


if __name__ == "__main__":
    main()
