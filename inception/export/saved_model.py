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
``OUT/<name>/<version>`` (``inception.export.versions``), and run by ``SavedModelRunner`` through
the session loader, the path TF Serving and ``saved_model_cli`` take: the export's agreement check
and ``inception-predict`` alike.

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
from inception.export import agreement, bfloat16, decoding, formats, session
from inception.export.config import EXPORT_TOP_K, MAX_PIXELS

EXTRA = "serving"
with formats.packages_of(EXTRA):
    from inception.export import warmup  # TF Serving's warmup file: tensorflow-serving-api

SIGNATURE_BYTES = "serving_default"
SIGNATURE_IMAGES = "predict_images"
SIGNATURES = (SIGNATURE_BYTES, SIGNATURE_IMAGES)
INPUT_BYTES = "image_bytes"
INPUT_IMAGES = "images"
OUTPUT_KEYS = ("probabilities", "top_k_ids", "top_k_scores", "top_k_labels")
LABELS_ASSET = "labels.txt"
SAVED_MODEL_FILE = "saved_model.pb"
WARMUP_IMAGES = 8  # the agreement images replayed by TF Serving's warmup (a batch of 1 and of 8)


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
            labels_file,
            tf.int64,
            tf.lookup.TextFileIndex.LINE_NUMBER,
            tf.string,
            tf.lookup.TextFileIndex.WHOLE_LINE,
            vocab_size=int(num_classes),
        )
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

    def __init__(self, model, labels_file, image_size, top_k=EXPORT_TOP_K, max_pixels=MAX_PIXELS):
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
        shape_ok = decoding.check_shape(
            images,
            INPUT_IMAGES,
            [None, side, side, 3],
            "a batch of preprocessed images (float32 in [-1, 1])",
        )
        with tf.control_dependencies([shape_ok]):
            finite = tf.logical_not(tf.math.is_finite(images))
            bad = tf.math.count_nonzero(finite, dtype=tf.int64)
        finite = tf.debugging.Assert(
            tf.equal(bad, 0),
            [
                tf.strings.join(
                    [
                        "images: NaN or Inf in ",
                        tf.strings.as_string(bad),
                        " of the values; expected preprocessed pixels in [-1, 1]",
                    ]
                )
            ],
        )
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


def write_saved_model(
    directory, classifier, model_name, top_k=EXPORT_TOP_K, max_pixels=MAX_PIXELS, warmup_images=None
):
    """Writes the SavedModel (signatures, labels asset, warmup file) of ``classifier`` (a
    ``classifier.Classifier``) into ``directory``."""
    with fileio.local_scratch() as scratch:
        labels_file = write_labels(os.path.join(scratch, LABELS_ASSET), classifier.labels)
        functions = ServingFunctions(
            classifier.model, labels_file, classifier.image_size, top_k, max_pixels
        )
        functions.export_archive().write_out(directory, verbose=False)
    warmup.write(directory, model_name, warmup_images)
    return directory


class SavedModelRunner(formats.Runner):
    """A SavedModel of this project run as TF Serving runs it (``session.SessionModel``):
    preprocessed images or encoded image bytes in, probabilities out (``formats.Runner``). It
    decodes and preprocesses encoded images in its own graph; its labels are its
    ``assets/labels.txt``."""

    central_fraction = None  # in the graph
    decodes = True

    def __init__(self, path):
        self.model = session.SessionModel(path)
        missing = [s for s in SIGNATURES if s not in self.model.signatures]
        if missing:
            self.model.close()
            raise ValueError(
                f"{path}: not a SavedModel of inception-export (no signature {', '.join(missing)})"
            )
        images = self.model.signatures[SIGNATURE_IMAGES].inputs[INPUT_IMAGES]
        self.image_size = int(images.tensor_shape.dim[1].size)
        self.labels = fileio.read_text(os.path.join(path, "assets", LABELS_ASSET)).splitlines()

    def predict(self, images):
        return agreement.batched(
            lambda x: self.model.run(SIGNATURE_IMAGES, images=x)["probabilities"], images
        )

    def predict_bytes(self, encoded):
        return agreement.batched(
            lambda b: self.model.run(SIGNATURE_BYTES, image_bytes=list(b))["probabilities"],
            list(encoded),
        )

    def predict_encoded(self, encoded):
        return self.predict_bytes([encoded])[0].astype("float32")

    def close(self):
        self.model.close()


def newest_version(base_dir):
    """The highest integer version directory holding a SavedModel, or None."""
    versions = [
        int(n)
        for n in os.listdir(base_dir)
        if n.isdigit() and os.path.isfile(os.path.join(base_dir, n, SAVED_MODEL_FILE))
    ]
    return os.path.join(base_dir, str(max(versions))) if versions else None


class SavedModelFormat(formats.Format):
    name = kind = "saved_model"
    extra = EXTRA
    noun = "a SavedModel"
    servable = True
    decodes = True  # its graph decodes and preprocesses (SavedModelRunner)

    def classifier(self, inputs):
        """The ``classifier.Classifier`` whose model the SavedModel serves."""
        return inputs.classifier

    def write(self, inputs, path):
        options = inputs.options
        images = inputs.agreement_images
        # The warmup requests name the servable: its base directory's name.
        write_saved_model(
            path,
            self.classifier(inputs),
            inputs.name + self.base_suffix,
            top_k=options.top_k,
            max_pixels=options.max_pixels,
            warmup_images=list(images.encoded[:WARMUP_IMAGES])
            if images and images.encoded
            else None,
        )

    def open(self, path, num_threads=None):
        """The session runner (TensorFlow's own threads: ``num_threads`` does not apply)."""
        return SavedModelRunner(path)

    def find(self, path):
        """A version directory (with saved_model.pb), or its model base path: the newest."""
        if not os.path.isdir(path):
            return None
        if os.path.isfile(os.path.join(path, SAVED_MODEL_FILE)):
            return path
        return newest_version(path)

    def fields(self, inputs, runner, reference):
        row = {"signatures": list(SIGNATURES), "loader": "tf.compat.v1 session"}
        images = reference.images
        if images is not None and images.encoded:
            by_bytes = reference.agreement(runner.predict_bytes(images.encoded))
            by_bytes["latency_ms_per_image"] = reference.latency(
                lambda: runner.predict_bytes(images.encoded[:1])
            )
            row["image_bytes"] = by_bytes
        return row


class BFloat16SavedModelFormat(SavedModelFormat):
    """The SavedModel of the model rebuilt under ``mixed_bfloat16``, as its own servable."""

    name = "saved_model_bf16"
    base_suffix = "-bf16"

    def classifier(self, inputs):
        return dataclasses.replace(
            inputs.classifier, model=bfloat16.to_bfloat16(inputs.classifier.model)
        )

    def fields(self, inputs, runner, reference):
        return {**super().fields(inputs, runner, reference), "dtype_policy": bfloat16.POLICY}


FORMATS = {"saved_model": SavedModelFormat(), "saved_model_bf16": BFloat16SavedModelFormat()}
