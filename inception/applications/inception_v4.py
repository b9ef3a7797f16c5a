"""Inception-v4 as a keras.applications model: ``InceptionV4``, ``preprocess_input``, ``decode_predictions``."""

from inception.applications.application import WEIGHTS_RELEASED, application, document
from inception.applications.imagenet_utils import decode_predictions, preprocess_input  # noqa: F401


def InceptionV4(
        include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
        classes=1000, classifier_activation="softmax", name="inception_v4", **options):
    """Instantiates Inception-v4 (Szegedy et al. 2016, Figure 9), keras.applications' way.

    {arguments}
    """
    return application("inception_v4", include_top=include_top, weights=weights, input_tensor=input_tensor,
                       input_shape=input_shape, pooling=pooling, classes=classes,
                       classifier_activation=classifier_activation, name=name, **options)


InceptionV4.__doc__ = document(InceptionV4, WEIGHTS_RELEASED)
