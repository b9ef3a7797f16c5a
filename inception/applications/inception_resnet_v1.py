"""Inception-ResNet-v1 as a keras.applications model: ``InceptionResNetV1`` and its utilities."""

from inception.applications.application import application
from inception.applications.imagenet_utils import decode_predictions, preprocess_input  # noqa: F401


def InceptionResNetV1(
        include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
        classes=1000, classifier_activation="softmax", name="inception_resnet_v1", **options):
    """Instantiates Inception-ResNet-v1 (Szegedy et al. 2016: Figure 15, stem Figure 14).

    No ImageNet weights were released for this network, so ``weights`` defaults to None
    (keras.applications' default, "imagenet", is refused with a message saying so).

    Call ``preprocess_input`` of this module on images in [0, 255] (it scales them to
    [-1, 1]), and ``decode_predictions`` on the outputs of an ImageNet classifier.

    Args:
        include_top: whether to include the classifier (global average pool, dropout, the fully
            connected layer ``predictions``, the model's last layer).
        weights: None (random initialization) or the path of a weights file: a Keras ``.weights.h5``,
            or any file ``inception.weights`` reads. ``"imagenet"`` is refused: none were
            released.
        input_tensor: optional Keras tensor (e.g. the output of ``keras.Input()`` or of layers
            after it) to use as the image input; the model's inputs are then its source inputs.
        input_shape: optional shape tuple: (299, 299, 3) with the top ((3, 299, 299) with
            "channels_first"), else any height and width of at least 75 (None allowed), and any
            number of channels with ``weights=None``.
        pooling: without the top: None (the 4-D feature map), "avg" or "max" (2-D).
        classes: number of classes, with the top; 1000 (or 1001, the released checkpoints'
            background class first) with ImageNet weights.
        classifier_activation: a ``str`` or callable, the classifier's activation; None returns
            logits. Only None or "softmax" with pretrained weights.
        name: the model's name (default: the name ``inception.models.build`` gives this network,
            which the weight importers recognise).
        **options: the network's options of ``inception.models.build`` (``width_multiplier``,
            ``repeats``, ``dropout_rate``, ``weight_decay``, ...); not part of keras.applications,
            and published weights need the paper's width and block counts.

    Both image data formats build and give the right shapes. TensorFlow's CPU kernels cannot run
    "channels_first" convolutions and pooling: such a model runs on a GPU only, with TensorFlow.

    Returns:
        A ``keras.Model``.
    """
    return application("inception_resnet_v1", include_top=include_top, weights=weights, input_tensor=input_tensor,
                       input_shape=input_shape, pooling=pooling, classes=classes,
                       classifier_activation=classifier_activation, name=name, **options)
