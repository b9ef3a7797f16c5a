"""Input pipeline: TFDS datasets (ImageNet, an embedded offline dataset, any TFDS image
classification dataset) and the Inception preprocessing. Importing this package registers the
embedded 'sklearn_digits' TFDS builder."""

from inception.data import preprocessing  # noqa: F401
from inception.data import sklearn_digits  # noqa: F401  (registers the TFDS builder)
from inception.data.datasets import (  # noqa: F401
    EMBEDDED_DATASET,
    IMAGENET,
    PAD_LABEL,
    DatasetInfo,
    InputPipeline,
    describe,
    prepare,
    train_preprocessing_defaults,
)
