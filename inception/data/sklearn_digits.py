"""`sklearn_digits`: the 1,797 real handwritten digit scans bundled with scikit-learn, as a TFDS
dataset of encoded JPEG images. Needs no download: the scans ship inside scikit-learn.

Each 8x8 scan (16 grey levels) is enlarged 8x by pixel replication to 64x64, mapped to 0..255
(``round(v * 255 / 16)``), copied to three channels and stored as a JPEG, so the same fused
crop-and-decode path runs as for ImageNet. The replicated 8x8 blocks line up with JPEG's 8x8 DCT
blocks, so the stored images keep the scans almost exactly.

Split: for every class, a fixed-seed permutation sends ``round(0.2 * n_class)`` scans to
'validation' and the rest to 'train' (stratified 80/20, identical on every machine).
Label names are '0'..'9'. The feature 'sklearn_index' is the scan's index in
``sklearn.datasets.load_digits()``.

Importing this module registers the builder with TFDS (name 'sklearn_digits').
"""

from typing import ClassVar

import numpy as np
import tensorflow_datasets as tfds

SCALE = 8
IMAGE_SIDE = 8 * SCALE
VALIDATION_FRACTION = 0.2
SPLIT_SEED = 20160223  # fixed: the split must be the same everywhere
NUM_SHARDS = 4  # several files per split, so input pipelines can each read their own files


def split_indices(labels, validation_fraction=VALIDATION_FRACTION, seed=SPLIT_SEED):
    """Deterministic stratified split -> (train_indices, validation_indices), both sorted."""
    labels = np.asarray(labels)
    rng = np.random.Generator(np.random.PCG64(seed))
    train, validation = [], []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        members = members[rng.permutation(len(members))]
        n_val = int(round(validation_fraction * len(members)))
        validation.extend(members[:n_val].tolist())
        train.extend(members[n_val:].tolist())
    return np.sort(np.array(train)), np.sort(np.array(validation))


def scan_to_rgb(scan):
    """8x8 scan with values 0..16 -> uint8 [64, 64, 3]."""
    grey = np.rint(np.asarray(scan, np.float64) * (255.0 / 16.0)).astype(np.uint8)
    grey = np.kron(grey, np.ones((SCALE, SCALE), np.uint8))
    return np.repeat(grey[:, :, None], 3, axis=2)


class SklearnDigits(tfds.core.GeneratorBasedBuilder):
    """Handwritten digits (UCI optical recognition, as bundled with scikit-learn) as JPEGs."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {
        "1.0.0": "64x64 RGB JPEG, stratified 80/20 train/validation split."
    }

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(
                        shape=(IMAGE_SIDE, IMAGE_SIDE, 3), encoding_format="jpeg"
                    ),
                    "label": tfds.features.ClassLabel(names=[str(d) for d in range(10)]),
                    "sklearn_index": tfds.features.Scalar(dtype=np.int32),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://scikit-learn.org/stable/datasets/toy_dataset.html",
        )

    # TFDS prints "Downloading and preparing dataset Unknown size (download: Unknown size, ...)"
    # before it prepares any dataset and "Dataset ... downloaded and prepared" after; nothing is
    # downloaded here, and inception.data says what it prepares (its two print hooks, checked by
    # tests/test_console_packaging.py).
    def _log_download_bytes(self):
        pass

    def _log_download_done(self):
        pass

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        try:
            from sklearn.datasets import load_digits
        except ImportError:  # the [digits] extra; without it TFDS would fail far from the cause
            raise ImportError(
                "the embedded dataset 'sklearn_digits' needs scikit-learn: "
                "pip install 'inception[digits]'"
            ) from None

        digits = load_digits()
        train, validation = split_indices(digits.target)
        return {
            "train": self._generate_examples(digits.images, digits.target, train),
            "validation": self._generate_examples(digits.images, digits.target, validation),
        }

    def _generate_examples(self, images, labels, indices):
        for index in indices:
            index = int(index)
            yield (
                index,
                {
                    "image": scan_to_rgb(images[index]),
                    "label": int(labels[index]),
                    "sklearn_index": index,
                },
            )
