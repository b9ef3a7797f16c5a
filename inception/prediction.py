"""Top-k classes of encoded images (JPEG or PNG, any size) with a model in any of the forms this
project writes, each with the eval preprocessing it was trained or exported with
(``inception-predict``).

``load(path)`` finds what ``path`` holds:

- a training run directory (``ema_model.keras``, ``labels.txt``, ``run_config.json``): the EMA
  model, its labels, the input size of the model;
- a ``.keras`` classifier (trained here or converted from published weights): labels from a
  labels file, else the names its ``LabeledDense`` classifier carries, else the class indices;
- a file of any export format (``inception.export.formats``: each format says whether a path is
  its own and opens its one runner, the one the export's agreement check runs): a SavedModel
  version directory or its model base path (the newest version), whose graph decodes and
  preprocesses and whose labels are its ``assets/labels.txt``; a ``.tflite`` file (LiteRT) or an
  ``.onnx`` file (ONNX Runtime), labels, input size and preprocessing from the file's metadata.

Where the model does not decode itself, images are decoded with the serving graph's guarded
decoder (``inception.export.decoding``: bad bytes are refused before decoding), then the central
crop of ``central_fraction`` of each side and a bilinear resize to the model's input, as the
training pipeline's evaluation. An image that cannot be used is answered with an ``ImageError``;
the other images are still classified.
"""

import dataclasses
import os
import re

import numpy as np

from inception import fileio
from inception.export import formats
from inception.export.config import EXPORT_TOP_K
from inception.runfiles import EMA_MODEL

FORMAT_RUN, FORMAT_KERAS = "run directory", "keras"  # the Keras forms; the export kinds: formats
BATCH_SIZE = 32  # images per model call: the memory of 32 images at 299x299 is about 34 MB


class ImageError(ValueError):
    """An image file that cannot be classified (unreadable, not JPEG/PNG, corrupt, too large)."""


@dataclasses.dataclass(frozen=True)
class Ranked:
    """One of an image's top-k classes."""

    rank: int
    index: int
    label: str
    score: float


def top_k(probabilities, labels, k):
    """The ``k`` most probable classes (ties in class order) as ``Ranked`` entries."""
    probabilities = np.asarray(probabilities, np.float32)
    order = np.argsort(-probabilities, kind="stable")[: int(k)]
    return [
        Ranked(rank, int(i), labels[i] if labels else str(int(i)), float(probabilities[i]))
        for rank, i in enumerate(order, 1)
    ]


# What TensorFlow wraps an op's message in: "{{function_node ...}}", "[Op:...] name: ...",
# "\t [[{{node ...}}]]", and a graph function's "Graph execution error:" preamble.
_TF_WRAPPING = re.compile(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:[^\]]*\](\s*name:.*)?$")
_TF_PREAMBLE = (
    "Graph execution error:",
    "Detected at node",
    "<stack traces unavailable>",
    "[[",
    "File ",
)
_BATCH_INDEX = re.compile(r"^image_bytes\[\d+\]: ")
MAX_REASON = 300


def error_reason(err):
    """One printable-ASCII line saying why an image was refused: the decoding assertion's own
    text (``inception.export.decoding``) or the decoder's message, without TensorFlow's
    wrapping (node names, "Graph execution error:", the batch index of a one-image batch)."""
    message = getattr(err, "message", None) or str(err)
    lines = [line for line in message.splitlines() if "assertion failed:" in line]
    if lines:
        text = lines[0].split("assertion failed:", 1)[1].strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        text = _BATCH_INDEX.sub("", text)
    else:
        kept = [
            line.strip()
            for line in message.splitlines()
            if line.strip() and not line.strip().startswith(_TF_PREAMBLE)
        ]
        text = _TF_WRAPPING.sub("", kept[-1]).strip() if kept else ""
        text = f"cannot decode it: {text}" if text else type(err).__name__
    text = "".join(c if " " <= c <= "~" else "?" for c in text)
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


class KerasRunner(formats.Runner):
    """A Keras classifier as a ``formats.Runner``: a training run's EMA model or a .keras file."""

    def __init__(self, model, labels, image_size, dataset=None):
        self.model, self.labels, self.image_size, self.dataset = model, labels, image_size, dataset

    def predict(self, images):
        return np.asarray(self.model(images, training=False), np.float32)


class Predictor:
    """Encoded images -> probabilities, with a ``formats.Runner`` of the model at ``path``
    (``format``: "run directory", "keras" or an export kind). The runner's images are decoded
    and preprocessed here (``central_fraction``), unless it ``decodes`` them itself."""

    def __init__(self, runner, path, format, central_fraction=None):
        self.runner, self.path, self.format = runner, path, format
        self.labels = list(runner.labels) if runner.labels is not None else None
        self.image_size = int(runner.image_size)
        self.central_fraction = (
            runner.central_fraction if central_fraction is None else central_fraction
        )
        self.dataset = runner.dataset  # the dataset the model was trained on, where it says

    def describe(self):
        return {
            "model": self.path,
            "format": self.format,
            "image_size": self.image_size,
            "central_fraction": "in the SavedModel's graph"
            if self.runner.decodes
            else self.central_fraction,
            "num_labels": None if self.labels is None else len(self.labels),
        }

    def preprocess(self, encoded):
        """Encoded bytes -> float32 [S, S, 3] in [-1, 1]; ImageError for an unusable image."""
        import tensorflow as tf

        from inception.export import decoding

        try:
            image = decoding.decode_for_eval(
                tf.constant(encoded), self.image_size, central_fraction=self.central_fraction
            )
            return image.numpy()
        except tf.errors.InvalidArgumentError as err:
            raise ImageError(error_reason(err)) from None

    def classify(self, images):
        """float32 [N, S, S, 3] -> probabilities float32 [N, C]."""
        return np.asarray(self.runner.predict(images), np.float32)

    def predict(self, encoded_images):
        """A list of encoded images -> one entry each: probabilities [C] or an ImageError."""
        if self.runner.decodes:
            return [self._predict_encoded(encoded) for encoded in encoded_images]
        results = [None] * len(encoded_images)
        ready = []
        for i, encoded in enumerate(encoded_images):
            try:
                ready.append((i, self.preprocess(encoded)))
            except ImageError as err:
                results[i] = err
        for start in range(0, len(ready), BATCH_SIZE):
            chunk = ready[start : start + BATCH_SIZE]
            probabilities = self.classify(np.stack([image for _, image in chunk]))
            for (i, _), row in zip(chunk, probabilities):
                results[i] = np.asarray(row, np.float32)
        return results

    def _predict_encoded(self, encoded):
        """One image through the model's own decoding (one call each, so that one bad image
        fails alone)."""
        import tensorflow as tf

        try:
            return np.asarray(self.runner.predict_encoded(encoded), np.float32)
        except tf.errors.InvalidArgumentError as err:
            return ImageError(error_reason(err))


