"""keras-hub image converters: the released evaluation preprocessing (TF-slim's
``preprocess_for_eval``, our ``inception.data.preprocessing.preprocess_decoded_for_eval``).

Raw images (uint8 or float in [0, 255], one [H, W, 3] or a batch) -> central crop keeping
``central_fraction`` of each side (0.875) -> bilinear resize to ``image_size`` without keeping the
aspect ratio (299x299) -> ``x * 2/255 - 1``, i.e. [-1, 1]. Bilinear weights sum to one, so scaling
after the resize equals slim's scaling before it up to float32 rounding.
"""

import keras
import numpy as np
from keras import ops
from keras_hub.layers import ImageConverter

from inception.hub.backbone import (
    InceptionResNetV1Backbone,
    InceptionResNetV2Backbone,
    InceptionV4Backbone,
)
from inception.networks import EVAL_CENTRAL_FRACTION

IMAGE_SIZE = (299, 299)
SCALE = 2.0 / 255.0  # [0, 255] -> [0, 2] ...
OFFSET = -1.0  # ... -> [-1, 1]


class InceptionImageConverter(ImageConverter):
    """keras-hub's ImageConverter with the Inception evaluation crop in front of its resize.

    Args (besides ImageConverter's, whose defaults here are the released evaluation's):
        central_fraction: the fraction of each side kept, in (0, 1]; 1.0 skips the crop.
    """

    def __init__(
        self,
        image_size=IMAGE_SIZE,
        scale=SCALE,
        offset=OFFSET,
        central_fraction=EVAL_CENTRAL_FRACTION,
        crop_to_aspect_ratio=False,
        interpolation="bilinear",
        antialias=False,
        **kwargs,
    ):
        fraction = float(central_fraction)
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"central_fraction must be in (0, 1]; got {central_fraction!r}")
        super().__init__(
            image_size=image_size,
            scale=scale,
            offset=offset,
            crop_to_aspect_ratio=crop_to_aspect_ratio,
            interpolation=interpolation,
            antialias=antialias,
            **kwargs,
        )
        self.central_fraction = fraction

    def _call_python(self, inputs):
        if isinstance(inputs, (list, tuple)):  # a batch, or images of different sizes
            try:
                inputs = ops.convert_to_tensor(np.array(inputs))
            except ValueError:
                return type(inputs)(self._call_python(x) for x in inputs)
        if isinstance(inputs, dict):
            raise ValueError(
                f"{type(self).__name__} takes images only: the central crop does not "
                "move bounding boxes"
            )
        # Float before the resize: keras' Resizing returns uint8 images rounded to integers, which
        # moves pixels by up to 1/255 from slim's resize of [0, 1] floats.
        images = ops.cast(self._central_crop(ops.convert_to_tensor(inputs)), self.compute_dtype)
        return super()._call_python(images)

    def _central_crop(self, images):
        """The window of ``preprocessing.central_crop_window``, the same float32 arithmetic."""
        if self.central_fraction == 1.0:
            return images
        if len(images.shape) not in (3, 4):
            raise ValueError(
                f"expected an image [H, W, C] or a batch [N, H, W, C]; got shape {images.shape}"
            )
        shape = ops.shape(images)
        windows = []
        for side in (shape[-3], shape[-2]):
            side = ops.cast(side, "float32")
            offset = ops.cast((side - side * self.central_fraction) / 2.0, "int32")
            windows.append((offset, ops.cast(side, "int32") - offset))
        (top, bottom), (left, right) = windows
        return images[..., top:bottom, left:right, :]

    def get_config(self):
        return {**super().get_config(), "central_fraction": self.central_fraction}


@keras.saving.register_keras_serializable(package="inception_hub")
class InceptionV4ImageConverter(InceptionImageConverter):
    backbone_cls = InceptionV4Backbone


@keras.saving.register_keras_serializable(package="inception_hub")
class InceptionResNetV1ImageConverter(InceptionImageConverter):
    backbone_cls = InceptionResNetV1Backbone


@keras.saving.register_keras_serializable(package="inception_hub")
class InceptionResNetV2ImageConverter(InceptionImageConverter):
    backbone_cls = InceptionResNetV2Backbone
