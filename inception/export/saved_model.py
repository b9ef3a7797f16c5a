"""SavedModel for TF Serving, published atomically into ``OUT/<name>/<version>``.

Signatures (see README "Export and serving"):

- ``serving_default``: ``image_bytes`` string [N] (JPEG or PNG, any size) -> the guarded decoder
  and the eval preprocessing run inside the graph.
- ``predict_images``: ``images`` float32 [N, S, S, 3] already preprocessed (scaled to [-1, 1]).

Both return ``probabilities`` float32 [N, C], ``top_k_ids`` int32 [N, k], ``top_k_scores`` float32
[N, k] and ``top_k_labels`` string [N, k]; the class names are read from ``assets/labels.txt`` into
a lookup table when the model loads.

The SavedModel is written by Keras' ``ExportArchive``, which tracks the TensorFlow variables the
signatures actually read, so the file loads both in TensorFlow's object loader
(``tf.saved_model.load``) and in the session loader that TF Serving and ``saved_model_cli`` use
(import the MetaGraph, run the saver's restore op, run the signature's tensors): every variable
handle in the graph is one the restore op fills. Tracking the Keras variables themselves (a
``tf.Module`` holding ``model.variables``) satisfied only the object loader: each Keras variable
saves a copy of its TensorFlow variable, the restore op filled the copies, and the signatures read
the originals, which nothing restored.

A version is written into ``OUT/<name>/.tmp-<version>-<pid>`` and renamed into place only when
complete (rename is atomic on one filesystem), so a server polling ``OUT/<name>`` never sees a
half-written version: it ignores names that are not integers.
"""

import os
import re
import shutil
import tempfile

import keras
import tensorflow as tf

from inception.config import EXPORT_TOP_K, MAX_PIXELS
from inception.export import decoding, warmup

SIGNATURE_BYTES = "serving_default"
SIGNATURE_IMAGES = "predict_images"
SIGNATURES = (SIGNATURE_BYTES, SIGNATURE_IMAGES)
INPUT_BYTES = "image_bytes"
INPUT_IMAGES = "images"
OUTPUT_KEYS = ("probabilities", "top_k_ids", "top_k_scores", "top_k_labels")
LABELS_ASSET = "labels.txt"
_TMP = re.compile(r"^\.tmp-(\d+)-(\d+)$")


