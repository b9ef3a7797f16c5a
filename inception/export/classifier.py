"""What an export (and an evaluation, and ``inception-predict`` of a Keras model) starts from:
a ``Classifier``, a Keras classifier with its class names and its input size.

A training run directory (see README "Training") holds ``ema_model.keras`` (the EMA weights in an
inference model), ``labels.txt`` and ``run_config.json``. A bare ``.keras`` file works too; its
labels then come from a labels file or default to the class indices.
"""

import dataclasses
import os

import keras

# inception.models is imported for what importing it does: it registers the custom layers, so
# .keras files load in safe mode.
from inception import (
    fileio,
    models,  # noqa: F401
    runfiles,
)
from inception.runfiles import EMA_MODEL, RUN_RECORD
from inception.runfiles import LABELS_FILE as LABELS


@dataclasses.dataclass
class Classifier:
    """A Keras classifier (one input [N, S, S, 3], one output [N, C]), its class names in index
    order, its input side S, where it was loaded from and its training run's record."""

    model: keras.Model
    labels: list
    image_size: int
    model_path: str
    run_record: dict  # the training run's run_config.json ({} for a .keras file)

    @property
    def num_classes(self):
        return len(self.labels)


def read_labels(path):
    """labels.txt -> list of class names, one per line (trailing blank lines ignored)."""
    try:
        labels = fileio.read_text(path).splitlines()
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{path} is not UTF-8 text ({err}); it must hold one class name per "
            "line (training writes it as labels.txt)"
        ) from None
    while labels and not labels[-1].strip():
        labels.pop()
    if not labels:
        raise ValueError(f"{path} holds no class names (expected one name per line)")
    return labels


def check_classifier(model, labels, image_size=None, where="model"):
    """Checks the model is a single-output image classifier that matches its labels.

    Returns the (square) input side. Raises ValueError naming what does not fit.
    """
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"{where}: expected one input and one output (an inference model without the auxiliary "
            f"head); got {len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[3] != 3 or shape[1] is None or shape[1] != shape[2]:
        raise ValueError(
            f"{where}: expected a fixed square RGB input [batch, S, S, 3]; got {shape}"
        )
    side = int(shape[1])
    if image_size is not None and int(image_size) != side:
        raise ValueError(
            f"{where}: run_config.json says image_size={image_size} but the model "
            f"takes {side}x{side} images"
        )
    out = tuple(model.outputs[0].shape)
    if len(out) != 2 or out[1] != len(labels):
        raise ValueError(
            f"{where}: the model outputs {out} but there are {len(labels)} labels; "
            "labels.txt must hold one name per class, in class-index order"
        )
    return side


def load_keras_model(path):
    """A .keras file on any TensorFlow file system (a non-local one is read into a local copy)."""
    if not fileio.exists(path) or fileio.isdir(path):
        raise FileNotFoundError(f"no Keras model at {path}")
    if fileio.is_local(path):
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    with fileio.local_scratch() as scratch:
        local = os.path.join(scratch, "model.keras")
        with open(local, "wb") as f:
            f.write(fileio.read_bytes(path))
        return keras.saving.load_model(local, compile=False, safe_mode=True)


def from_run_dir(model_dir):
    """Loads the EMA model of a training run directory (on any TensorFlow file system)."""
    if not fileio.isdir(model_dir):
        raise FileNotFoundError(f"--model_dir {model_dir} is not a directory")
    missing = [
        n for n in (EMA_MODEL, LABELS, RUN_RECORD) if not fileio.exists(fileio.join(model_dir, n))
    ]
    if missing:
        raise FileNotFoundError(
            f"{model_dir} is not a finished training run: missing {', '.join(missing)} "
            f"(training writes {EMA_MODEL}, {LABELS} and {RUN_RECORD})"
        )
    run_record = runfiles.read_run_record(model_dir)
    labels = read_labels(fileio.join(model_dir, LABELS))
    runfiles.check_run_model(model_dir)
    path = fileio.join(model_dir, EMA_MODEL)
    model = load_keras_model(path)
    side = check_classifier(model, labels, run_record.get("image_size"), where=path)
    return Classifier(
        model=model, labels=labels, image_size=side, model_path=path, run_record=run_record
    )


def from_keras_file(path, labels_path=None, flag="keras_model"):
    """Loads a .keras classifier; labels from ``labels_path`` or '0'..'N-1'."""
    if fileio.exists(path) and not fileio.isdir(path):
        runfiles.check_keras_file(flag, path)
    model = load_keras_model(path)
    if labels_path:
        labels = read_labels(labels_path)
    else:
        out = model.outputs[0].shape
        labels = [str(i) for i in range(int(out[-1]))]
    side = check_classifier(model, labels, where=path)
    return Classifier(model=model, labels=labels, image_size=side, model_path=path, run_record={})


def from_model(model, labels, run_record=None):
    """Wraps an in-memory model (tests, benchmarks)."""
    labels = list(labels)
    side = check_classifier(model, labels)
    return Classifier(
        model=model,
        labels=labels,
        image_size=side,
        model_path="<in memory>",
        run_record=dict(run_record or {}),
    )
