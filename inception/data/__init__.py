"""Datasets and the input pipeline.

- ``config``: ``DataConfig``, the dataset and its training crops (pure Python).
- ``catalogue``: which datasets exist (ImageNet, the embedded digits, any TFDS image
  classification), their defaults, ``describe`` / ``prepare``. Importing it registers the
  embedded 'sklearn_digits' TFDS builder.
- ``reader``: the one way a split is read, (encoded image, int32 label) pairs.
- ``pipeline``: ``InputPipeline``, the distributed training and evaluation input.
- ``preprocessing``: the Inception train and eval preprocessing; ``skipping``: undecodable
  records dropped and counted; ``sklearn_digits``: the embedded dataset's TFDS builder.

Importing the package loads nothing else: the names below load their module (and TensorFlow) on
first use (PEP 562), so ``inception.data.config`` is read without TensorFlow.
"""

from inception import lazy

# Each public name -> the module that defines it.
_HOMES = {
    "DataConfig": "config",
    "EMBEDDED_DATASET": "catalogue",
    "IMAGENET": "catalogue",
    "DatasetInfo": "catalogue",
    "describe": "catalogue",
    "prepare": "catalogue",
    "train_preprocessing_defaults": "catalogue",
    "PAD_LABEL": "pipeline",
    "InputPipeline": "pipeline",
    "open_split": "reader",
}

__all__ = sorted(_HOMES)

__getattr__, __dir__ = lazy.exports(__name__, _HOMES, globals())
