"""keras-hub backbones of the paper's three networks (Figures 9 and 15), built by
``inception.models.build`` without the top.

The backbone's layers are the blocks of ``models.build`` (``stem``, ``inception_a_1``, ...,
``features``), so ``models.endpoints`` and ``models.block_names`` work on it and a backbone holds
exactly the variables of our model without its classifier. ``pyramid_outputs`` are the paper's
three grids: P3 the last 35x35 block (Inception-A), P4 the last 17x17 block (Inception-B), P5
the 8x8 features (keras-hub names a level by its stride, 2**k: 299/35 is about 8).
"""

import contextlib

import keras
from keras_hub.models import Backbone
from keras_hub.src.utils.keras_utils import standardize_data_format

from inception import models
from inception.networks import BN_MOMENTUM

DEFAULT_IMAGE_SHAPE = (None, None, 3)


@contextlib.contextmanager
def _global_policy(dtype):
    """models.build makes its layers with the global dtype policy: the backbone's while it builds
    (a DTypePolicyMap, keras-hub's quantization, lists Dense layers only: its default applies)."""
    if dtype is None:
        yield
        return
    policy = keras.dtype_policies.get(dtype)
    if isinstance(policy, keras.dtype_policies.DTypePolicyMap):
        policy = policy.default_policy
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def pyramid(model):
    """{"P3": last 35x35 block, "P4": last 17x17 block, "P5": features} of a models.build model:
    the blocks just before Reduction-A and Reduction-B, and the final feature map."""
    names = models.block_names(model)
    last_a = names[names.index("reduction_a") - 1]
    last_b = names[names.index("reduction_b") - 1]
    return {
        "P3": model.get_layer(last_a).output,
        "P4": model.get_layer(last_b).output,
        "P5": model.get_layer("features").output,
    }


class InceptionBackbone(Backbone):
    """Shared constructor of the three backbones; use a subclass (it names the network).

    ``options`` are models.build's network arguments beyond the common ones (the residual scales,
    the variant); the common ones are stored here and in the config.
    """

    network = None  # models.build's name, set by each subclass

    def __init__(
        self,
        width_multiplier=1.0,
        repeats=None,
        bn_momentum=BN_MOMENTUM,
        image_shape=DEFAULT_IMAGE_SHAPE,
        data_format=None,
        dtype=None,
        options=None,
        **kwargs,
    ):
        if standardize_data_format(data_format) != "channels_last":
            raise ValueError(
                f"{type(self).__name__} supports data_format='channels_last' only "
                f"(the blocks concatenate on the last axis); got {data_format!r}"
            )
        repeats = None if repeats is None else tuple(repeats)
        with _global_policy(dtype):
            net = models.build(
                self.network,
                include_top=False,
                pooling=None,
                input_shape=tuple(image_shape),
                width_multiplier=width_multiplier,
                repeats=repeats,
                bn_momentum=bn_momentum,
                **(options or {}),
            )
        levels = pyramid(net)
        super().__init__(inputs=net.input, outputs=net.output, dtype=dtype, **kwargs)
        self.pyramid_outputs = levels
        self.width_multiplier, self.repeats, self.bn_momentum = (
            width_multiplier,
            repeats,
            bn_momentum,
        )
        self.image_shape = tuple(image_shape)
        self.data_format = "channels_last"

    def get_config(self):
        return {
            **super().get_config(),
            "width_multiplier": self.width_multiplier,
            "repeats": self.repeats,
            "bn_momentum": self.bn_momentum,
            "image_shape": self.image_shape,
        }


@keras.saving.register_keras_serializable(package="inception_hub")
class InceptionV4Backbone(InceptionBackbone):
    """Inception-v4 (Figure 9) without its classifier: outputs the 8x8x1536 feature map.

    Args:
        width_multiplier: scales every filter count (1.0 is the paper).
        repeats: (A, B, C) block counts; None: the paper's 4, 7, 3 (released weights need them).
        bn_momentum: BatchNorm moving-average decay (0.9997 released; 0.9 for a few hundred steps).
        image_shape: (height, width, 3); sides None or at least 75.
        data_format: None or "channels_last".
        dtype: the dtype policy of every layer.
    """

    network = "inception_v4"


class _ResidualBackbone(InceptionBackbone):
    """The Inception-ResNets' extra argument: the residual scales of the A, B and C blocks."""

    def __init__(
        self, width_multiplier=1.0, repeats=None, residual_scales=None, options=None, **kwargs
    ):
        scales = None if residual_scales is None else tuple(residual_scales)
        super().__init__(
            width_multiplier,
            repeats,
            options={"residual_scales": scales, **(options or {})},
            **kwargs,
        )
        self.residual_scales = scales

    def get_config(self):
        return {**super().get_config(), "residual_scales": self.residual_scales}


@keras.saving.register_keras_serializable(package="inception_hub")
class InceptionResNetV1Backbone(_ResidualBackbone):
    """Inception-ResNet-v1 (Figure 15 with the Figure 14 stem) without its classifier.

    Args: as InceptionV4Backbone (repeats default 5, 10, 5), plus
        residual_scales: (A, B, C) scales of the residuals; None: 0.17, 0.10, 0.20.
    """

    network = "inception_resnet_v1"


@keras.saving.register_keras_serializable(package="inception_hub")
class InceptionResNetV2Backbone(_ResidualBackbone):
    """Inception-ResNet-v2 without its classifier: the released network (``variant="release"``,
    the published weights' and keras.applications') or Figure 15 as drawn (``"paper"``).

    Args: as InceptionResNetV1Backbone (repeats: None is the variant's own, 10, 20, 9 released,
        whose last linear C block is always added), plus
        variant: "release" or "paper".
    """

    network = "inception_resnet_v2"

    def __init__(
        self, width_multiplier=1.0, repeats=None, residual_scales=None, variant="release", **kwargs
    ):
        super().__init__(
            width_multiplier, repeats, residual_scales, options={"variant": variant}, **kwargs
        )
        self.variant = variant

    def get_config(self):
        return {**super().get_config(), "variant": self.variant}
