"""Datasets through TensorFlow Datasets and the distributed, fault-tolerant input pipeline.

- ``EMBEDDED_DATASET`` ('sklearn_digits'): built offline on first use under ``data_dir``.
- 'imagenet2012': prepared by TFDS's own builder from the two ILSVRC-2012 archives in
  ``manual_dir`` (default ``<data_dir>/downloads/manual``).
- Any other TFDS image-classification dataset by name; nothing is downloaded unless
  ``download=True``.

``InputPipeline.input_fn(input_context)`` builds one input pipeline's ``tf.data.Dataset``; pass it to
``strategy.distribute_datasets_from_function``. Images are read undecoded and go through
``preprocessing`` (fused crop-and-decode for JPEG). A record that cannot be decoded is dropped,
reported on stderr and counted (``num_skipped()``; the running total is also printed at the end of
each epoch once it is non-zero).
"""

import dataclasses
import math
import os
import random
import sys

import tensorflow as tf
import tensorflow_datasets as tfds

from inception.config import EVAL_CENTRAL_FRACTION
from inception.data import preprocessing
from inception.data import sklearn_digits  # noqa: F401  (registers the TFDS builder)

EMBEDDED_DATASET = "sklearn_digits"
IMAGENET = "imagenet2012"
IMAGENET_ARCHIVES = (
    ("ILSVRC2012_img_train.tar", "train", "about 138 GB, 1,281,167 images in 1,000 per-synset tars"),
    ("ILSVRC2012_img_val.tar", "validation", "about 6.3 GB, 50,000 images"),
)
SPLITS = ("train", "eval")
# Label of the padding examples that fill the last evaluation batches (``pad_to_full_batches``).
PAD_LABEL = -1

# Preprocessing defaults per dataset. The paper's crop is meant for large photographs; the 64x64
# digit scans get a milder crop (a 5% crop of a digit is mostly background) and no flip
# (a mirrored digit is a different or no digit).
_PAPER_TRAIN_DEFAULTS = dict(
    min_object_covered=preprocessing.MIN_OBJECT_COVERED,
    aspect_ratio_range=preprocessing.ASPECT_RATIO_RANGE,
    area_range=preprocessing.AREA_RANGE,
    max_attempts=preprocessing.MAX_ATTEMPTS,
    color_distortion="fast",
    flip=True,
)
_DATASET_TRAIN_DEFAULTS = {
    EMBEDDED_DATASET: dict(_PAPER_TRAIN_DEFAULTS, area_range=(0.6, 1.0), flip=False),
}


