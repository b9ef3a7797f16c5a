"""Inception-v4 as a keras.applications model: ``InceptionV4``, ``preprocess_input``, ``decode_predictions``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from inception.applications.application import WEIGHTS_RELEASED, Weights, application, document
from inception.applications.imagenet_utils import decode_predictions, preprocess_input  # noqa: F401
from inception.heads import Activation


def InceptionV4(
    include_top: bool = True,
    weights: Weights = "imagenet",
    input_tensor: keras.KerasTensor | None = None,
    input_shape: Sequence[int | None] | None = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Activation = "softmax",
    name: str = "inception_v4",
    **options: Any,
) -> keras.Model:
    """Instantiates Inception-v4 (Szegedy et al. 2016, Figure 9), keras.applications' way.

    {arguments}
    """
    return application(
        "inception_v4",
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


InceptionV4.__doc__ = document(InceptionV4, WEIGHTS_RELEASED)
