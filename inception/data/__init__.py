"""Datasets and the input pipeline. Importing this package registers the embedded
'sklearn_digits' TFDS builder.

- ``catalogue``: which datasets exist (ImageNet, the embedded digits, any TFDS image
  classification), their defaults, ``describe`` / ``prepare``.
- ``reader``: the one way a split is read, (encoded image, int32 label) pairs.
- ``pipeline``: ``InputPipeline``, the distributed training and evaluation input.
- ``preprocessing``: the Inception train and eval preprocessing; ``skipping``: undecodable
  records dropped and counted; ``sklearn_digits``: the embedded dataset's TFDS builder.
"""

from inception.data import (
    preprocessing,  # noqa: F401
    sklearn_digits,  # noqa: F401  (registers the TFDS builder)
)
from inception.data.catalogue import (  # noqa: F401
    EMBEDDED_DATASET,
    IMAGENET,
    DatasetInfo,
    describe,
    prepare,
    train_preprocessing_defaults,
)
from inception.data.pipeline import PAD_LABEL, InputPipeline  # noqa: F401
from inception.data.reader import open_split  # noqa: F401
