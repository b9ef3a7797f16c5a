"""The distributed, fault-tolerant input pipeline of training and of its evaluation.

``InputPipeline(DataConfig, split=..., ...).input_fn(input_context)`` builds one input pipeline's
``tf.data.Dataset``; pass it to ``strategy.distribute_datasets_from_function``. The split is read
by ``inception.data.reader`` (encoded images) and goes through ``preprocessing`` (fused
crop-and-decode for JPEG). A record that cannot be decoded is dropped, reported on stderr and
counted (``num_skipped()``; the running total is also printed at the end of each epoch once it is
non-zero; ``inception.data.skipping``). A damaged TFRecord file (corrupt framing or checksum,
truncated) stops the pipeline at the end of the pass with an InvalidArgumentError naming the file.
"""

import math
import random

import tensorflow as tf

from inception.data import catalogue, preprocessing, reader, skipping
from inception.data.config import DataConfig
from inception.networks import EVAL_CENTRAL_FRACTION

# Label of the padding examples that fill the last evaluation batches (``pad_to_full_batches``).
PAD_LABEL = -1
# The DataConfig fields a dataset name may come with (``InputPipeline("name", data_dir=...)``),
# each with the value that means "not set": the dataset's default (TFDS's own data_dir for "").
_DATA_FIELDS = {
    "data_dir": "",
    "manual_dir": "",
    "download": False,
    "area_range": None,
    "min_object_covered": -1.0,
    "color_distortion": "default",
}


def data_config(data, **fields):
    """``data`` as a ``DataConfig``: a DataConfig as it is, or a dataset name with DataConfig's
    fields as keywords (None: not set)."""
    if isinstance(data, DataConfig):
        if fields:
            raise TypeError(
                f"give {', '.join(sorted(fields))} in the DataConfig, not as keyword arguments"
            )
        return data
    unknown = sorted(set(fields) - set(_DATA_FIELDS))
    if unknown:
        raise TypeError(
            f"unexpected keyword argument(s) {', '.join(unknown)}; a dataset name "
            f"takes DataConfig's fields: {', '.join(_DATA_FIELDS)}"
        )
    if not isinstance(data, str) or not data.strip():
        raise ValueError(f"dataset must be a DataConfig or a non-empty dataset name; got {data!r}")
    return DataConfig(
        dataset=data, **{k: _DATA_FIELDS[k] if v is None else v for k, v in fields.items()}
    )


def train_options(name, data):
    """The train-preprocessing arguments for dataset ``name``: its defaults
    (``catalogue.train_preprocessing_defaults``) with what the DataConfig ``data`` sets."""
    options = catalogue.train_preprocessing_defaults(name)
    if data.area_range:
        options["area_range"] = data.area_range
    if data.min_object_covered >= 0:
        options["min_object_covered"] = data.min_object_covered
    if data.color_distortion != "default":
        options["color_distortion"] = data.color_distortion
    return options


def _check_arguments(image_size, global_batch_size, seed, deterministic):
    if int(image_size) < 1:
        raise ValueError(f"image_size must be a positive integer; got {image_size!r}")
    if int(global_batch_size) < 1:
        raise ValueError(f"global_batch_size must be >= 1; got {global_batch_size!r}")
    if seed is not None and not isinstance(seed, int):
        raise ValueError(f"seed must be an int or None; got {seed!r}")
    if deterministic and seed is None:
        raise ValueError("deterministic=True needs a seed")


def _shard(input_context, global_batch_size):
    """(input pipelines, this pipeline's id, replicas, per-replica batch)."""
    if input_context is None:
        return 1, 0, 1, global_batch_size
    return (
        input_context.num_input_pipelines,
        input_context.input_pipeline_id,
        input_context.num_replicas_in_sync,
        input_context.get_per_replica_batch_size(global_batch_size),
    )


