"""keras-hub image-classifier preprocessors: the image converter of each network (labels and
sample weights pass through)."""

import keras
from keras_hub.models import ImageClassifierPreprocessor

from inception.hub.backbone import (
    InceptionResNetV1Backbone,
    InceptionResNetV2Backbone,
    InceptionV4Backbone,
)
from inception.hub.image_converter import (
    InceptionResNetV1ImageConverter,
    InceptionResNetV2ImageConverter,
    InceptionV4ImageConverter,
)


@keras.saving.register_keras_serializable(package="inception_hub")
class InceptionV4ImageClassifierPreprocessor(ImageClassifierPreprocessor):
    backbone_cls = InceptionV4Backbone
    image_converter_cls = InceptionV4ImageConverter


@keras.saving.register_keras_serializable(package="inception_hub")
class InceptionResNetV1ImageClassifierPreprocessor(ImageClassifierPreprocessor):
    backbone_cls = InceptionResNetV1Backbone
    image_converter_cls = InceptionResNetV1ImageConverter


@keras.saving.register_keras_serializable(package="inception_hub")
class InceptionResNetV2ImageClassifierPreprocessor(ImageClassifierPreprocessor):
    backbone_cls = InceptionResNetV2Backbone
    image_converter_cls = InceptionResNetV2ImageConverter
