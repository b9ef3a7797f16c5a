"""Train or evaluate Inception-v4 / Inception-ResNet-v1/v2 with the paper's recipe (the command
``main.py`` runs; README "Training").

    python main.py --flagfile=configs/demo.cfg                      # embedded dataset, minutes
    python main.py --flagfile=configs/irv2.cfg --batch_size=512     # the command line wins
    python main.py --flagfile=configs/demo.cfg --mode=eval          # evaluate the last checkpoint
    inception-train --config=irv2 --model_dir=runs/irv2             # a shipped config by name

Rerunning a command resumes from the last checkpoint in --model_dir. Exit status (README "Never
losing work"): 0 done; 1 a bad flag or an error (``error: ...``: a bad --init_weights file, a NaN
loss, another run's --model_dir); 75 stopped by SIGTERM or Ctrl-C after saving a checkpoint
(rerun to resume); 69 another worker stopped answering (restart every worker).
"""

import os
import sys

from absl import app, logging

from inception_cli import (
    common,
    train_flags,  # importing it defines and validates the flags
)


def run(argv, loss_hook=None):
    """Runs the parsed flags; returns the exit status. ``loss_hook``: see inception.train.run."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])} (flags start with --)")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # Our own INFO lines (checkpoints written, evaluation times, the strategy) repeat what the
    # progress bar and the epoch lines show: --verbose only.
    logging.set_verbosity(logging.INFO if common.VERBOSE.value else logging.WARNING)
    return run_training(train_flags.to_config(), loss_hook=loss_hook, verbose=common.VERBOSE.value)


def run_training(config, loss_hook=None, verbose=False):
    """Runs ``config`` (a TrainConfig) as main.py does; returns the exit status and prints the
    last line of a run that stopped (stderr)."""
    try:
        config.check_paths()  # before TensorFlow loads
    except ValueError as err:
        return _stopped(f"error: {err}", 1)
    from inception import train  # TensorFlow is imported only after the flags are valid

    try:
        train.run(config, loss_hook=loss_hook)
    except (ValueError, train.TrainingError) as err:
        logging.error("%s", err)
        return _stopped(f"error: {err}", train.EXIT_ERROR)
    except train.Interrupted as err:
        return _stopped(str(err), train.EXIT_INTERRUPTED)
    except train.WorkerLost as err:
        if verbose:
            logging.error("TensorFlow's error:", exc_info=err.cause)
        return _stopped(f"error: {err}", train.EXIT_WORKER_LOST)
    return 0


def _stopped(line, status):
    """The run's last line (stderr) and its exit status."""
    print(line, file=sys.stderr, flush=True)
    return status


def main():
    """The console entry point (``inception-train``): parses the command line, then ``run``."""
    sys.argv = train_flags.expand_config(sys.argv)  # --config=NAME -> --flagfile=<its file>
    common.start(run)


if __name__ == "__main__":
    main()
