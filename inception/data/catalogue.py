"""The datasets the project reads, through TensorFlow Datasets, and what is known of each before
reading it.

- ``EMBEDDED_DATASET`` ('sklearn_digits'): built offline on first use under ``data_dir``.
- 'imagenet2012': prepared by TFDS's own builder from the two ILSVRC-2012 archives in
  ``manual_dir`` (default ``<data_dir>/downloads/manual``).
- Any other TFDS image-classification dataset by name; nothing is downloaded unless
  ``download=True``.

``describe`` says what a dataset is (``DatasetInfo``) or why it cannot be used, ``prepare`` makes
it readable; ``train_preprocessing_defaults`` gives each dataset's crop defaults. Reading a split
is ``inception.data.reader``.
"""

import dataclasses
import os
import sys

import tensorflow as tf
import tensorflow_datasets as tfds

from inception.data import (
    preprocessing,
    sklearn_digits,  # importing it also registers the TFDS builder
)

EMBEDDED_DATASET = "sklearn_digits"
IMAGENET = "imagenet2012"
IMAGENET_ARCHIVES = (
    (
        "ILSVRC2012_img_train.tar",
        "train",
        "about 138 GB, 1,281,167 images in 1,000 per-synset tars",
    ),
    ("ILSVRC2012_img_val.tar", "validation", "about 6.3 GB, 50,000 images"),
)

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
    (imagenet2012 archives present, or ``download=True``); reading it prepares it.
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


def get_builder(name, data_dir=None):
    """The TFDS builder of dataset ``name`` (nothing is prepared); ValueError for an unknown name."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"dataset name must be a non-empty string; got {name!r}")
    try:
        return tfds.builder(name.strip(), data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as err:
        raise ValueError(
            f"unknown dataset {name!r}: it is neither {EMBEDDED_DATASET!r}, {IMAGENET!r} nor a "
            f"TensorFlow Datasets name (see `tfds.list_builders()`): {err}"
        ) from None


def supervised_keys(builder):
    """(image key, label key) of an image-classification dataset; ValueError for any other."""
    info = builder.info
    keys = info.supervised_keys
    if not keys or len(keys) != 2:
        raise ValueError(
            f"dataset {builder.name!r} has no (image, label) supervised keys; "
            "only image-classification datasets are supported"
        )
    image_key, label_key = keys
    features = info.features
    if not isinstance(features[image_key], tfds.features.Image):
        raise ValueError(
            f"dataset {builder.name!r}: supervised input {image_key!r} is not an image feature"
        )
    if not isinstance(features[label_key], tfds.features.ClassLabel):
        raise ValueError(
            f"dataset {builder.name!r}: supervised target {label_key!r} is not a class label"
        )
    return image_key, label_key


def _pick_splits(builder, available):
    train = "train" if "train" in available else None
    eval_split = next((s for s in ("validation", "test") if s in available), None)
    if train is None and eval_split is None:
        raise ValueError(
            f"dataset {builder.name!r} has neither a 'train' nor a 'validation'/'test' "
            f"split (splits: {sorted(available)})"
        )
    return train, eval_split


def _check_imagenet_archives(builder, manual_dir):
    manual_dir = manual_dir or _default_manual_dir(builder)
    missing = [
        (f, split, what)
        for f, split, what in IMAGENET_ARCHIVES
        if not tf.io.gfile.exists(os.path.join(manual_dir, f))
    ]
    if missing:
        lines = "\n".join(
            f"  {os.path.join(manual_dir, f)}   ({split} split; {what})"
            for f, split, what in missing
        )
        raise ValueError(
            f"imagenet2012 is not prepared under data_dir {os.fspath(builder.data_dir_root)!r} "
            f"and these ILSVRC-2012 archives are missing from manual_dir {manual_dir!r}:\n{lines}\n"
            "Download them (unmodified) from https://image-net.org/download-images after "
            "registering, put both in that directory (or pass --manual_dir=DIR), and rerun: "
            "TFDS then prepares the dataset under --data_dir (about 150 GB). "
            "Nothing is downloaded automatically."
        )
    return manual_dir


def describe_builder(builder, prepared=True):
    """The ``DatasetInfo`` of a TFDS builder (split names and sizes only when ``prepared``)."""
    _, label_key = supervised_keys(builder)
    label_names = list(builder.info.features[label_key].names)
    if prepared:
        splits = builder.info.splits
        train, eval_split = _pick_splits(builder, set(splits.keys()))
        num_train = splits[train].num_examples if train else None
        num_eval = splits[eval_split].num_examples if eval_split else None
    else:  # split names and sizes are known once TFDS has prepared it; reading it re-reads them
        train, eval_split, num_train, num_eval = "train", "validation", None, None
    return DatasetInfo(
        name=builder.name,
        num_classes=len(label_names),
        num_train=num_train,
        num_eval=num_eval,
        label_names=label_names,
        train_split=train,
        eval_split=eval_split,
        data_dir=os.fspath(builder.data_dir_root),
        prepared=prepared,
    )


def _not_prepared_error(builder):
    return ValueError(
        f"dataset {builder.name!r} is not prepared under data_dir "
        f"{os.fspath(builder.data_dir_root)!r} and downloading is off. Pass download=True "
        f"(flag --download) to let TFDS fetch and prepare it, or prepare it beforehand "
        f"with `tfds build {builder.name} --data_dir=DIR`, or point --data_dir at a "
        "directory where it is prepared."
    )


def describe(name, data_dir=None, manual_dir=None, download=False):
    """Cheap description of a dataset; ValueError with a specific message if it is unusable.

    The embedded dataset is built here if needed (seconds, offline). For imagenet2012 the two
    archives must be in ``manual_dir`` unless the dataset is already prepared under ``data_dir``.
    Other TFDS datasets must be prepared under ``data_dir`` unless ``download`` is True.
    """
    builder = get_builder(name, data_dir)
    if builder.name == EMBEDDED_DATASET:
        builder = prepare(name, data_dir=data_dir)
    prepared = builder.is_prepared()
    if not prepared:
        if builder.name == IMAGENET:
            _check_imagenet_archives(builder, manual_dir)
        elif not download:
            raise _not_prepared_error(builder)
    return describe_builder(builder, prepared)


def prepare(name, data_dir=None, manual_dir=None, download=False):
    """Makes sure dataset ``name`` is prepared under ``data_dir``; returns its TFDS builder.

    The same rules as ``describe``; an unusable dataset (not an image classification, archives
    missing, not prepared and ``download`` off) fails before anything is written."""
    builder = get_builder(name, data_dir)
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
    supervised_keys(builder)  # never download what cannot be read
    origin = " from scikit-learn's copy" if builder.name == EMBEDDED_DATASET else ""
    print(
        f"inception.data: preparing {builder.name!r}{origin} under "
        f"{os.fspath(builder.data_dir_root)} (first use only)",
        file=sys.stderr,
        flush=True,
    )
    builder.download_and_prepare(download_config=config)
    return builder
