"""keras-hub classes of the paper's networks (the ``[hub]`` extra: keras-hub 0.32+, Python 3.11+).

    import keras_hub, inception.hub
    classifier = keras_hub.models.ImageClassifier.from_preset("inception_v4_imagenet")  # local, see presets.py
    backbone = inception.hub.InceptionResNetV2Backbone(width_multiplier=0.25)

Laid out as keras-hub lays out a model family: backbones (backbone.py, with ``pyramid_outputs``),
image converters (the released evaluation crop and scaling), preprocessors, image classifiers,
and presets (the registered names of the released weights, presets.py; writing one from a
published file, convert.py). Importing this package registers the classes with Keras (so
``from_preset`` and ``keras.saving.load_model`` find them) and the preset names with keras-hub.
"""

try:
    import keras_hub  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "inception.hub needs keras-hub, which needs Python 3.11 or later: "
        "pip install 'inception[hub]'"
    ) from err

from inception.hub import presets
from inception.hub.backbone import (
    InceptionResNetV1Backbone,
    InceptionResNetV2Backbone,
    InceptionV4Backbone,
)
from inception.hub.image_classifier import (
    InceptionResNetV1ImageClassifier,
    InceptionResNetV2ImageClassifier,
    InceptionV4ImageClassifier,
)
from inception.hub.image_converter import (
    InceptionResNetV1ImageConverter,
    InceptionResNetV2ImageConverter,
    InceptionV4ImageConverter,
)
from inception.hub.preprocessor import (
    InceptionResNetV1ImageClassifierPreprocessor,
    InceptionResNetV2ImageClassifierPreprocessor,
    InceptionV4ImageClassifierPreprocessor,
)
from inception.hub.presets import class_names

presets.register()

__all__ = [
    "InceptionResNetV1Backbone",
    "InceptionResNetV1ImageClassifier",
    "InceptionResNetV1ImageClassifierPreprocessor",
    "InceptionResNetV1ImageConverter",
    "InceptionResNetV2Backbone",
    "InceptionResNetV2ImageClassifier",
    "InceptionResNetV2ImageClassifierPreprocessor",
    "InceptionResNetV2ImageConverter",
    "InceptionV4Backbone",
    "InceptionV4ImageClassifier",
    "InceptionV4ImageClassifierPreprocessor",
    "InceptionV4ImageConverter",
    "class_names",
]
