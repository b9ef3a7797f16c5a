"""Published ImageNet weights in our networks (README "Pretrained weights").

    model = weights.build("inception_v4", "inception_v4_2016_09_09.tar.gz")
    model = weights.build("inception_resnet_v2", "imagenet", num_classes=1001)

Supported files (the format is detected from the content): the authors' TF-slim checkpoints
(slim.py), timm's safetensors (timm.py), keras-applications' Inception-ResNet-v2 HDF5
(keras_h5.py) and this project's .keras models (keras_model.py), each read into a
``WeightsFile`` (file.py: the file's tensors keyed by our variable paths). names.py holds the name
map, assign.py the checks, fetch.py the official files and their cache, finetune.py the start of a
training run, labeled.py + classes.py the class names.

This package's import is light (pure Python + Keras); TensorFlow is imported only to read
slim checkpoints.
"""

from inception.weights.file import WeightsError  # noqa: F401
from inception.weights.labeled import LabeledDense, class_names  # noqa: F401


def build(name, weights, **build_args):
    """``models.build(name, **build_args)`` with published ``weights``; see pretrained.build."""
    from inception.weights import pretrained

    return pretrained.build(name, weights, **build_args)


def load_weights(model, weights, **kwargs):
    """Loads a weights file (or "imagenet") into ``model`` in place; returns the report."""
    from inception.weights import pretrained

    return pretrained.load_weights(model, weights, **kwargs)


def load_initial_weights(model, weights, **kwargs):
    """Fine-tuning start: see finetune.load_initial_weights."""
    from inception.weights import finetune

    return finetune.load_initial_weights(model, weights, **kwargs)


def convert(network, weights, output, **kwargs):
    """A published file -> our .keras model; see pretrained.convert."""
    from inception.weights import pretrained

    return pretrained.convert(network, weights, output, **kwargs)