def write_labels(path, labels):
    """One class name per line, in class-index order (the ``assets/labels.txt`` format)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(labels) + "\n")
    return path


class ClassNames(tf.Module):
    """Class index -> name, a lookup table initialised from a labels file.

    Saved as a SavedModel asset: the table is filled from ``assets/labels.txt`` by the model's
    init op when a server loads the model.
    """

    def __init__(self, labels_file, num_classes):
        super().__init__(name="class_names")
        initializer = tf.lookup.TextFileInitializer(
            labels_file, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER,
            tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, vocab_size=int(num_classes))
        self.table = tf.lookup.StaticHashTable(initializer, default_value="")

    def __call__(self, ids):
        return self.table.lookup(tf.cast(ids, tf.int64))


class ServingFunctions:
    """The bodies of the two signatures around a Keras classifier.

    ``labels_file`` holds the class names, one per line (see ``write_labels``).
    """

    def __init__(self, model, labels_file, image_size, top_k=EXPORT_TOP_K,
                 max_pixels=MAX_PIXELS):
        self.model = model
        self.num_classes = int(model.outputs[0].shape[-1])
        self.class_names = ClassNames(labels_file, self.num_classes)
        self.image_size = int(image_size)
        self.top_k = min(int(top_k), self.num_classes)
        self.max_pixels = int(max_pixels)

    @property
    def bytes_signature(self):
        return [tf.TensorSpec([None], tf.string, name=INPUT_BYTES)]

    @property
    def images_signature(self):
        side = self.image_size
        return [tf.TensorSpec([None, side, side, 3], tf.float32, name=INPUT_IMAGES)]

    def _outputs(self, images):
        probabilities = tf.cast(self.model(images, training=False), tf.float32)
        scores, ids = tf.math.top_k(probabilities, k=self.top_k)
        return {
            "probabilities": probabilities,
            "top_k_ids": ids,
            "top_k_scores": scores,
            "top_k_labels": self.class_names(ids),
        }

    def serve_bytes(self, image_bytes):
        images = decoding.decode_batch_for_eval(image_bytes, self.image_size, self.max_pixels)
        return self._outputs(images)

    def serve_images(self, images):
        finite = tf.debugging.Assert(
            tf.reduce_all(tf.math.is_finite(images)),
            ["images: contains NaN or Inf; expected preprocessed pixels in [-1, 1]"])
        with tf.control_dependencies([finite]):
            images = tf.identity(images)
        return self._outputs(images)

    def export_archive(self):
        """A ``keras.export.ExportArchive`` with the model, the class names and both signatures."""
        archive = keras.export.ExportArchive()
        # Not archive.track(self.model): add_endpoint already tracks the TensorFlow variables the
        # signatures read. Tracking the Keras model adds every Keras variable again, each saving a
        # copy of its weights under a second variable that no signature reads (twice the bytes
        # in variables/, and unrestored handles in the graph).
        archive.track(self.class_names)  # a lookup table: ExportArchive saves it and its asset
        archive.add_endpoint(SIGNATURE_BYTES, self.serve_bytes, self.bytes_signature)
        archive.add_endpoint(SIGNATURE_IMAGES, self.serve_images, self.images_signature)
        return archive


def existing_versions(base_dir):
    """Integer version directories under ``OUT/<name>``."""
    if not os.path.isdir(base_dir):
        return []
    return sorted(int(n) for n in os.listdir(base_dir)
                  if n.isdigit() and os.path.isdir(os.path.join(base_dir, n)))


def next_version(*base_dirs):
    """One more than the highest version present in any of ``base_dirs`` (1 when none)."""
    return max([0] + [v for d in base_dirs for v in existing_versions(d)]) + 1


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(base_dir):
    """Deletes ``.tmp-<version>-<pid>`` left by exports that died (their pid is gone)."""
    removed = []
    if not os.path.isdir(base_dir):
        return removed
    for name in os.listdir(base_dir):
        match = _TMP.match(name)
        if match and not _pid_alive(int(match.group(2))):
            shutil.rmtree(os.path.join(base_dir, name), ignore_errors=True)
            removed.append(name)
    return removed


def publish(base_dir, version, write_fn):
    """Runs ``write_fn(tmp_dir)`` then renames tmp_dir to ``base_dir/version``; returns that path.

    On any error (or interruption) the temporary directory is removed and nothing is published.
    """
    os.makedirs(base_dir, exist_ok=True)
    final = os.path.join(base_dir, str(int(version)))
    if os.path.exists(final):
        raise FileExistsError(f"version {version} already exists at {final}; pick another --version")
    tmp = os.path.join(base_dir, f".tmp-{int(version)}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        write_fn(tmp)
        _fsync_tree(tmp)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _fsync_tree(root):
    """Flushes every file so the renamed directory is complete on disk."""
    for dirpath, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def write_saved_model(directory, source, model_name, top_k=EXPORT_TOP_K,
                      max_pixels=MAX_PIXELS, warmup_images=None):
    """Writes the SavedModel (signatures, labels asset, warmup file) into ``directory``."""
    with tempfile.TemporaryDirectory() as scratch:
        labels_file = write_labels(os.path.join(scratch, LABELS_ASSET), source.labels)
        functions = ServingFunctions(source.model, labels_file, source.image_size, top_k,
                                     max_pixels)
        functions.export_archive().write_out(directory, verbose=False)
    warmup.write(directory, model_name, warmup_images)
    return directory


def export_saved_model(source, export_dir, model_name, version=None, **kwargs):
    """Exports to ``export_dir/model_name/<version>`` atomically; returns (path, version)."""
    base = os.path.join(export_dir, model_name)
    remove_stale_temporaries(base)
    version = next_version(base) if version is None else int(version)
    path = publish(base, version, lambda tmp: write_saved_model(tmp, source, model_name, **kwargs))
    return path, version
