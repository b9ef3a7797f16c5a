"""Guarded decoding for the serving graph: bad bytes become InvalidArgument errors, never a crash.

Before anything is decoded each string is checked: not empty, a JPEG or PNG signature, a readable
header, and width x height at most ``max_pixels`` (read from the JPEG SOF marker with
``tf.image.extract_jpeg_shape``, or from the PNG IHDR chunk), so a tiny file that claims a huge
image is refused before the decoder allocates for it. Then the eval preprocessing of the input
pipeline (``inception.data.preprocessing.preprocess_for_eval``) runs, as in training's evaluation.

Error messages are printable ASCII whatever the bytes sent. The request's bytes appear only as
hex (``hex_bytes``: ``first bytes (hex): 89 50 4e 47 ...``), built inside the graph, never raw:
TensorFlow copies an assertion's string data into the error message as it is (escaping only
control characters and quotes), so raw bytes made a message that was not UTF-8, which
TensorFlow's Python layer could not turn into an exception (it raised ``UnicodeDecodeError``)
and that a gRPC status or a REST JSON body cannot carry either. Each message is one string that
names the input (``image_bytes[i]``, the index in the batch, inside ``decode_batch_for_eval``).
The decoders' own errors do not name the image but are plain ASCII too (``Invalid PNG data,
size 60``, ``Invalid PNG. Failed to initialize decoder.``, ``Invalid JPEG data, size 100``,
``jpeg::Uncompress failed. Invalid JPEG data or crop window.``: all that 5,000 fuzzed inputs
met, benchmarks/fuzz_serving.py). Nothing here slices a string at an offset it may not have:
``tf.strings.substr`` past the end fails with the raw string in its message.

An empty batch is refused with an InvalidArgumentError (``image_bytes: expected a batch of
encoded JPEG or PNG images, shape [N] with N >= 1; got shape [0] (an empty batch)``; the same
for ``predict_images``, ``check_shape``) rather than answered with empty outputs: the network
cannot run on zero images (oneDNN's convolution refuses a batch of 0 with a misleading error),
answering would take a branch around the whole network in every request's graph, and a request
without images is a client's mistake, better named.
"""

import tensorflow as tf

from inception.data import preprocessing
from inception.export.config import MAX_PIXELS
from inception.networks import EVAL_CENTRAL_FRACTION

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Bytes of the request shown (as hex) in a message: a PNG's signature, IHDR length, type, width
# and height, or a JPEG's SOI and the start of its first segment.
HEX_BYTES_SHOWN = 24
_HEADER_BYTES = 24  # PNG: signature (8), IHDR length (4) and type (4), width (4), height (4)
_HEX_TABLE = [f"{i:02x}" for i in range(256)]


def hex_bytes(data, count=HEX_BYTES_SHOWN):
    """A scalar string's first ``count`` bytes as two-digit hex separated by spaces, with ``...``
    when there are more: printable ASCII whatever the bytes. A graph op (string tensor)."""
    data = tf.convert_to_tensor(data, tf.string)
    length = tf.strings.length(data)
    head = tf.strings.substr(data, 0, tf.minimum(length, count))
    codes = tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int32)
    text = tf.strings.reduce_join(tf.gather(tf.constant(_HEX_TABLE), codes), separator=" ")
    return tf.strings.join([text, tf.where(length > count, " ...", "")])


def shape_text(shape):
    """An int shape vector as ``[2, 75, 75, 3]`` (string tensor), for messages."""
    return tf.strings.join(
        ["[", tf.strings.reduce_join(tf.strings.as_string(shape), separator=", "), "]"]
    )


def _name(index):
    """``image_bytes`` or ``image_bytes[i]`` (string tensor)."""
    if index is None:
        return tf.constant("image_bytes")
    return tf.strings.join(["image_bytes[", tf.strings.as_string(index), "]"])


def _bytes_seen(image_bytes, length):
    return tf.strings.join(
        ["; ", tf.strings.as_string(length), " bytes, first bytes (hex): ", hex_bytes(image_bytes)]
    )


def _png_header_shape(header):
    """[height, width] from a PNG's IHDR chunk (big-endian width then height at bytes 16..24)."""
    raw = tf.io.decode_raw(tf.strings.substr(header, 16, 8), tf.uint8)
    raw = tf.cast(raw, tf.int64)
    weights = tf.constant([1 << 24, 1 << 16, 1 << 8, 1], tf.int64)
    width = tf.reduce_sum(raw[:4] * weights)
    height = tf.reduce_sum(raw[4:] * weights)
    return tf.stack([height, width])