def train_preprocessing_defaults(name):
    """The train-preprocessing keyword arguments used for dataset ``name`` unless overridden."""
    return dict(_DATASET_TRAIN_DEFAULTS.get(name, _PAPER_TRAIN_DEFAULTS))


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What training and flag validation need to know about a dataset.

    ``num_train`` / ``num_eval`` are None only when the dataset is not prepared yet but can be
    (imagenet2012 archives present, or ``download=True``); ``InputPipeline`` prepares it.
    """
    name: str
    num_classes: int
    num_train: int | None
    num_eval: int | None
    label_names: list
    train_split: str | None
    eval_split: str | None
    data_dir: str = ""
    prepared: bool = True


def _default_manual_dir(builder):
    return os.path.join(os.fspath(builder.data_dir_root), "downloads", "manual")


def _get_builder(name, data_dir):
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"dataset name must be a non-empty string; got {name!r}")
    try:
        return tfds.builder(name.strip(), data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as err:
        raise ValueError(
            f"unknown dataset {name!r}: it is neither {EMBEDDED_DATASET!r}, {IMAGENET!r} nor a "
            f"TensorFlow Datasets name (see `tfds.list_builders()`): {err}") from None


def _check_image_classification(builder):
    info = builder.info
    keys = info.supervised_keys
    if not keys or len(keys) != 2:
        raise ValueError(f"dataset {builder.name!r} has no (image, label) supervised keys; "
                         "only image-classification datasets are supported")
    image_key, label_key = keys
    features = info.features
    if not isinstance(features[image_key], tfds.features.Image):
        raise ValueError(f"dataset {builder.name!r}: supervised input {image_key!r} is not an "
                         "image feature")
    if not isinstance(features[label_key], tfds.features.ClassLabel):
        raise ValueError(f"dataset {builder.name!r}: supervised target {label_key!r} is not a "
                         "class label")
    return image_key, label_key


def _pick_splits(builder, available):
    train = "train" if "train" in available else None
    eval_split = next((s for s in ("validation", "test") if s in available), None)
    if train is None and eval_split is None:
        raise ValueError(f"dataset {builder.name!r} has neither a 'train' nor a 'validation'/'test' "
                         f"split (splits: {sorted(available)})")
    return train, eval_split


def _check_imagenet_archives(builder, manual_dir):
    manual_dir = manual_dir or _default_manual_dir(builder)
    missing = [(f, split, what) for f, split, what in IMAGENET_ARCHIVES
               if not tf.io.gfile.exists(os.path.join(manual_dir, f))]
    if missing:
        lines = "\n".join(f"  {os.path.join(manual_dir, f)}   ({split} split; {what})"
                          for f, split, what in missing)
        raise ValueError(
            f"imagenet2012 is not prepared under data_dir {os.fspath(builder.data_dir_root)!r} "
            f"and these ILSVRC-2012 archives are missing from manual_dir {manual_dir!r}:\n{lines}\n"
            "Download them (unmodified) from https://image-net.org/download-images after "
            "registering, put both in that directory (or pass --manual_dir=DIR), and rerun: "
            "TFDS then prepares the dataset under --data_dir (about 150 GB). "
            "Nothing is downloaded automatically.")
    return manual_dir


def _describe_builder(builder, prepared):
    image_key, label_key = _check_image_classification(builder)
    del image_key
    label_names = list(builder.info.features[label_key].names)
    if prepared:
        splits = builder.info.splits
        train, eval_split = _pick_splits(builder, set(splits.keys()))
        num_train = splits[train].num_examples if train else None
        num_eval = splits[eval_split].num_examples if eval_split else None
    else:  # split names and sizes are known once TFDS has prepared it; InputPipeline re-reads them
        train, eval_split, num_train, num_eval = "train", "validation", None, None
    return DatasetInfo(name=builder.name, num_classes=len(label_names), num_train=num_train,
                       num_eval=num_eval, label_names=label_names, train_split=train,
                       eval_split=eval_split, data_dir=os.fspath(builder.data_dir_root),
                       prepared=prepared)


def _not_prepared_error(builder):
    return ValueError(
        f"dataset {builder.name!r} is not prepared under data_dir "
        f"{os.fspath(builder.data_dir_root)!r} and downloading is off. Pass download=True "
        f"(flag --download) to let TFDS fetch and prepare it, or prepare it beforehand "
        f"with `tfds build {builder.name} --data_dir=DIR`, or point --data_dir at a "
        "directory where it is prepared.")


def describe(name, data_dir=None, manual_dir=None, download=False):
    """Cheap description of a dataset; ValueError with a specific message if it is unusable.

    The embedded dataset is built here if needed (seconds, offline). For imagenet2012 the two
    archives must be in ``manual_dir`` unless the dataset is already prepared under ``data_dir``.
    Other TFDS datasets must be prepared under ``data_dir`` unless ``download`` is True.
    """
    builder = _get_builder(name, data_dir)
    if builder.name == EMBEDDED_DATASET:
        builder = prepare(name, data_dir=data_dir)
    prepared = builder.is_prepared()
    if not prepared:
        if builder.name == IMAGENET:
            _check_imagenet_archives(builder, manual_dir)
        elif not download:
            raise _not_prepared_error(builder)
    return _describe_builder(builder, prepared)


def prepare(name, data_dir=None, manual_dir=None, download=False):
    """Makes sure dataset ``name`` is prepared under ``data_dir``; returns its TFDS builder."""
    builder = _get_builder(name, data_dir)
    if builder.is_prepared():
        return builder
    if builder.name == EMBEDDED_DATASET:
        config = tfds.download.DownloadConfig(num_shards=sklearn_digits.NUM_SHARDS)
    elif builder.name == IMAGENET:
        manual_dir = _check_imagenet_archives(builder, manual_dir)
        config = tfds.download.DownloadConfig(manual_dir=manual_dir)
    elif download:
        config = tfds.download.DownloadConfig(manual_dir=manual_dir)
    else:
        raise _not_prepared_error(builder)
    print(f"inception.data: preparing {builder.name!r} under {os.fspath(builder.data_dir_root)} "
          "(first use only)", file=sys.stderr, flush=True)
    builder.download_and_prepare(download_config=config)
    return builder


class SkipCounter:
    """Counts records dropped because they could not be decoded (shared by all input pipelines)."""

    def __init__(self):
        with tf.init_scope(), tf.device("/cpu:0"):
            self._count = tf.Variable(0, dtype=tf.int64, trainable=False,
                                      name="undecodable_records")

    def add(self, amount):
        return self._count.assign_add(tf.cast(amount, tf.int64))

    def read(self):
        return self._count.read_value()

    def value(self):
        return int(self._count.numpy())


def tiny_jpeg():
    """A valid 8x8 JPEG: the end-of-epoch marker that flows through the preprocessing."""
    return tf.io.encode_jpeg(tf.fill([8, 8, 3], tf.constant(128, tf.uint8)))


def map_skipping_errors(dataset, fn, marker, *, repeat=False, counter=None, name=""):
    """Parallel map of ``fn`` over ``dataset``; an element whose ``fn`` raises (an undecodable
    image) is dropped, counted in ``counter`` and reported on stderr, and the pipeline goes on.

    How failures are seen: every element gets its position in the stream; the parallel map keeps
    stream order and ``ignore_errors`` drops failures, so a gap in the positions that come out is
    exactly the number of elements dropped there. ``marker`` (an element ``fn`` processes without
    error, e.g. ``(tiny_jpeg(), 0)``) is appended to every epoch so a failure at the very end of a
    finite stream is counted too, and serves as the end-of-epoch point where the running total is
    reported; markers are removed from the output.

    Args:
      dataset: one epoch of elements (tuples); ``fn(*element, position)`` maps one element to a
        tuple of tensors. ``position`` (int64) grows across epochs; use it for per-element seeds.
      repeat: repeat the epoch (marker included) indefinitely.
      counter: a ``SkipCounter``.
      name: names the stream in the reports.
    """
    tagged = dataset.map(lambda *element: (element, False)).concatenate(
        tf.data.Dataset.from_tensors((tuple(marker), True)))
    if repeat:
        tagged = tagged.repeat()
    tagged = tf.data.Dataset.zip((tagged, tf.data.Dataset.counter()))

    def apply(tagged_element, position):
        element, is_marker = tagged_element
        return tuple(fn(*element, position)), position, is_marker

    # deterministic=True: output order must follow the positions for the gap count to be exact.
    mapped = tagged.map(apply, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    mapped = mapped.ignore_errors(log_warning=True)

    def find_gaps(last_position, item):
        outputs, position, is_marker = item
        return position, (outputs, is_marker, position - last_position - 1, position)

    mapped = mapped.scan(tf.constant(-1, tf.int64), find_gaps)

    def account(outputs, is_marker, dropped, position):
        def report_drop():
            ops = [tf.print("inception.data:", name, "skipped", dropped,
                            "undecodable record(s) just before stream position", position,
                            output_stream=sys.stderr)]
            if counter is not None:
                ops.append(counter.add(dropped))
            with tf.control_dependencies(ops):
                return tf.identity(is_marker)

        is_marker = tf.cond(dropped > 0, report_drop, lambda: tf.identity(is_marker))
        if counter is not None:
            def report_epoch():
                with tf.control_dependencies([tf.print(
                        "inception.data:", name, "end of epoch:", counter.read(),
                        "undecodable record(s) skipped so far", output_stream=sys.stderr)]):
                    return tf.constant(False)

            return tf.cond(is_marker, lambda: tf.cond(counter.read() > 0, report_epoch,
                                                      lambda: tf.constant(False)),
                           lambda: tf.constant(True))
        return tf.logical_not(is_marker)

    def strip(outputs, is_marker, dropped, position):
        return outputs

    return mapped.filter(account).map(strip)


class InputPipeline:
    """One dataset split, preprocessed the Inception way, batched per replica.

    Crop/colour arguments left as None take the dataset's defaults
    (``train_preprocessing_defaults(name)``: the paper's, milder for the embedded digits).
    ``repeat`` and ``shuffle`` default to ``is_training``; ``drop_remainder`` too. With a ``seed``
    every element gets its own stateless seed from (seed, input pipeline, element number in the
    stream), so crops differ between epochs yet a ``deterministic`` run repeats exactly.

    ``pad_to_full_batches`` (evaluation under tf.distribute): every input pipeline reads an even
    slice of the split and yields the same number of full per-replica batches, a multiple of its
    replicas; the last ones are filled up with padding examples (a zero image, label
    ``PAD_LABEL``) that the consumer must leave out. So every example is read exactly once and no
    replica ever receives an empty or a partial batch, whatever the split size, batch size and
    replica count (an empty batch crashes a replica; a TPU needs static shapes).
    """

    def __init__(self, name, *, split, image_size, global_batch_size, is_training, data_dir=None,
                 manual_dir=None, download=False, seed=None, deterministic=False,
                 min_object_covered=None, aspect_ratio_range=None, area_range=None,
                 max_attempts=None, color_distortion=None, flip=None,
                 central_fraction=EVAL_CENTRAL_FRACTION, drop_remainder=None,
                 repeat=None, shuffle=None, shuffle_buffer=10_000, pad_to_full_batches=False):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
        if int(image_size) < 1:
            raise ValueError(f"image_size must be a positive integer; got {image_size!r}")
        if int(global_batch_size) < 1:
            raise ValueError(f"global_batch_size must be >= 1; got {global_batch_size!r}")
        if seed is not None and not isinstance(seed, int):
            raise ValueError(f"seed must be an int or None; got {seed!r}")
        if deterministic and seed is None:
            raise ValueError("deterministic=True needs a seed")
        self.info = describe(name, data_dir=data_dir, manual_dir=manual_dir, download=download)
        self._builder = prepare(name, data_dir=data_dir, manual_dir=manual_dir, download=download)
        self.info = _describe_builder(self._builder, prepared=True)
        self.split = self.info.train_split if split == "train" else self.info.eval_split
        if self.split is None:
            raise ValueError(f"dataset {self.info.name!r} has no {split} split")
        self.name = self.info.name
        self.image_size = int(image_size)
        self.global_batch_size = int(global_batch_size)
        self.is_training = bool(is_training)
        self.seed = seed
        self.deterministic = bool(deterministic)
        self.drop_remainder = self.is_training if drop_remainder is None else bool(drop_remainder)
        self.repeat = self.is_training if repeat is None else bool(repeat)
        self.shuffle = self.is_training if shuffle is None else bool(shuffle)
        self.shuffle_buffer = int(shuffle_buffer)
        self.pad_to_full_batches = bool(pad_to_full_batches)
        if self.pad_to_full_batches and self.repeat:
            raise ValueError("pad_to_full_batches pads the end of one pass over the split; it "
                             "cannot be combined with repeat=True")
        self.central_fraction = float(central_fraction)
        self._image_key, self._label_key = _check_image_classification(self._builder)
        overrides = dict(min_object_covered=min_object_covered,
                         aspect_ratio_range=aspect_ratio_range, area_range=area_range,
                         max_attempts=max_attempts, color_distortion=color_distortion, flip=flip)
        self.train_options = train_preprocessing_defaults(self.name)
        self.train_options.update({k: v for k, v in overrides.items() if v is not None})
        preprocessing._validate_train_args(  # fail now, not inside a tf.data trace
            self.image_size, self.train_options["min_object_covered"],
            self.train_options["aspect_ratio_range"], self.train_options["area_range"],
            self.train_options["max_attempts"], self.train_options["color_distortion"])
        preprocessing._check_fraction(self.central_fraction)
        self.num_examples = self._builder.info.splits[self.split].num_examples
        self._num_files = len(self._builder.info.splits[self.split].filenames)
        self._skipped = SkipCounter()

    @property
    def steps_per_epoch(self):
        """Global steps covering the split once (the remainder is dropped if drop_remainder,
        padded if pad_to_full_batches; with several input pipelines, see ``padded_steps``)."""
        if self.pad_to_full_batches:
            return self.padded_steps(1, 1)
        if self.drop_remainder:
            return self.num_examples // self.global_batch_size
        return math.ceil(self.num_examples / self.global_batch_size)

    def _even_slices(self, num_pipelines):
        if num_pipelines == 1:
            return [self.split]
        return tfds.even_splits(self.split, num_pipelines)

    def padded_steps(self, num_pipelines, num_replicas):
        """Global steps of one padded pass (``pad_to_full_batches``): the largest pipeline's
        slice in batches of its replicas' share of the global batch."""
        sizes = [self._builder.info.splits[s].num_examples
                 for s in self._even_slices(num_pipelines)]
        per_step = self.global_batch_size // num_pipelines
        if per_step < 1 or self.global_batch_size % num_replicas:
            raise ValueError(f"global batch {self.global_batch_size} does not divide by "
                             f"{num_replicas} replicas over {num_pipelines} input pipelines")
        return max(1, math.ceil(max(sizes) / per_step))

    def num_skipped(self):
        """Undecodable records skipped so far, over all input pipelines and epochs."""
        return self._skipped.value()

    def skipped_report(self):
        """One line for the end-of-epoch log."""
        n = self.num_skipped()
        return (f"{self.name}/{self.split}: {n} undecodable record(s) skipped so far"
                if n else f"{self.name}/{self.split}: no undecodable records")

    def _read(self, num_pipelines, pipeline_id, base_seed):
        options = tf.data.Options()
        options.deterministic = self.deterministic or not self.is_training
        # Padding needs slices of known, even size; files can hold different numbers of examples.
        file_sharded = num_pipelines <= self._num_files and not self.pad_to_full_batches
        context = None
        split = self.split
        if num_pipelines > 1:
            if file_sharded:  # each pipeline reads its own files
                context = tf.distribute.InputContext(num_input_pipelines=num_pipelines,
                                                     input_pipeline_id=pipeline_id)
            else:  # each pipeline reads its own slice of examples
                split = self._even_slices(num_pipelines)[pipeline_id]
        read_config = tfds.ReadConfig(input_context=context, options=options,
                                      shuffle_seed=base_seed)
        dataset = self._builder.as_dataset(
            split=split, shuffle_files=self.shuffle, read_config=read_config,
            decoders={self._image_key: tfds.decode.SkipDecoding()})
        image_key, label_key = self._image_key, self._label_key

        def select(example):
            return example[image_key], tf.cast(example[label_key], tf.int32)

        return dataset.map(select, num_parallel_calls=tf.data.AUTOTUNE)

    def input_fn(self, input_context=None):
        """The dataset of one input pipeline: (images float32 [B, S, S, 3], labels int32 [B]),
        B = the per-replica batch size. Pass to ``strategy.distribute_datasets_from_function``."""
        if input_context is not None:
            num_pipelines = input_context.num_input_pipelines
            pipeline_id = input_context.input_pipeline_id
            num_replicas = input_context.num_replicas_in_sync
            batch_size = input_context.get_per_replica_batch_size(self.global_batch_size)
        else:
            num_pipelines, pipeline_id, num_replicas = 1, 0, 1
            batch_size = self.global_batch_size
        if self.seed is None:
            base_seed = random.SystemRandom().randrange(2**31)
        else:
            base_seed = (self.seed * 1_000_003 + pipeline_id) % (2**31)

        dataset = self._read(num_pipelines, pipeline_id, base_seed)
        if self.shuffle:
            buffer = max(1, min(self.shuffle_buffer, self.num_examples))
            dataset = dataset.shuffle(buffer, seed=base_seed, reshuffle_each_iteration=True)

        size = self.image_size
        if self.is_training:
            opts = dict(self.train_options)

            # The stream position (it keeps growing across epochs) gives every element, and every
            # epoch, its own reproducible crop/flip/colour seed.
            def process(image_bytes, label, position):
                seed = tf.stack([tf.constant(base_seed, tf.int64), position])
                return preprocessing.preprocess_for_train(image_bytes, size, seed=seed,
                                                          **opts), label
        else:
            fraction = self.central_fraction

            def process(image_bytes, label, position):
                return preprocessing.preprocess_for_eval(image_bytes, size, fraction), label

        marker = (tiny_jpeg(), tf.constant(0, tf.int32))
        dataset = map_skipping_errors(
            dataset, process, marker, repeat=self.repeat, counter=self._skipped,
            name=f"{self.name}/{self.split}[pipeline {pipeline_id}/{num_pipelines}]")
        drop_remainder = self.drop_remainder
        if self.pad_to_full_batches:
            # This pipeline's replicas get ``steps`` full batches each; the padding examples come
            # after the real ones, so an undecodable record shifts them but never drops one.
            steps = self.padded_steps(num_pipelines, num_replicas)
            total = steps * batch_size * (num_replicas // num_pipelines)
            padding = tf.data.Dataset.from_tensors(
                (tf.zeros([size, size, 3], tf.float32), tf.constant(PAD_LABEL, tf.int32)))
            dataset = dataset.concatenate(padding.repeat()).take(total)
            drop_remainder = True  # every batch is full: a static batch dimension
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder,
                                num_parallel_calls=tf.data.AUTOTUNE,
                                deterministic=self.deterministic or not self.is_training)
        return dataset.prefetch(tf.data.AUTOTUNE)
