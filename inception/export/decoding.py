"""Guarded decoding for the serving graph: bad bytes become InvalidArgument errors, never a crash.

Before anything is decoded each string is checked: not empty, a JPEG or PNG signature, a readable
header, and width x height at most ``max_pixels`` (read from the JPEG SOF marker with
``tf.image.extract_jpeg_shape``, or from the PNG IHDR chunk), so a tiny file that claims a huge
image is refused before the decoder allocates for it. Then the eval preprocessing of the input
pipeline (``inception.data.preprocessing.preprocess_for_eval``) runs, as in training's evaluation.
"""

import tensorflow as tf

from inception.config import EVAL_CENTRAL_FRACTION, MAX_PIXELS
from inception.data import preprocessing

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_header_shape(image_bytes):
    """[height, width] from a PNG's IHDR chunk (big-endian width then height at bytes 16..24)."""
    raw = tf.io.decode_raw(tf.strings.substr(image_bytes, 16, 8), tf.uint8)
    raw = tf.cast(raw, tf.int64)
    weights = tf.constant([1 << 24, 1 << 16, 1 << 8, 1], tf.int64)
    width = tf.reduce_sum(raw[:4] * weights)
    height = tf.reduce_sum(raw[4:] * weights)
    return tf.stack([height, width])


def header_shape(image_bytes):
    """Checks one encoded image and returns its [height, width] (int64) read from the header.

    Raises (at run time) InvalidArgumentError when the string is empty, is neither JPEG nor PNG,
    or has a truncated header.
    """
    image_bytes = tf.convert_to_tensor(image_bytes, tf.string)
    length = tf.strings.length(image_bytes)
    not_empty = tf.debugging.Assert(
        length > 0, ["image_bytes: empty string; expected an encoded JPEG or PNG image"])
    with tf.control_dependencies([not_empty]):
        is_jpeg = tf.io.is_jpeg(image_bytes)
        is_png = tf.equal(tf.strings.substr(image_bytes, 0, 8), PNG_SIGNATURE)
    known = tf.debugging.Assert(
        tf.logical_or(is_jpeg, is_png),
        ["image_bytes: not a JPEG or PNG image (unrecognised file signature); first bytes:",
         tf.strings.substr(image_bytes, 0, tf.minimum(length, 8))])
    with tf.control_dependencies([known]):
        def jpeg():
            return tf.cast(tf.image.extract_jpeg_shape(image_bytes)[:2], tf.int64)

        def png():
            complete = tf.debugging.Assert(
                tf.logical_and(length >= 24,
                               tf.equal(tf.strings.substr(image_bytes, 12, 4), b"IHDR")),
                ["image_bytes: PNG header is truncated or has no IHDR chunk"])
            with tf.control_dependencies([complete]):
                return _png_header_shape(image_bytes)

        shape = tf.cond(is_jpeg, jpeg, png)
    return shape


def check_size(shape, max_pixels):
    """Assert op: height, width >= 1 and height * width <= max_pixels."""
    height, width = shape[0], shape[1]
    pixels = height * width
    return tf.debugging.Assert(
        tf.logical_and(tf.logical_and(height > 0, width > 0), pixels <= int(max_pixels)),
        ["image_bytes: image too large or empty: header says height x width =", height, width,
         "pixels =", pixels, "; the limit is", tf.constant(int(max_pixels), tf.int64),
         "pixels (refused before decoding)"],
        summarize=8)


def decode_for_eval(image_bytes, image_size, max_pixels=MAX_PIXELS,
                    central_fraction=EVAL_CENTRAL_FRACTION):
    """One encoded image (scalar string) -> float32 [S, S, 3] in [-1, 1], after the checks."""
    image_bytes = tf.convert_to_tensor(image_bytes, tf.string)
    shape = header_shape(image_bytes)
    with tf.control_dependencies([check_size(shape, max_pixels)]):
        image_bytes = tf.identity(image_bytes)
    return preprocessing.preprocess_for_eval(image_bytes, image_size, central_fraction)


def decode_batch_for_eval(image_bytes, image_size, max_pixels=MAX_PIXELS,
                          central_fraction=EVAL_CENTRAL_FRACTION):
    """[N] strings -> float32 [N, S, S, 3]."""
    image_size = int(image_size)
    return tf.map_fn(
        lambda b: decode_for_eval(b, image_size, max_pixels, central_fraction),
        image_bytes,
        fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32))
