"""Top-k classes of encoded images (JPEG or PNG, any size) with a model in any of the forms this
project writes, each with the eval preprocessing it was trained or exported with.

One ``Predictor`` per format, chosen by ``load(path)`` from what ``path`` holds:

- a training run directory (``ema_model.keras``, ``labels.txt``, ``run_config.json``): the EMA
  model, its labels, the input size of the model;
- a ``.keras`` classifier (trained here or converted from published weights): labels from a
  labels file, else the names its ``LabeledDense`` classifier carries, else the class indices;
- a SavedModel version directory (``exports/NAME/1``) or its model base path (the newest
  version): its ``serving_default`` signature decodes and preprocesses in its own graph, and the
  labels are its ``assets/labels.txt``;
- a ``.tflite`` file: the LiteRT interpreter (``inception.export.litert``), labels and
  preprocessing from the file's metadata.

The Keras and TFLite predictors decode with the serving graph's guarded decoder
(``inception.export.decoding``: bad bytes are refused before decoding), then the central crop
of ``central_fraction`` of each side and a bilinear resize to the model's input, as the training
pipeline's evaluation. An image that cannot be used is answered with an ``ImageError``; the other
images are still classified.
"""

import abc
import dataclasses
import os
import re

import numpy as np

from inception import fileio
from inception.export.config import EXPORT_TOP_K
from inception.networks import EVAL_CENTRAL_FRACTION
from inception.runfiles import EMA_MODEL

FORMAT_RUN, FORMAT_KERAS, FORMAT_SAVED_MODEL, FORMAT_TFLITE = (
    "run directory", "keras", "saved_model", "tflite")
SAVED_MODEL_FILE = "saved_model.pb"
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
    order = np.argsort(-probabilities, kind="stable")[:int(k)]
    return [Ranked(rank, int(i), labels[i] if labels else str(int(i)), float(probabilities[i]))
            for rank, i in enumerate(order, 1)]


# What TensorFlow wraps an op's message in: "{{function_node ...}}", "[Op:...] name: ...",
# "\t [[{{node ...}}]]", and a graph function's "Graph execution error:" preamble.
_TF_WRAPPING = re.compile(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:[^\]]*\](\s*name:.*)?$")
_TF_PREAMBLE = ("Graph execution error:", "Detected at node", "<stack traces unavailable>", "[[",
                "File ")
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
        kept = [line.strip() for line in message.splitlines()
                if line.strip() and not line.strip().startswith(_TF_PREAMBLE)]
        text = _TF_WRAPPING.sub("", kept[-1]).strip() if kept else ""
        text = f"cannot decode it: {text}" if text else type(err).__name__
    text = "".join(c if " " <= c <= "~" else "?" for c in text)
    return text if len(text) <= MAX_REASON else text[:MAX_REASON - 3] + "..."


class Predictor(abc.ABC):
    """Encoded images -> probabilities. Subclasses say how the model runs (``classify``)."""

    format = None

    def __init__(self, path, labels, image_size, central_fraction):
        self.path = path
        self.labels = list(labels) if labels is not None else None
        self.image_size = int(image_size)
        self.central_fraction = central_fraction
        self.dataset = None  # the dataset the model was trained on, where the model says

    def describe(self):
        return {"model": self.path, "format": self.format, "image_size": self.image_size,
                "central_fraction": self.central_fraction, "num_labels":
                    None if self.labels is None else len(self.labels)}

    def preprocess(self, encoded):
        """Encoded bytes -> float32 [S, S, 3] in [-1, 1]; ImageError for an unusable image."""
        import tensorflow as tf

        from inception.export import decoding

        try:
            image = decoding.decode_for_eval(tf.constant(encoded), self.image_size,
                                             central_fraction=self.central_fraction)
            return image.numpy()
        except tf.errors.InvalidArgumentError as err:
            raise ImageError(error_reason(err)) from None

    @abc.abstractmethod
    def classify(self, images):
        """float32 [N, S, S, 3] -> probabilities float32 [N, C]."""

    def predict(self, encoded_images):
        """A list of encoded images -> one entry each: probabilities [C] or an ImageError."""
        results = [None] * len(encoded_images)
        ready = []
        for i, encoded in enumerate(encoded_images):
            try:
                ready.append((i, self.preprocess(encoded)))
            except ImageError as err:
                results[i] = err
        for start in range(0, len(ready), BATCH_SIZE):
            chunk = ready[start:start + BATCH_SIZE]
            probabilities = self.classify(np.stack([image for _, image in chunk]))
            for (i, _), row in zip(chunk, probabilities):
                results[i] = np.asarray(row, np.float32)
        return results


