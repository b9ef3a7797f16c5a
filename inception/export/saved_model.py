"""SavedModel for TF Serving, published atomically into ``OUT/<name>/<version>``.

Signatures (see README "Export and serving"):

- ``serving_default``: ``image_bytes`` string [N] (JPEG or PNG, any size) -> the guarded decoder
  and the eval preprocessing run inside the graph.
- ``predict_images``: ``images`` float32 [N, S, S, 3] already preprocessed (scaled to [-1, 1]).

Both return ``probabilities`` float32 [N, C], ``top_k_ids`` int32 [N, k], ``top_k_scores`` float32
[N, k] and ``top_k_labels`` string [N, k]; the class names are a constant of the graph (and
``assets/labels.txt``).

A version is written into ``OUT/<name>/.tmp-<version>-<pid>`` and renamed into place only when
complete (rename is atomic on one filesystem), so a server polling ``OUT/<name>`` never sees a
half-written version: it ignores names that are not integers.
"""

import os
import re
import shutil
import tempfile

import tensorflow as tf

from inception.export import decoding, warmup

DEFAULT_TOP_K = 5
SIGNATURE_BYTES = "serving_default"
SIGNATURE_IMAGES = "predict_images"
OUTPUT_KEYS = ("probabilities", "top_k_ids", "top_k_scores", "top_k_labels")
_TMP = re.compile(r"^\.tmp-(\d+)-(\d+)$")


class ServingModule(tf.Module):
    """The Keras classifier plus the serving signatures."""

    def __init__(self, model, labels, image_size, top_k=DEFAULT_TOP_K,
                 max_pixels=decoding.DEFAULT_MAX_PIXELS):
        super().__init__(name="serving")
        # Track only the weights: the Keras object's own call traces are not wanted in the graph.
        self.model_variables = list(model.variables)
        self._call_model = lambda images: model(images, training=False)
        self.image_size = int(image_size)
        self.top_k = min(int(top_k), len(labels))
        self.max_pixels = int(max_pixels)
        self._labels = tf.constant(list(labels), tf.string)
        side = self.image_size
        self.serve_bytes = tf.function(
            self._serve_bytes,
            input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        self.serve_images = tf.function(
            self._serve_images,
            input_signature=[tf.TensorSpec([None, side, side, 3], tf.float32, name="images")])

    def _outputs(self, images):
        probabilities = tf.cast(self._call_model(images), tf.float32)
        scores, ids = tf.math.top_k(probabilities, k=self.top_k)
        return {
            "probabilities": probabilities,
            "top_k_ids": ids,
            "top_k_scores": scores,
            "top_k_labels": tf.gather(self._labels, ids),
        }

    def _serve_bytes(self, image_bytes):
        images = decoding.decode_batch_for_eval(image_bytes, self.image_size, self.max_pixels)
        return self._outputs(images)

    def _serve_images(self, images):
        finite = tf.debugging.Assert(
            tf.reduce_all(tf.math.is_finite(images)),
            ["images: contains NaN or Inf; expected preprocessed pixels in [-1, 1]"])
        with tf.control_dependencies([finite]):
            images = tf.identity(images)
        return self._outputs(images)


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


def write_saved_model(directory, source, model_name, top_k=DEFAULT_TOP_K,
                      max_pixels=decoding.DEFAULT_MAX_PIXELS, warmup_images=None):
    """Writes the SavedModel (signatures, labels asset, warmup file) into ``directory``."""
    module = ServingModule(source.model, source.labels, source.image_size, top_k, max_pixels)
    with tempfile.TemporaryDirectory() as scratch:
        labels_file = os.path.join(scratch, "labels.txt")
        with open(labels_file, "w", encoding="utf-8") as f:
            f.write("\n".join(source.labels) + "\n")
        module.labels_file = tf.saved_model.Asset(labels_file)
        signatures = {
            SIGNATURE_BYTES: module.serve_bytes.get_concrete_function(),
            SIGNATURE_IMAGES: module.serve_images.get_concrete_function(),
        }
        tf.saved_model.save(module, directory, signatures=signatures)
    warmup.write(directory, model_name, warmup_images)
    return directory


def export_saved_model(source, export_dir, model_name, version=None, **kwargs):
    """Exports to ``export_dir/model_name/<version>`` atomically; returns (path, version)."""
    base = os.path.join(export_dir, model_name)
    remove_stale_temporaries(base)
    version = next_version(base) if version is None else int(version)
    path = publish(base, version, lambda tmp: write_saved_model(tmp, source, model_name, **kwargs))
    return path, version
