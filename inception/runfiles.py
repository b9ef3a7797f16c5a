"""A run directory's files: their names (README "What a run writes"), and reading them with
errors that name the file and say what to do.

Training, ``--mode=eval``, ``export.py`` and ``evaluate.py`` read the run record
(``run_config.json``), ``labels.txt`` and ``ema_model.keras`` through here. Every file is
written atomically, so a damaged one comes from outside (a copy cut short, a full disk on
another tool, an edit): the reader refuses it in one paragraph instead of a traceback from
``json`` or ``zipfile`` deep in the work, and writes nothing. No TensorFlow (for local paths).
"""

import io
import json
import zipfile

from inception import fileio

# The files of a finished run, which export and evaluation read.
RUN_FILES = ("ema_model.keras", "labels.txt", "run_config.json")
# RUN_RECORD is the run record: the run's identity (network, dataset, batch, ...) as JSON. Its
# file keeps the name run_config.json it has always had, so every run directory still loads.
EMA_MODEL, LABELS_FILE, RUN_RECORD = RUN_FILES
CHECKPOINTS_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
METRICS_CSV = "metrics.csv"
SUMMARY_JSON = "summary.json"
EVAL_JSON = "eval.json"


class RunDirError(ValueError):
    """A run directory's file that cannot be used: the message names it and what to do."""


def read_run_record(model_dir):
    """The run record (run_config.json) of ``model_dir`` as a dict; RunDirError when it is not a
    JSON object."""
    path = fileio.join(model_dir, RUN_RECORD)
    try:
        record = json.loads(fileio.read_bytes(path).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        record, reason = None, f"not valid JSON ({err})"
    else:
        reason = f"a JSON {type(record).__name__}, not an object"
    if isinstance(record, dict):
        return record
    raise RunDirError(
        f"{path} is {reason}: the file was cut short or overwritten. It records the run's "
        "identity (network, dataset, batch, ...), which resume, --mode=eval, export and "
        "evaluation read. Put back a good copy; or, if you know the flags the run was trained "
        "with, move the file aside and rerun training with those flags: it is written again "
        "from them and the run resumes from its checkpoints."
    )


def keras_file_problem(path):
    """Why ``path`` is not a complete .keras file (a zip holding config.json and the weights,
    every member's checksum right), or None when it is one. Reads the whole file."""
    try:
        with zipfile.ZipFile(io.BytesIO(fileio.read_bytes(path))) as archive:
            names = set(archive.namelist())
            missing = sorted({"config.json", "model.weights.h5"} - names)
            if missing:
                return f"it lacks {', '.join(missing)}"
            bad = archive.testzip()
            return f"its member {bad} is damaged" if bad else None
    except zipfile.BadZipFile as err:
        return f"not a complete zip archive ({err})"
    except (OSError, EOFError) as err:  # zlib/zip errors on a cut member, or unreadable
        return f"unreadable ({err})"


def check_run_model(model_dir):
    """RunDirError when the run's ema_model.keras is damaged: it can be rebuilt from the run's
    checkpoints, and the message says how."""
    path = fileio.join(model_dir, EMA_MODEL)
    problem = keras_file_problem(path)
    if problem:
        raise RunDirError(
            f"{path} is not a complete Keras model ({problem}): it was cut short or overwritten. "
            f"Training rebuilds it from the run's newest checkpoint: rerun the run's training "
            f"command (or --mode=eval with its flags) with --model_dir={model_dir}, then retry."
        )


def check_keras_file(flag, path):
    """RunDirError when a .keras file given on the command line is damaged."""
    problem = keras_file_problem(path)
    if problem:
        raise RunDirError(
            f"--{flag}={path} is not a complete Keras model ({problem}); it was "
            "cut short or is not a .keras file: copy or convert it again."
        )
