"""Images an export needs from the training dataset: calibration images for int8 and the
validation images the report compares every variant on. Both go through the same eval
preprocessing as the serving graph (``inception.data.preprocessing.preprocess_for_eval``)."""

import numpy as np
import tensorflow as tf

from inception.data import pipeline, preprocessing, reader
from inception.data.config import DataConfig
from inception.networks import EVAL_CENTRAL_FRACTION


def calibration_images(dataset, image_size, count, data_dir=None):
    """The first ``count`` training images, eval-preprocessed: float32 [count, S, S, 3]."""
    pipe = pipeline.InputPipeline(
        DataConfig(dataset=dataset, data_dir=data_dir or ""),
        split="train",
        image_size=image_size,
        global_batch_size=int(count),
        is_training=False,
        drop_remainder=False,
    )
    images, _ = next(iter(pipe.input_fn(None)))
    return images.numpy()


def encoded_eval_images(dataset, limit=None, data_dir=None):
    """(encoded image bytes list, int labels array) of the evaluation split's first ``limit``
    images (None: all), in split order."""
    split = reader.open_split(dataset, "eval", data_dir=data_dir, limit=limit)
    encoded, labels = [], []
    for image_bytes, label in split.read():
        encoded.append(image_bytes.numpy())
        labels.append(int(label))
    return encoded, np.array(labels, np.int32)


def preprocess(encoded, image_size, central_fraction=EVAL_CENTRAL_FRACTION):
    """Encoded images -> float32 [N, S, S, 3] with the eval preprocessing."""
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(encoded, tf.string))
    ds = ds.map(lambda b: preprocessing.preprocess_for_eval(b, int(image_size), central_fraction))
    return (
        np.stack([x.numpy() for x in ds])
        if encoded
        else np.zeros((0, image_size, image_size, 3), np.float32)
    )
