"""TF Serving warmup file: ``assets.extra/tf_serving_warmup_requests``.

A TFRecord of ``PredictionLog`` protos (tensorflow-serving-api). TF Serving replays each request
when it loads a version, before the version takes traffic, so the first user request does not pay
for graph initialisation.
"""

import os

import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"


def sample_image(side=64):
    """A small synthetic JPEG (a colour gradient): valid input for any image classifier."""
    ramp = tf.linspace(0.0, 1.0, side)
    red = tf.tile(ramp[None, :], [side, 1])
    green = tf.tile(ramp[:, None], [1, side])
    blue = 1.0 - red
    image = tf.cast(tf.stack([red, green, blue], axis=-1) * 255.0, tf.uint8)
    return tf.io.encode_jpeg(image, quality=90).numpy()


def requests(model_name, images, batch_sizes=(1,)):
    """PredictionLog protos calling ``serving_default`` with ``image_bytes`` batches."""
    logs = []
    for batch in batch_sizes:
        batch_images = [images[i % len(images)] for i in range(batch)]
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=model_name, signature_name="serving_default")
        )
        request.inputs["image_bytes"].CopyFrom(
            tf.make_tensor_proto(batch_images, dtype=tf.string, shape=[batch])
        )
        logs.append(
            prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
        )
    return logs


def write(saved_model_dir, model_name, images=None, batch_sizes=(1, 8)):
    """Writes the warmup file into a SavedModel directory; returns its path."""
    images = list(images) if images else [sample_image()]
    path = os.path.join(saved_model_dir, WARMUP_DIR, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for log in requests(model_name, images, batch_sizes):
            writer.write(log.SerializeToString())
    return path


def read(path):
    """Parses a warmup file back into PredictionLog protos."""
    return [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(path)
    ]
