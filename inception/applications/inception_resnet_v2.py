"""Inception-ResNet-v2 as a keras.applications model: ``InceptionResNetV2``, its utilities."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from inception.applications.application import WEIGHTS_RELEASED, Weights, application, document
from inception.applications.imagenet_utils import decode_predictions, preprocess_input  # noqa: F401
from inception.heads import Activation


def InceptionResNetV2(
    include_top: bool = True,
    weights: Weights = "imagenet",
    input_tensor: keras.KerasTensor | None = None,
    input_shape: Sequence[int | None] | None = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Activation = "softmax",
    name: str = "inception_resnet_v2_release",
    **options: Any,
) -> keras.Model:
    """Instantiates the released Inception-ResNet-v2 (Szegedy et al. 2016).

    The released network, the same function as ``keras.applications.InceptionResNetV2``.

    {arguments}
    """
    return application(
        "inception_resnet_v2",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        **options,
    )


InceptionResNetV2.__doc__ = document(InceptionResNetV2, WEIGHTS_RELEASED)
