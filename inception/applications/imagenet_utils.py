"""keras.applications' ``preprocess_input`` and ``decode_predictions`` for the paper's networks.

``preprocess_input`` is the Inception scaling (keras' "tf" mode): pixels in [0, 255] to [-1, 1],
the same for every data format. ``decode_predictions`` reads the class index shipped next to this
file (Keras' synset ids and short names, in Keras' order), so it works offline, for 1000-class
outputs and for the released checkpoints' 1001 (a "background" class 0 first, dropped).
"""

from __future__ import annotations

import functools
import os
from typing import Any, TypeAlias, overload

import keras
import numpy as np

CLASS_INDEX_FILE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "imagenet_class_index.tsv"
)
DATA_FORMATS = ("channels_first", "channels_last")
NUM_CLASSES = 1000
WITH_BACKGROUND = NUM_CLASSES + 1
# A tensor of Keras' backend (TensorFlow, JAX, ...), or anything keras.ops converts to one.
Tensor: TypeAlias = Any


@overload
def preprocess_input(x: np.ndarray, data_format: str | None = None) -> np.ndarray: ...
@overload
def preprocess_input(x: Tensor, data_format: str | None = None) -> Tensor: ...


def preprocess_input(
    x: np.ndarray | Tensor,
    data_format: str | None = None,
) -> np.ndarray | Tensor:
    """Scales a batch of RGB images with values in [0, 255] to [-1, 1]: ``x / 127.5 - 1``.

    Args:
        x: a NumPy array or a tensor of any shape (floats, or integers that are converted to
            ``keras.config.floatx()``). Unlike Keras, a float NumPy input is not changed in place.
        data_format: None (``keras.config.image_data_format()``), "channels_first" or
            "channels_last"; checked only, since the scaling is the same for every channel.

    Returns:
        The scaled array or tensor, of the float dtype.
    """
    if data_format is not None and data_format not in DATA_FORMATS:
        raise ValueError(
            "Expected data_format to be one of `channels_first` or `channels_last`. "
            f"Received: data_format={data_format}"
        )
    if isinstance(x, np.ndarray):
        x = x.astype(keras.config.floatx()) if not np.issubdtype(x.dtype, np.floating) else x
        return x / np.asarray(127.5, x.dtype) - np.asarray(1.0, x.dtype)
    x = keras.ops.convert_to_tensor(x)
    if not keras.backend.is_float_dtype(x.dtype):
        x = keras.ops.cast(x, keras.config.floatx())
    return x / 127.5 - 1.0


def decode_predictions(
    preds: np.ndarray | Tensor, top: int = 5
) -> list[list[tuple[str, str, np.floating]]]:
    """The ``top`` classes of each prediction, best first, as keras.applications gives them.

    Args:
        preds: a batch of predictions, shape (samples, 1000), or (samples, 1001) from a model
            with the released checkpoints' background class 0 (which is dropped).
        top: how many classes per sample, 1 to 1000.

    Returns:
        One list per sample of ``(synset id, class name, score)`` tuples, e.g.
        ``("n02504458", "African_elephant", 0.92)``.
    """
    shape = tuple(preds.shape)
    if len(shape) != 2 or shape[1] not in (NUM_CLASSES, WITH_BACKGROUND):
        raise ValueError(
            "`decode_predictions` expects a batch of predictions (i.e. a 2D array of shape "
            f"(samples, {NUM_CLASSES}), or (samples, {WITH_BACKGROUND}) with the background "
            f"class first). Received array with shape: {shape}"
        )
    if not isinstance(top, (int, np.integer)) or not 1 <= top <= NUM_CLASSES:
        raise ValueError(f"`top` must be an integer from 1 to {NUM_CLASSES}. Received: top={top!r}")
    preds = keras.ops.convert_to_numpy(preds)[:, -NUM_CLASSES:]
    index = class_index()
    results = []
    for pred in preds:
        best = np.argsort(-pred, kind="stable")[:top]
        results.append([index[i] + (pred[i],) for i in best])
    return results


@functools.lru_cache(maxsize=1)
def class_index() -> tuple[tuple[str, str], ...]:
    """((synset id, name), ...) of the 1000 classes in Keras' order, read from the shipped file."""
    entries = []
    with open(CLASS_INDEX_FILE, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            wnid, name = line.rstrip("\n").split("\t")
            entries.append((wnid, name))
    if len(entries) != NUM_CLASSES or len({w for w, _ in entries}) != NUM_CLASSES:
        raise RuntimeError(
            f"{CLASS_INDEX_FILE} must list {NUM_CLASSES} distinct synsets; it lists {len(entries)}"
        )
    return tuple(entries)
