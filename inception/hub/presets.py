"""keras-hub presets: the released weights under registered names, and writing a preset directory
from a published file (``inception-convert-weights --preset``).

``inception_v4_imagenet`` and ``inception_resnet_v2_imagenet`` are registered with keras-hub, so
``keras_hub.models.ImageClassifier.from_preset("inception_v4_imagenet")`` works once
``inception.hub`` is imported. A name resolves to a local directory, never to a download:
``$INCEPTION_PRESETS_DIR/<name>``, else ``<weights cache>/presets/<name>`` (the cache of
``weights="imagenet"``: ``$INCEPTION_WEIGHTS_DIR`` or ``~/.keras/models/inception``), which
``inception-convert-weights --preset=<name>`` writes. Absent, loading fails with how to create it.
"""

import dataclasses
import os

from keras_hub.src.utils import preset_utils

from inception.hub.backbone import InceptionResNetV2Backbone, InceptionV4Backbone
from inception.hub.image_classifier import (
    InceptionResNetV2ImageClassifier,
    InceptionV4ImageClassifier,
)
from inception.hub.preprocessor import (
    InceptionResNetV2ImageClassifierPreprocessor,
    InceptionV4ImageClassifierPreprocessor,
)
from inception.weights import fetch

ENV_PRESETS = "INCEPTION_PRESETS_DIR"
LICENCE = "Apache-2.0"


@dataclasses.dataclass(frozen=True)
class Released:
    network: str
    title: str
    backbone_cls: type
    classifier_cls: type
    preprocessor_cls: type
    backbone_params: (
        int  # our model's 1000-class parameters less the classifier's 1536 x 1000 + 1000
    )
    source: str
    accuracy: str


RELEASED = {
    "inception_v4_imagenet": Released(
        "inception_v4",
        "Inception-v4",
        InceptionV4Backbone,
        InceptionV4ImageClassifier,
        InceptionV4ImageClassifierPreprocessor,
        41_174_400,
        fetch.official("inception_v4").url + " (TF-slim, tensorflow/models research/slim), "
        "or timm's port inception_v4.tf_in1k",
        "80.2 / 95.2 top-1 / top-5, 299x299 single crop (TF-slim model zoo)",
    ),
    "inception_resnet_v2_imagenet": Released(
        "inception_resnet_v2",
        "Inception-ResNet-v2",
        InceptionResNetV2Backbone,
        InceptionResNetV2ImageClassifier,
        InceptionResNetV2ImageClassifierPreprocessor,
        54_336_736,
        fetch.official("inception_resnet_v2").url + " (TF-slim, tensorflow/models research/slim), "
        "or timm's ports inception_resnet_v2.tf_in1k / .tf_ens_adv_in1k",
        "80.4 / 95.3 top-1 / top-5, 299x299 single crop (TF-slim model zoo)",
    ),
}


class PresetNotCreatedError(ValueError):
    """A registered preset whose local directory does not exist yet."""


def preset_directory(name):
    """Where the registered preset ``name`` is read from (and written by the converter)."""
    base = os.environ.get(ENV_PRESETS) or os.path.join(fetch.cache_directory(), "presets")
    return os.path.join(os.path.expanduser(base), name)


def existing_directory(name):
    """``preset_directory(name)`` if it holds a preset, else PresetNotCreatedError saying how to
    create it (nothing is downloaded)."""
    directory = preset_directory(name)
    if os.path.isfile(os.path.join(directory, preset_utils.CONFIG_FILE)):
        return directory
    released = RELEASED[name]
    raise PresetNotCreatedError(
        f"The keras-hub preset {name!r} ({released.title}, the released ImageNet weights) is not on "
        f"this machine: it is read from {directory} and never downloaded. Create it once with "
        f"`inception-convert-weights --network={released.network} --weights=imagenet --preset={name}` "
        f"(downloads {fetch.official(released.network).url}), or from a file you have: "
        f"`inception-convert-weights --weights=FILE --preset={name}` (a TF-slim .tar.gz or checkpoint, "
        f"or timm's model.safetensors). Set ${ENV_PRESETS} to keep presets in another directory."
    )


class _LocalPreset(dict):
    """A keras-hub registry entry whose "kaggle_handle" (the location keras-hub's ``get_file``
    reads, and takes as a directory when it is a local path) is looked up when it is read."""

    def __init__(self, name, metadata):
        super().__init__(metadata=metadata, kaggle_handle=None)
        self.name = name

    def __getitem__(self, key):
        if key == "kaggle_handle":
            return existing_directory(self.name)
        return super().__getitem__(key)


def metadata(name):
    released = RELEASED[name]
    return {
        "description": f"{released.title} (Szegedy et al. 2016) trained on ImageNet-1k by its "
        f"authors; {released.accuracy}.",
        "params": released.backbone_params,
        "path": "inception",
        "source": released.source,
        "license": LICENCE,
    }


def register():
    """Registers both names with keras-hub, each under its backbone class."""
    for name, released in RELEASED.items():
        preset_utils.register_presets(
            {name: _LocalPreset(name, metadata(name))}, released.backbone_cls
        )


def class_names(preset):
    """The class names of a preset written by ``inception-convert-weights --preset`` (a registered
    name or a directory; its ``labels.txt``), or None when it has none."""
    directory = existing_directory(preset) if preset in RELEASED else os.fspath(preset)
    path = os.path.join(directory, "labels.txt")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()
