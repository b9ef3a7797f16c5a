"""Inception-ResNet-v1 as a keras.applications model: ``InceptionResNetV1`` and its utilities."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from inception.applications.application import Weights, application, document
from inception.applications.imagenet_utils import decode_predictions, preprocess_input  # noqa: F401
from inception.heads import Activation

WEIGHTS_NONE = """None (random initialization) or the path of a weights file: a Keras
            ``.weights.h5``, or any file ``inception.weights`` reads. ``"imagenet"`` is refused:
            none were released."""


def InceptionResNetV1(
    include_top: bool = True,
    weights: Weights = None,
    input_tensor: keras.KerasTensor | None = None,
    input_shape: Sequence[int | None] | None = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Activation = "softmax",
    name: str = "inception_resnet_v1",
    **options: Any,
) -> keras.Model:
    """Instantiates Inception-ResNet-v1 (Szegedy et al. 2016: Figure 15, stem Figure 14).

    No ImageNet weights were released for this network, so ``weights`` defaults to None
    (keras.applications' default, "imagenet", is refused with a message saying so).

    {arguments}
    """
    return application(
        "inception_resnet_v1",
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


InceptionResNetV1.__doc__ = document(InceptionResNetV1, WEIGHTS_NONE)