class KerasPredictor(Predictor):
    format = FORMAT_KERAS

    def __init__(self, model, path, labels, central_fraction, image_size):
        super().__init__(path, labels, image_size, central_fraction)
        self.model = model

    def classify(self, images):
        return np.asarray(self.model(images, training=False), np.float32)


class TFLitePredictor(Predictor):
    format = FORMAT_TFLITE

    def __init__(self, path, num_threads=None, central_fraction=None):
        try:
            from inception.export import litert
        except ImportError as err:
            raise ValueError(f"{path}: running .tflite files needs ai-edge-litert "
                             f"(pip install 'inception[tflite]'): {err}") from None
        self.runner = litert.LiteRTClassifier(path, num_threads=num_threads)
        meta = self.runner.metadata or {}
        fraction = meta.get("preprocessing", {}).get("central_fraction",
                                                     EVAL_CENTRAL_FRACTION)
        super().__init__(path, self.runner.labels, self.runner.image_size,
                         fraction if central_fraction is None else central_fraction)
        self.dataset = meta.get("dataset")

    def classify(self, images):
        return self.runner.predict(images)


class SavedModelPredictor(Predictor):
    """The export's ``serving_default`` signature: image bytes in, its own decoding and
    preprocessing in the graph, probabilities out (one call per image, so that one bad image
    fails alone)."""

    format = FORMAT_SAVED_MODEL

    def __init__(self, path):
        import tensorflow as tf

        from inception.export import saved_model

        loaded = tf.saved_model.load(path)
        missing = [s for s in saved_model.SIGNATURES if s not in loaded.signatures]
        if missing:
            raise ValueError(f"{path}: not a SavedModel of inception-export (no signature "
                             f"{', '.join(missing)})")
        images_spec = loaded.signatures[saved_model.SIGNATURE_IMAGES].structured_input_signature
        side = int(images_spec[1][saved_model.INPUT_IMAGES].shape[1])
        labels = fileio.read_text(os.path.join(path, "assets", saved_model.LABELS_ASSET))
        super().__init__(path, labels.splitlines(), side, central_fraction=None)
        self.loaded = loaded
        self.serve = loaded.signatures[saved_model.SIGNATURE_BYTES]

    def describe(self):
        return {**super().describe(), "central_fraction": "in the SavedModel's graph"}

    def classify(self, images):
        """Preprocessed images through the ``predict_images`` signature."""
        import tensorflow as tf

        from inception.export import saved_model

        signature = self.loaded.signatures[saved_model.SIGNATURE_IMAGES]
        out = signature(**{saved_model.INPUT_IMAGES: tf.constant(images, tf.float32)})
        return np.asarray(out["probabilities"])

    def predict(self, encoded_images):
        import tensorflow as tf

        from inception.export import saved_model

        results = []
        for encoded in encoded_images:
            try:
                out = self.serve(**{saved_model.INPUT_BYTES: tf.constant([encoded])})
                results.append(out["probabilities"].numpy()[0].astype(np.float32))
            except tf.errors.InvalidArgumentError as err:
                results.append(ImageError(error_reason(err)))
        return results


