"""Multiply-accumulate counts measured by running the built graph (pure Keras 3).

Each Conv2D and Dense call made during one forward pass is recorded with its real input and
output shapes, so the count follows whatever the model actually executes, nested block layers
included, on any Keras backend.
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

    try:
        for cls, original in originals.items():
            cls.call = wrap(cls, original)
        yield
    finally:
        for cls, original in originals.items():
            cls.call = original


def count_macs(model):
    """Multiply-accumulates of one forward pass for a single image.

    Convolutions: output elements x kernel height x kernel width x input channels / groups.
    Fully connected: inputs x units. BatchNorm, pooling, adds and activations are not counted
    (the paper's figures count only the multiplications of the weight layers).
    """
    shape = (1,) + tuple(model.input.shape[1:])
    if any(d is None for d in shape):
        raise ValueError(f"count_macs needs a fixed input shape, the model takes {model.input.shape}")
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
