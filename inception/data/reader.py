"""The one way a split of a dataset is read: (encoded image bytes, int32 label) pairs.

The input pipeline (``inception.data.pipeline``), the multi-crop evaluation
(``inception.evaluation.runner``) and the export's calibration and agreement images
(``inception.export.data``) all open their split here, so the catalogue's rules (the embedded
dataset built on first use, imagenet2012 from its archives in the manual dir, any other TFDS name
only when prepared or ``download=True``) and the choice of the image and label features hold
everywhere. Images stay encoded; each reader decodes them in its own preprocessing.

    split = reader.open_split("sklearn_digits", "eval", data_dir="data", limit=100)
    for image_bytes, label in split.read():   # split order
        ...
"""

import os

import tensorflow as tf
import tensorflow_datasets as tfds

from inception.data import catalogue

# The two roles a split can have: 'train', and 'eval' (the dataset's validation split, else test).
SPLITS = ("train", "eval")


def open_split(dataset, split, *, data_dir=None, manual_dir=None, download=False, limit=None):
    """The ``split`` ('train' or 'eval') of ``dataset``, prepared if it may be (see the catalogue),
    as a ``Split``; ``limit``: only its first ``limit`` examples. ValueError with a specific
    message when the dataset cannot be used or has no such split."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
    if limit is not None and int(limit) < 1:
        raise ValueError(f"limit must be a positive number of examples or None; got {limit!r}")
    builder = catalogue.prepare(
        dataset, data_dir=data_dir, manual_dir=manual_dir, download=download
    )
    info = catalogue.describe_builder(builder, prepared=True)
    name = info.train_split if split == "train" else info.eval_split
    if name is None:
        which = "a 'train'" if split == "train" else "a 'validation' or 'test'"
        raise ValueError(f"dataset {info.name!r} has no {which} split")
    if limit is not None and int(limit) < builder.info.splits[name].num_examples:
        name = f"{name}[:{int(limit)}]"
    return Split(builder, name, info)


class Split:
    """One prepared split (or its first examples), read as (encoded image, int32 label) pairs.

    ``name`` is the TFDS split ('validation', 'train[:200]'); ``info`` the dataset's
    ``DatasetInfo``; ``num_examples`` and ``num_files`` are this split's.
    """

    def __init__(self, builder, name, info):
        self.builder, self.name, self.info = builder, name, info
        self.image_key, self.label_key = catalogue.supervised_keys(builder)
        split_info = builder.info.splits[name]
        self.num_examples = split_info.num_examples
        self.num_files = len(split_info.filenames)

    def even_slices(self, num_pipelines):
        """The split cut into ``num_pipelines`` slices of (almost) equal size, as TFDS splits."""
        if num_pipelines == 1:
            return [self.name]
        return tfds.even_splits(self.name, num_pipelines)

    def slice_sizes(self, num_pipelines):
        """Examples in each of the ``even_slices``."""
        return [self.builder.info.splits[s].num_examples for s in self.even_slices(num_pipelines)]

    def read(
        self,
        num_pipelines=1,
        pipeline_id=0,
        *,
        by_files=True,
        shuffle_files=False,
        seed=None,
        deterministic=True,
    ):
        """Input pipeline ``pipeline_id`` of ``num_pipelines``: a dataset of (encoded image
        bytes, int32 label), one pass over its part of the split.

        Args:
          num_pipelines, pipeline_id: with several pipelines each reads its own part: its own
            files (TFDS's ``InputContext`` sharding) when ``by_files`` and there are at least as
            many files as pipelines, else its own ``even_slices`` slice of the examples.
          shuffle_files: read the files in an order drawn from ``seed``.
          deterministic: the dataset's order does not depend on thread timing.

        A damaged TFRecord file raises TensorFlow's DataLossError, and TFDS's count check a
        FailedPreconditionError at the end; readers that skip errors use ``read_counted``.
        """
        return self._read(
            num_pipelines,
            pipeline_id,
            by_files,
            shuffle_files,
            seed,
            deterministic,
            assert_cardinality=True,
        )[0]

    def read_counted(
        self,
        num_pipelines=1,
        pipeline_id=0,
        *,
        by_files=True,
        shuffle_files=False,
        seed=None,
        deterministic=True,
    ):
        """(dataset, records it should yield): ``read`` without TFDS's count check, for a reader
        that skips errors (``skipping.map_skipping_errors``). TFDS's check fails on every call
        once the stream has ended short, so under ``ignore_errors`` it looped forever (and it
        is not made at all for a pipeline sharded by files); the caller compares the count
        itself at the end of each pass."""
        return self._read(
            num_pipelines,
            pipeline_id,
            by_files,
            shuffle_files,
            seed,
            deterministic,
            assert_cardinality=False,
        )

    def files(self):
        """(path, records it holds) of each TFRecord file of this split."""
        return [
            (os.fspath(instruction.filename), int(instruction.examples_in_shard))
            for instruction in self.builder.info.splits[self.name].file_instructions
        ]

    def _read(
        self,
        num_pipelines,
        pipeline_id,
        by_files,
        shuffle_files,
        seed,
        deterministic,
        assert_cardinality,
    ):
        options = tf.data.Options()
        options.deterministic = bool(deterministic)
        context, split = None, self.name
        if num_pipelines > 1:
            if by_files and num_pipelines <= self.num_files:
                context = tf.distribute.InputContext(
                    num_input_pipelines=num_pipelines, input_pipeline_id=pipeline_id
                )
            else:
                split = self.even_slices(num_pipelines)[pipeline_id]
        read_config = tfds.ReadConfig(
            input_context=context,
            options=options,
            shuffle_seed=seed,
            assert_cardinality=assert_cardinality,
        )
        dataset = self.builder.as_dataset(
            split=split,
            shuffle_files=shuffle_files,
            read_config=read_config,
            decoders={self.image_key: tfds.decode.SkipDecoding()},
        )
        image_key, label_key = self.image_key, self.label_key

        def select(example):
            return example[image_key], tf.cast(example[label_key], tf.int32)

        return (
            dataset.map(select, num_parallel_calls=tf.data.AUTOTUNE),
            self._count(split, context),
        )

    def _count(self, split, context):
        """Records of ``split`` one pipeline reads: TFDS gives pipeline i of n every n-th file
        of the split (``Dataset.shard`` of its file instructions, before any shuffling)."""
        instructions = self.builder.info.splits[split].file_instructions
        if context is not None:
            instructions = instructions[context.input_pipeline_id :: context.num_input_pipelines]
        return sum(int(instruction.take) for instruction in instructions)


def damaged_files(files):
    """'PATH: record N: what is wrong' for each of ``files`` ((path, records it should hold))
    that TensorFlow cannot read to its end (a truncated file, a corrupt length or checksum) or
    that holds fewer records (cut at a record boundary: nothing in the format marks its end);
    '' when none."""
    problems = []
    for path, expected in files:
        count = 0
        try:
            for _ in tf.compat.v1.io.tf_record_iterator(path):
                count += 1
        except tf.errors.OpError as err:
            problems.append(f"{path}: record {count}: {err.message}")
            continue
        if count != expected:
            problems.append(f"{path}: {count} of its {expected} records (cut short)")
    return "; ".join(problems)