def header_shape(image_bytes, index=None):
    """Checks one encoded image and returns its [height, width] (int64) read from the header.

    Raises (at run time) InvalidArgumentError when the string is empty, is neither JPEG nor PNG,
    or has a truncated header. ``index``: the image's position in its batch, for the messages.
    """
    image_bytes = tf.convert_to_tensor(image_bytes, tf.string)
    name = _name(index)
    length = tf.strings.length(image_bytes)
    not_empty = tf.debugging.Assert(
        length > 0,
        [tf.strings.join([name, ": empty string; expected an encoded JPEG or PNG image"])],
    )
    # The first bytes, padded with zeros: every offset of the header can be read whatever the
    # length (a substr past the end would fail, and with the raw bytes in its message).
    header = tf.strings.join(
        [
            tf.strings.substr(image_bytes, 0, tf.minimum(length, _HEADER_BYTES)),
            b"\0" * _HEADER_BYTES,
        ]
    )
    with tf.control_dependencies([not_empty]):
        is_jpeg = tf.io.is_jpeg(image_bytes)
        is_png = tf.equal(tf.strings.substr(header, 0, 8), PNG_SIGNATURE)
    known = tf.debugging.Assert(
        tf.logical_or(is_jpeg, is_png),
        [
            tf.strings.join(
                [
                    name,
                    ": not a JPEG or PNG image (unrecognised file signature)",
                    _bytes_seen(image_bytes, length),
                ]
            )
        ],
    )
    with tf.control_dependencies([known]):

        def jpeg():
            return tf.cast(tf.image.extract_jpeg_shape(image_bytes)[:2], tf.int64)

        def png():
            complete = tf.debugging.Assert(
                tf.logical_and(
                    length >= _HEADER_BYTES, tf.equal(tf.strings.substr(header, 12, 4), b"IHDR")
                ),
                [
                    tf.strings.join(
                        [
                            name,
                            ": PNG header is truncated or has no IHDR chunk",
                            _bytes_seen(image_bytes, length),
                        ]
                    )
                ],
            )
            with tf.control_dependencies([complete]):
                return _png_header_shape(header)

        shape = tf.cond(is_jpeg, jpeg, png)
    return shape


def check_size(shape, max_pixels, index=None):
    """Assert op: height, width >= 1 and height * width <= max_pixels.

    Compared without forming the product (``height <= max_pixels // width``): a PNG declares each
    side in 32 bits, and 2^32 x 2^32 overflows int64 to a small number. The message shows the
    product as uint64, which holds it.
    """
    height, width = shape[0], shape[1]
    max_pixels = int(max_pixels)
    fits = tf.logical_and(
        tf.logical_and(height > 0, width > 0), height <= max_pixels // tf.maximum(width, 1)
    )
    pixels = tf.cast(height, tf.uint64) * tf.cast(width, tf.uint64)
    return tf.debugging.Assert(
        fits,
        [
            tf.strings.join(
                [
                    _name(index),
                    ": image too large or empty: its header declares height x width = ",
                    tf.strings.as_string(height),
                    " x ",
                    tf.strings.as_string(width),
                    " = ",
                    tf.strings.as_string(pixels),
                    " pixels; the limit is ",
                    str(max_pixels),
                    " pixels (refused before decoding)",
                ]
            )
        ],
    )


def decode_for_eval(
    image_bytes,
    image_size,
    max_pixels=MAX_PIXELS,
    central_fraction=EVAL_CENTRAL_FRACTION,
    index=None,
):
    """One encoded image (scalar string) -> float32 [S, S, 3] in [-1, 1], after the checks.

    ``index``: the image's position in its batch, named in the messages (``image_bytes[i]``).
    """
    image_bytes = tf.convert_to_tensor(image_bytes, tf.string)
    shape = header_shape(image_bytes, index)
    with tf.control_dependencies([check_size(shape, max_pixels, index)]):
        image_bytes = tf.identity(image_bytes)
    return preprocessing.preprocess_for_eval(image_bytes, image_size, central_fraction)


def check_shape(tensor, name, expected, what):
    """Assert op: ``tensor`` has exactly ``len(expected)`` dimensions, each of the expected size
    (None: any size >= 1; a batch of 0 is refused).

    A signature declares its input's shape, but TensorFlow's C++ session (TF Serving) does not
    check a fed tensor against it, and the network answers some wrong sizes (its global pooling
    takes any side), fails on others with a misleading error or an AbortedError from oneDNN.
    The comparison uses the run-time ``tf.shape`` padded with -1 (no ``tf.rank``: Grappler would
    fold it to the declared rank). Message: ``NAME: expected WHAT, shape [N, 75, 75, 3] with
    N >= 1; got shape [1, 10, 10, 3]``.
    """
    rank = len(expected)
    shape = tf.shape(tensor, out_type=tf.int64)
    dims = tf.concat([shape, tf.fill([rank + 1], tf.constant(-1, tf.int64))], 0)
    conditions = [dims[rank] < 0]  # nothing beyond the expected dimensions
    for i, size in enumerate(expected):
        conditions.append(dims[i] >= 1 if size is None else tf.equal(dims[i], int(size)))
    declared = ", ".join("N" if size is None else str(int(size)) for size in expected)
    if None in expected:
        declared += "] with N >= 1"
    else:
        declared += "]"
    return tf.debugging.Assert(
        tf.reduce_all(tf.stack(conditions)),
        [
            tf.strings.join(
                [
                    f"{name}: expected {what}, shape [{declared}; got shape ",
                    shape_text(shape),
                    tf.where(tf.equal(tf.size(tensor), 0), " (an empty batch)", ""),
                ]
            )
        ],
    )


def decode_batch_for_eval(
    image_bytes, image_size, max_pixels=MAX_PIXELS, central_fraction=EVAL_CENTRAL_FRACTION
):
    """[N] strings (N >= 1) -> float32 [N, S, S, 3]; an empty batch is an InvalidArgumentError
    (module docstring)."""
    image_size = int(image_size)
    image_bytes = tf.convert_to_tensor(image_bytes, tf.string)
    checked = check_shape(
        image_bytes, "image_bytes", [None], "a batch of encoded JPEG or PNG images"
    )
    with tf.control_dependencies([checked]):
        image_bytes = tf.identity(image_bytes)
    indices = tf.range(tf.size(image_bytes, out_type=tf.int32))
    return tf.map_fn(
        lambda item: decode_for_eval(
            item[1], image_size, max_pixels, central_fraction, index=item[0]
        ),
        (indices, image_bytes),
        fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32),
    )
