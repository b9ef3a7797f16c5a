"""keras-hub image classifiers: the backbone, then the paper's head (Figures 9 and 15): global
average pooling, dropout 0.2 (keep 0.8), the fully connected classifier.

With the same weights the classifier computes ``models.build(name)`` (keras-hub's pooler, dropout
and Dense are the layers ``models.build`` uses); the head computes in float32 by default, as
ours does under a mixed-precision policy (logits and softmax in bfloat16 lose the small
probabilities the loss and the top-k metrics read).
"""

import keras
from keras_hub.models import ImageClassifier

from inception.hub.backbone import (
    InceptionResNetV1Backbone,
    InceptionResNetV2Backbone,
    InceptionV4Backbone,
)
from inception.hub.preprocessor import (
    InceptionResNetV1ImageClassifierPreprocessor,
    InceptionResNetV2ImageClassifierPreprocessor,
    InceptionV4ImageClassifierPreprocessor,
)

DROPOUT_RATE = 0.2  # the paper's keep probability 0.8


class InceptionImageClassifier(ImageClassifier):
    """keras-hub's ImageClassifier with the paper's dropout and a float32 head by default.

    Args: as keras_hub.models.ImageClassifier (backbone, num_classes, preprocessor, pooling,
    activation: None gives logits, "softmax" probabilities), with dropout 0.2 and head_dtype
    "float32" by default.
    """

    def __init__(
        self,
        backbone,
        num_classes,
        preprocessor=None,
        pooling="avg",
        activation=None,
        dropout=DROPOUT_RATE,
        head_dtype="float32",
        **kwargs,
    ):
        super().__init__(
            backbone=backbone,
            num_classes=num_classes,
            preprocessor=preprocessor,
            pooling=pooling,
            activation=activation,
            dropout=dropout,
            head_dtype=head_dtype,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package="inception_hub")
class InceptionV4ImageClassifier(InceptionImageClassifier):
    backbone_cls = InceptionV4Backbone
    preprocessor_cls = InceptionV4ImageClassifierPreprocessor


@keras.saving.register_keras_serializable(package="inception_hub")
class InceptionResNetV1ImageClassifier(InceptionImageClassifier):
    backbone_cls = InceptionResNetV1Backbone
    preprocessor_cls = InceptionResNetV1ImageClassifierPreprocessor


@keras.saving.register_keras_serializable(package="inception_hub")
class InceptionResNetV2ImageClassifier(InceptionImageClassifier):
    backbone_cls = InceptionResNetV2Backbone
    preprocessor_cls = InceptionResNetV2ImageClassifierPreprocessor