class InputPipeline:
    """One dataset split, preprocessed the Inception way, batched per replica.

    ``data``: a ``DataConfig`` (the dataset, its directories and the training crops; crop
    fields left unset take the dataset's defaults, ``catalogue.train_preprocessing_defaults``:
    the paper's, milder for the embedded digits), or a dataset name followed by DataConfig's
    fields as keywords. ``split``: 'train' or 'eval' (the validation split, else test).
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

    def __init__(
        self,
        data,
        *,
        split,
        image_size,
        global_batch_size,
        is_training,
        seed=None,
        deterministic=False,
        pad_to_full_batches=False,
        drop_remainder=None,
        repeat=None,
        shuffle=None,
        shuffle_buffer=10_000,
        central_fraction=EVAL_CENTRAL_FRACTION,
        **data_fields,
    ):
        data = data_config(data, **data_fields)
        _check_arguments(image_size, global_batch_size, seed, deterministic)
        self.source = reader.open_split(
            data.dataset,
            split,
            data_dir=data.data_dir or None,
            manual_dir=data.manual_dir or None,
            download=data.download,
        )
        self.info, self.name, self.split = self.source.info, self.source.info.name, self.source.name
        self.num_examples = self.source.num_examples
        self.image_size, self.global_batch_size = int(image_size), int(global_batch_size)
        self.is_training, self.seed = bool(is_training), seed
        self.deterministic = bool(deterministic)
        self.drop_remainder = self.is_training if drop_remainder is None else bool(drop_remainder)
        self.repeat = self.is_training if repeat is None else bool(repeat)
        self.shuffle = self.is_training if shuffle is None else bool(shuffle)
        self.shuffle_buffer = int(shuffle_buffer)
        self.pad_to_full_batches = bool(pad_to_full_batches)
        if self.pad_to_full_batches and self.repeat:
            raise ValueError(
                "pad_to_full_batches pads the end of one pass over the split; it "
                "cannot be combined with repeat=True"
            )
        self.train_options = train_options(self.name, data)
        o = self.train_options
        preprocessing.check_train_args(  # fail now, not inside a tf.data trace
            self.image_size,
            o["min_object_covered"],
            o["aspect_ratio_range"],
            o["area_range"],
            o["max_attempts"],
            o["color_distortion"],
        )
        self.central_fraction = preprocessing.check_fraction(central_fraction)
        self._skipped = skipping.SkipCounter()

    @property
    def steps_per_epoch(self):
        """Global steps covering the split once (the remainder is dropped if drop_remainder,
        padded if pad_to_full_batches; with several input pipelines, see ``padded_steps``)."""
        if self.pad_to_full_batches:
            return self.padded_steps(1, 1)
        if self.drop_remainder:
            return self.num_examples // self.global_batch_size
        return math.ceil(self.num_examples / self.global_batch_size)

    def padded_steps(self, num_pipelines, num_replicas):
        """Global steps of one padded pass (``pad_to_full_batches``): the largest pipeline's
        slice in batches of its replicas' share of the global batch."""
        sizes = self.source.slice_sizes(num_pipelines)
        per_step = self.global_batch_size // num_pipelines
        if per_step < 1 or self.global_batch_size % num_replicas:
            raise ValueError(
                f"global batch {self.global_batch_size} does not divide by "
                f"{num_replicas} replicas over {num_pipelines} input pipelines"
            )
        return max(1, math.ceil(max(sizes) / per_step))

    def num_skipped(self):
        """Undecodable records skipped so far, over all input pipelines and epochs."""
        return self._skipped.value()

    def skipped_report(self):
        """One line for the end-of-epoch log."""
        n = self.num_skipped()
        return (
            f"{self.name}/{self.split}: {n} undecodable record(s) skipped so far"
            if n
            else f"{self.name}/{self.split}: no undecodable records"
        )

    def _process_fn(self, base_seed):
        """(image bytes, label, stream position) -> (preprocessed image, label)."""
        size = self.image_size
        if not self.is_training:
            fraction = self.central_fraction

            def process_eval(image_bytes, label, position):
                return preprocessing.preprocess_for_eval(image_bytes, size, fraction), label

            return process_eval
        options = dict(self.train_options)

        # The stream position (it keeps growing across epochs) gives every element, and every
        # epoch, its own reproducible crop/flip/colour seed.
        def process_train(image_bytes, label, position):
            seed = tf.stack([tf.constant(base_seed, tf.int64), position])
            return preprocessing.preprocess_for_train(
                image_bytes, size, seed=seed, **options
            ), label

        return process_train

    def _pad(self, dataset, num_pipelines, num_replicas, batch_size):
        """This pipeline's replicas get ``padded_steps`` full batches each; the padding examples
        come after the real ones, so an undecodable record shifts them but never drops one."""
        steps = self.padded_steps(num_pipelines, num_replicas)
        total = steps * batch_size * (num_replicas // num_pipelines)
        size = self.image_size
        padding = tf.data.Dataset.from_tensors(
            (tf.zeros([size, size, 3], tf.float32), tf.constant(PAD_LABEL, tf.int32))
        )
        return dataset.concatenate(padding.repeat()).take(total)

    def input_fn(self, input_context=None):
        """The dataset of one input pipeline: (images float32 [B, S, S, 3], labels int32 [B]),
        B = the per-replica batch size. Pass to ``strategy.distribute_datasets_from_function``."""
        num_pipelines, pipeline_id, num_replicas, batch_size = _shard(
            input_context, self.global_batch_size
        )
        if self.seed is None:
            base_seed = random.SystemRandom().randrange(2**31)
        else:
            base_seed = (self.seed * 1_000_003 + pipeline_id) % (2**31)
        ordered = self.deterministic or not self.is_training
        # Padding needs slices of known, even size; files can hold different numbers of examples.
        dataset, expected = self.source.read_counted(
            num_pipelines,
            pipeline_id,
            by_files=not self.pad_to_full_batches,
            shuffle_files=self.shuffle,
            seed=base_seed,
            deterministic=ordered,
        )
        if self.shuffle:
            buffer = max(1, min(self.shuffle_buffer, self.num_examples))
            dataset = dataset.shuffle(buffer, seed=base_seed, reshuffle_each_iteration=True)
        marker = (skipping.tiny_jpeg(), tf.constant(0, tf.int32))
        dataset = skipping.map_skipping_errors(
            dataset,
            self._process_fn(base_seed),
            marker,
            repeat=self.repeat,
            counter=self._skipped,
            expected=expected,
            files=self.source.files(),
            name=f"{self.name}/{self.split}[pipeline {pipeline_id}/{num_pipelines}]",
        )
        drop_remainder = self.drop_remainder
        if self.pad_to_full_batches:
            dataset = self._pad(dataset, num_pipelines, num_replicas, batch_size)
            drop_remainder = True  # every batch is full: a static batch dimension
        dataset = dataset.batch(
            batch_size,
            drop_remainder=drop_remainder,
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=ordered,
        )
        return dataset.prefetch(tf.data.AUTOTUNE)