def _from_keras(path, labels_path, central_fraction):
    """A run directory's EMA model or a .keras file. Their eval crop is the one training
    evaluates with: the input pipeline's ``EVAL_CENTRAL_FRACTION`` (no flag changes it;
    the published slim weights were evaluated with the same 87.5%)."""
    from inception.export import source
    from inception.weights import labeled

    if os.path.isdir(path):
        run = source.from_run_dir(path)
        model, labels, fmt = run.model, run.labels, FORMAT_RUN
        dataset = run.run_record.get("dataset")
    else:
        model = source.load_keras_model(path)
        labels, fmt, dataset = labeled.class_names(model)[1], FORMAT_KERAS, None
    if labels_path:
        labels = source.read_labels(labels_path)
    side = source.check_classifier(
        model, labels or range(int(model.outputs[0].shape[-1])), where=path)
    fraction = EVAL_CENTRAL_FRACTION if central_fraction is None else central_fraction
    predictor = KerasPredictor(model, path, labels, fraction, side)
    predictor.format, predictor.dataset = fmt, dataset
    return predictor


def newest_version(base_dir):
    """The highest integer version directory holding a SavedModel, or None."""
    versions = [int(n) for n in os.listdir(base_dir) if n.isdigit()
                and os.path.isfile(os.path.join(base_dir, n, SAVED_MODEL_FILE))]
    return os.path.join(base_dir, str(max(versions))) if versions else None


def detect(path):
    """(format, the path to load) of ``path``; ValueError naming what is accepted otherwise."""
    if os.path.isfile(path):
        if path.endswith(".tflite"):
            return FORMAT_TFLITE, path
        if path.endswith(".keras"):
            return FORMAT_KERAS, path
    elif os.path.isdir(path):
        if os.path.isfile(os.path.join(path, SAVED_MODEL_FILE)):
            return FORMAT_SAVED_MODEL, path
        if os.path.isfile(os.path.join(path, EMA_MODEL)):
            return FORMAT_RUN, path
        newest = newest_version(path)
        if newest:
            return FORMAT_SAVED_MODEL, newest
    raise ValueError(
        f"{path}: not a model: expected a .keras file, a .tflite file, a SavedModel version "
        f"directory (with {SAVED_MODEL_FILE}) or its base directory, or a training run directory "
        f"(with {EMA_MODEL})" + ("" if os.path.exists(path) else " (no such file)"))


def load(path, labels_path=None, central_fraction=None, num_threads=None):
    """The predictor of the model at ``path`` (see the module docstring). ``central_fraction``
    overrides the model's own (not for a SavedModel, whose graph holds it)."""
    fmt, target = detect(path)
    if fmt == FORMAT_SAVED_MODEL and (central_fraction is not None or labels_path):
        raise ValueError(f"{target}: a SavedModel carries its labels and preprocessing; "
                         "--labels and --central_fraction do not apply")
    if fmt == FORMAT_TFLITE and labels_path:
        raise ValueError(f"{target}: a .tflite file carries its labels; --labels does not apply")
    try:
        if fmt == FORMAT_SAVED_MODEL:
            return SavedModelPredictor(target)
        if fmt == FORMAT_TFLITE:
            return TFLitePredictor(target, num_threads, central_fraction)
        return _from_keras(target, labels_path, central_fraction)
    except Exception as err:  # a corrupt or foreign file: each loader raises its own kind
        raise ValueError(f"{target}: cannot load this {fmt} model ({type(err).__name__}: "
                         f"{err})") from err


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
    return [Answer(path, error=str(o)) if isinstance(o, Exception)
            else Answer(path, top_k=top_k(o, predictor.labels, k)) for path, o in zip(paths, outcomes)]


def read_image(path):
    """The bytes of an image file; ImageError when it cannot be read."""
    try:
        return fileio.read_bytes(path)
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except (IsADirectoryError, PermissionError, OSError) as err:
        raise ImageError(f"cannot read the file ({err.strerror or err})") from None
