"""Images an export needs from the training dataset: calibration images for int8 and the
validation images the report compares every variant on. Both go through the same eval
preprocessing as the serving graph (``inception.data.preprocessing.preprocess_for_eval``)."""

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from inception.config import EVAL_CENTRAL_FRACTION
from inception.data import datasets, preprocessing


def calibration_images(dataset, image_size, count, data_dir=None):
    """The first ``count`` training images, eval-preprocessed: float32 [count, S, S, 3]."""
    pipe = datasets.InputPipeline(dataset, split="train", image_size=image_size,
                                  global_batch_size=int(count), is_training=False,
                                  data_dir=data_dir, drop_remainder=False)
    images, _ = next(iter(pipe.input_fn(None)))
    return images.numpy()


def encoded_eval_images(dataset, limit=None, data_dir=None):
    """(encoded image bytes list, int labels array) of the evaluation split, in split order."""
    info = datasets.describe(dataset, data_dir=data_dir)
    builder = datasets.prepare(dataset, data_dir=data_dir)
    image_key, label_key = builder.info.supervised_keys
    if info.eval_split is None:
        raise ValueError(f"dataset {dataset!r} has no validation/test split to compare on")
    split = info.eval_split
    if limit is not None and int(limit) < info.num_eval:
        split = f"{split}[:{int(limit)}]"
    ds = builder.as_dataset(split=split, shuffle_files=False,
                            decoders={image_key: tfds.decode.SkipDecoding()})
    encoded, labels = [], []
    for example in ds:
        encoded.append(example[image_key].numpy())
        labels.append(int(example[label_key]))
    return encoded, np.array(labels, np.int32)


def preprocess(encoded, image_size, central_fraction=EVAL_CENTRAL_FRACTION):
    """Encoded images -> float32 [N, S, S, 3] with the eval preprocessing."""
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(encoded, tf.string))
    ds = ds.map(lambda b: preprocessing.preprocess_for_eval(b, int(image_size), central_fraction))
    return np.stack([x.numpy() for x in ds]) if encoded else np.zeros((0, image_size, image_size, 3), np.float32)
