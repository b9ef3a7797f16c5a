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

``SavedModelFormat`` is the format (``inception.export.formats``): published alone as
``OUT/<name>/<version>`` (``inception.export.versions``), and measured through the session loader,
the path TF Serving and ``saved_model_cli`` take.

``BFloat16SavedModelFormat`` (``saved_model_bf16``, opt-in) is the same SavedModel, signatures,
assets and warmup file of a copy of the model that computes in bfloat16
(``inception.export.bfloat16``: the convolutions and activations run in bfloat16; inputs,
classifier, softmax and outputs stay float32, and Keras normalises in float32 inside each
BatchNorm), for CPUs with bfloat16 arithmetic. TF Serving
serves one model per base directory, so it is a servable of its own: ``OUT/<name>-bf16/<version>``.
"""

import dataclasses
import os

import keras
import tensorflow as tf

from inception import fileio
from inception.export import bfloat16, decoding, formats, report, session, warmup
from inception.export.config import EXPORT_TOP_K, MAX_PIXELS

SIGNATURE_BYTES = "serving_default"
SIGNATURE_IMAGES = "predict_images"
SIGNATURES = (SIGNATURE_BYTES, SIGNATURE_IMAGES)
INPUT_BYTES = "image_bytes"
INPUT_IMAGES = "images"
OUTPUT_KEYS = ("probabilities", "top_k_ids", "top_k_scores", "top_k_labels")
LABELS_ASSET = "labels.txt"


def write_labels(path, labels):
    """One class name per line, in class-index order (the ``assets/labels.txt`` format)."""
    return fileio.write_text(path, "\n".join(labels) + "\n")


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
        # Built eagerly, the initializer adds the op it gets back, None, to the global graph's
        # table_initializer collection. Every later tf.function graph inherits the collection,
        # and freezing one (tf2onnx does, after the SavedModel in the same export) then warns
        # that it cannot serialize it. Nothing in TensorFlow 2 reads it: drop the None.
        initializers = tf.compat.v1.get_collection_ref(tf.compat.v1.GraphKeys.TABLE_INITIALIZERS)
        initializers[:] = [op for op in initializers if op is not None]

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
        """Errors: InvalidArgumentError with a printable-ASCII message naming the image
        (``inception.export.decoding``); an empty batch is one of them."""
        images = decoding.decode_batch_for_eval(image_bytes, self.image_size, self.max_pixels)
        return self._outputs(images)

    def serve_images(self, images):
        """Errors: InvalidArgumentError with a printable-ASCII message for a shape other than
        [N, S, S, 3] with N >= 1 (an empty batch too, as for ``serve_bytes``) and for NaN or Inf
        pixels. The shape is checked in the graph: TF Serving feeds tensors of any shape."""
        side = self.image_size
        shape_ok = decoding.check_shape(images, INPUT_IMAGES, [None, side, side, 3],
                                        "a batch of preprocessed images (float32 in [-1, 1])")
        with tf.control_dependencies([shape_ok]):
            finite = tf.logical_not(tf.math.is_finite(images))
            bad = tf.math.count_nonzero(finite, dtype=tf.int64)
        finite = tf.debugging.Assert(tf.equal(bad, 0), [tf.strings.join([
            "images: NaN or Inf in ", tf.strings.as_string(bad), " of the values; expected "
            "preprocessed pixels in [-1, 1]"])])
        with tf.control_dependencies([shape_ok, finite]):
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


def write_saved_model(directory, source, model_name, top_k=EXPORT_TOP_K,
                      max_pixels=MAX_PIXELS, warmup_images=None):
    """Writes the SavedModel (signatures, labels asset, warmup file) into ``directory``."""
    with fileio.local_scratch() as scratch:
        labels_file = write_labels(os.path.join(scratch, LABELS_ASSET), source.labels)
        functions = ServingFunctions(source.model, labels_file, source.image_size, top_k,
                                     max_pixels)
        functions.export_archive().write_out(directory, verbose=False)
    warmup.write(directory, model_name, warmup_images)
    return directory


class ServedClassifier:
    """A SavedModel run as TF Serving runs it (``session.SessionModel``): preprocessed images or
    encoded image bytes in, probabilities out."""

    def __init__(self, path):
        self.model = session.SessionModel(path)

    def predict(self, images):
        return report.batched(lambda x: self.model.run(SIGNATURE_IMAGES, images=x)[
            "probabilities"], images)

    def predict_bytes(self, encoded):
        return report.batched(lambda b: self.model.run(SIGNATURE_BYTES, image_bytes=list(b))[
            "probabilities"], list(encoded))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.model.close()


class SavedModelFormat(formats.Format):
    name = "saved_model"
    servable = True

    def source(self, inputs):
        """The ExportSource whose model the SavedModel serves."""
        return inputs.source

    def write(self, inputs, path):
        options = inputs.options
        # The warmup requests name the servable: its base directory's name.
        write_saved_model(path, self.source(inputs), inputs.name + self.base_suffix,
                          top_k=options.top_k, max_pixels=options.max_pixels,
                          warmup_images=inputs.warmup_images)

    def open(self, path):
        return ServedClassifier(path)

    def fields(self, inputs, runner, reference):
        row = {"signatures": list(SIGNATURES), "loader": "tf.compat.v1 session"}
        validation = reference.validation
        if validation is not None and validation.encoded:
            by_bytes = reference.agreement(runner.predict_bytes(validation.encoded))
            by_bytes["latency_ms_per_image"] = reference.latency(
                lambda: runner.predict_bytes(validation.encoded[:1]))
            row["image_bytes"] = by_bytes
        return row


class BFloat16SavedModelFormat(SavedModelFormat):
    """The SavedModel of the model rebuilt under ``mixed_bfloat16``, as its own servable."""
    name = "saved_model_bf16"
    base_suffix = "-bf16"

    def source(self, inputs):
        return dataclasses.replace(inputs.source,
                                   model=bfloat16.to_bfloat16(inputs.source.model))

    def fields(self, inputs, runner, reference):
        return {**super().fields(inputs, runner, reference), "dtype_policy": bfloat16.POLICY}


FORMATS = {"saved_model": SavedModelFormat(), "saved_model_bf16": BFloat16SavedModelFormat()}
