"""Multiply-accumulate counts measured by running the built graph (pure Keras 3).

Each Conv2D and Dense call made during one forward pass (and each ConvBN convolution, which runs
folded with its BatchNorm in inference) is recorded with its real input and output shapes, so the
count follows whatever the model actually executes, nested block layers included, on any Keras
backend.
"""

import contextlib
import math

import keras
import numpy as np


@contextlib.contextmanager
def _recording(records):
    originals = {cls: cls.call for cls in (keras.layers.Conv2D, keras.layers.Dense)}

    def wrap(cls, original):
        def call(self, inputs, *args, **kwargs):
            outputs = original(self, inputs, *args, **kwargs)
            records.append((cls, self, tuple(inputs.shape), tuple(outputs.shape)))
            return outputs

        return call

    # Inference runs ConvBN's convolution with the BatchNorm folded into its kernel
    # (``layers.ConvBN._folded``), not through its Conv2D layer: counted as that Conv2D.
    from inception import layers

    folded = layers.ConvBN._folded

    def folded_call(self, inputs):
        outputs = folded(self, inputs)
        records.append((keras.layers.Conv2D, self.conv, tuple(inputs.shape), tuple(outputs.shape)))
        return outputs

    try:
        for cls, original in originals.items():
            cls.call = wrap(cls, original)
        layers.ConvBN._folded = folded_call
        yield
    finally:
        for cls, original in originals.items():
            cls.call = original
        layers.ConvBN._folded = folded


def count_macs(model):
    """Multiply-accumulates of one forward pass for a single image.

    Convolutions: output elements x kernel height x kernel width x input channels / groups.
    Fully connected: inputs x units. BatchNorm, pooling, adds and activations are not counted
    (the paper's figures count only the multiplications of the weight layers).
    """
    shape = (1,) + tuple(model.input.shape[1:])
    if any(d is None for d in shape):
        raise ValueError(
            f"count_macs needs a fixed input shape, the model takes {model.input.shape}"
        )
    records = []
    with _recording(records):
        model(np.zeros(shape, "float32"), training=False)
    total = 0
    for cls, layer, in_shape, out_shape in records:
        if cls is keras.layers.Conv2D:
            kh, kw = layer.kernel_size
            total += math.prod(out_shape[1:]) * kh * kw * in_shape[-1] // layer.groups
        else:
            total += in_shape[-1] * layer.units
    return total