def _from_keras(path, labels_path, central_fraction):
    """A run directory's EMA model or a .keras file. Their eval crop is the one training
    evaluates with: the input pipeline's ``EVAL_CENTRAL_FRACTION`` (no flag changes it;
    the published slim weights were evaluated with the same 87.5%)."""
    from inception.export import classifier
    from inception.weights import labeled

    if os.path.isdir(path):
        run = classifier.from_run_dir(path)
        model, labels, fmt = run.model, run.labels, FORMAT_RUN
        dataset = run.run_record.get("dataset")
    else:
        model = classifier.load_keras_model(path)
        labels, fmt, dataset = labeled.class_names(model)[1], FORMAT_KERAS, None
    if labels_path:
        labels = classifier.read_labels(labels_path)
    side = classifier.check_classifier(
        model, labels or range(int(model.outputs[0].shape[-1])), where=path
    )
    return Predictor(KerasRunner(model, labels, side, dataset), path, fmt, central_fraction)


def detect(path):
    """(kind, the path to load, its ``formats.Format`` or None for the Keras forms) of ``path``;
    ValueError naming what is accepted otherwise."""
    if os.path.isfile(path) and path.endswith(".keras"):
        return FORMAT_KERAS, path, None
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, EMA_MODEL)):
        return FORMAT_RUN, path, None
    nouns, missing = [], []
    for kind, fmt in formats.kinds():
        if isinstance(fmt, formats.MissingPackage):
            missing.append(f"{kind} files cannot be read here ({fmt})")
            continue
        target = fmt.find(path)
        if target:
            return kind, target, fmt
        nouns.append(fmt.noun)
    raise ValueError(
        f"{path}: not a model: expected a .keras file, a training run directory (with "
        f"{EMA_MODEL}) or an export: {', '.join(nouns)} (a SavedModel by its version "
        "directory or its base directory)"
        + "".join(f"; {m}" for m in missing)
        + ("" if os.path.exists(path) else " (no such file)")
    )


def load(path, labels_path=None, central_fraction=None, num_threads=None):
    """The predictor of the model at ``path`` (see the module docstring). ``central_fraction``
    overrides the model's own (not for a SavedModel, whose graph holds it); ``num_threads``:
    the runtime's threads (TFLite, ONNX; None: its default)."""
    kind, target, fmt = detect(path)
    if fmt is not None:
        _check_overrides(fmt, target, labels_path, central_fraction)
    try:
        if fmt is None:
            return _from_keras(target, labels_path, central_fraction)
        return Predictor(fmt.open(target, num_threads=num_threads), target, kind, central_fraction)
    except Exception as err:  # a corrupt or foreign file: each loader raises its own kind
        raise ValueError(
            f"{target}: cannot load this {kind} model ({type(err).__name__}: {err})"
        ) from err


def _check_overrides(fmt, target, labels_path, central_fraction):
    """An export carries its labels (and a SavedModel its preprocessing): refuses the flags."""
    if fmt.decodes and (central_fraction is not None or labels_path):
        raise ValueError(
            f"{target}: {fmt.noun} carries its labels and preprocessing; "
            "--labels and --central_fraction do not apply"
        )
    if labels_path:
        raise ValueError(f"{target}: {fmt.noun} carries its labels; --labels does not apply")


@dataclasses.dataclass(frozen=True)
class Answer:
    """One image file's top-k classes, or why it could not be used."""

    path: str
    top_k: list = None
    error: str = None


def classify_files(predictor, paths, k=EXPORT_TOP_K):
    """One ``Answer`` per path, in order; a file that cannot be read or used gets its error and
    the others are still classified."""
    outcomes, readable = [None] * len(paths), []
    for i, path in enumerate(paths):
        try:
            readable.append((i, read_image(path)))
        except ImageError as err:
            outcomes[i] = err
    for (i, _), result in zip(readable, predictor.predict([blob for _, blob in readable])):
        outcomes[i] = result
    return [
        Answer(path, error=str(o))
        if isinstance(o, Exception)
        else Answer(path, top_k=top_k(o, predictor.labels, k))
        for path, o in zip(paths, outcomes)
    ]


def read_image(path):
    """The bytes of an image file; ImageError when it cannot be read."""
    try:
        return fileio.read_bytes(path)
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except (IsADirectoryError, PermissionError, OSError) as err:
        raise ImageError(f"cannot read the file ({err.strerror or err})") from None
