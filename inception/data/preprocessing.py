"""Inception image preprocessing in TensorFlow (docs/paper.md, "Preprocessing (released)").

Train: an Inception random crop (``sample_distorted_bounding_box`` over the whole image) fused with
JPEG decoding (only the crop window is decoded from the raw bytes), bilinear resize, optional random
left-right flip, colour distortion ('fast', 'full' or 'none'), scale to [-1, 1].

Eval: central crop keeping ``central_fraction`` of each side, bilinear resize, scale to [-1, 1].

Every function takes and returns tensors and is safe inside ``tf.data`` map functions and
``tf.function``/SavedModel graphs. All random operations are the stateless kind driven by one
``seed`` of shape [2], so a pipeline that hands each element its own seed is reproducible.
JPEG (including CMYK and greyscale JPEG) goes through the fused crop-and-decode path. Any other
format TensorFlow can decode (PNG, GIF's first frame, BMP) is, for training, re-encoded as a
near-lossless JPEG first (keeps one fast code path; see ``_crop``) and, for eval, decoded in full
and cropped exactly.
"""

import tensorflow as tf

from inception.networks import EVAL_CENTRAL_FRACTION

# Paper / released-code defaults for the random crop.
MIN_OBJECT_COVERED = 0.1
ASPECT_RATIO_RANGE = (0.75, 1.33)
AREA_RANGE = (0.05, 1.0)
MAX_ATTEMPTS = 100
# Colour distortion strengths of the released code.
BRIGHTNESS_MAX_DELTA = 32.0 / 255.0
SATURATION_RANGE = (0.5, 1.5)
HUE_MAX_DELTA = 0.2
CONTRAST_RANGE = (0.5, 1.5)
COLOR_DISTORTIONS = ("fast", "full", "none")


def _check_range(name, value, low, high):
    lo, hi = value
    if not (low <= lo <= hi <= high):
        raise ValueError(f"{name} must satisfy {low} <= min <= max <= {high}; got {value!r}")


def check_train_args(
    image_size, min_object_covered, aspect_ratio_range, area_range, max_attempts, color_distortion
):
    """ValueError naming the argument when ``preprocess_for_train``'s arguments are out of range
    (callers check before building a tf.data pipeline, where the error would surface late)."""
    if int(image_size) < 1:
        raise ValueError(f"image_size must be a positive integer; got {image_size!r}")
    if not 0.0 <= float(min_object_covered) <= 1.0:
        raise ValueError(f"min_object_covered must be in [0, 1]; got {min_object_covered!r}")
    _check_range("aspect_ratio_range", aspect_ratio_range, 1e-3, 1e3)
    _check_range("area_range", area_range, 1e-4, 1.0)
    if int(max_attempts) < 1:
        raise ValueError(f"max_attempts must be >= 1; got {max_attempts!r}")
    if color_distortion not in COLOR_DISTORTIONS:
        raise ValueError(
            f"color_distortion must be one of {COLOR_DISTORTIONS}; got {color_distortion!r}"
        )


def _decode_full(image_bytes):
    image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
    return tf.ensure_shape(image, [None, None, 3])


def _crop_jpeg(image_bytes, window_fn):
    """JPEG only, no branching: header -> window -> decode just that window (uint8 RGB)."""
    shape = tf.image.extract_jpeg_shape(image_bytes, output_type=tf.int32)[:2]
    window = tf.stack(window_fn(shape))
    return tf.image.decode_and_crop_jpeg(image_bytes, window, channels=3)


def _crop_any(image_bytes, window_fn):
    """Any format decode_image knows: full decode, then slice the window."""
    image = _decode_full(image_bytes)
    offset_h, offset_w, height, width = window_fn(tf.shape(image)[:2])
    return tf.image.crop_to_bounding_box(image, offset_h, offset_w, height, width)


def _as_jpeg(image_bytes):
    """JPEG bytes unchanged; any other format re-encoded as a JPEG at quality 100 without chroma
    subsampling (near lossless; TFDS does the same to ImageNet's one PNG)."""

    def reencode():
        return tf.io.encode_jpeg(_decode_full(image_bytes), quality=100, chroma_downsampling=False)

    return tf.cond(tf.io.is_jpeg(image_bytes), lambda: tf.identity(image_bytes), reencode)


def _crop(image_bytes, window_fn, jpeg_only, exact=False):
    """Decoded window of an encoded image (uint8 RGB).

    JPEG (also CMYK and greyscale) takes the fused crop-and-decode path. Other formats:
    ``exact``: decoded in full and sliced inside a graph branch (bit exact; the branch, which
    carries the decoded image, costs ~10% of the JPEG throughput); otherwise re-encoded as JPEG
    first, so only a string goes through the branch and every record shares the fused path.
    ``jpeg_only`` drops the format test altogether: non-JPEG input then raises.
    """
    image_bytes = tf.convert_to_tensor(image_bytes, tf.string)
    if jpeg_only:
        image = _crop_jpeg(image_bytes, window_fn)
    elif exact:
        image = tf.cond(
            tf.io.is_jpeg(image_bytes),
            lambda: _crop_jpeg(image_bytes, window_fn),
            lambda: _crop_any(image_bytes, window_fn),
        )
    else:
        image = _crop_jpeg(_as_jpeg(image_bytes), window_fn)
    return tf.ensure_shape(image, [None, None, 3])


def decode_and_crop(image_bytes, offset_height, offset_width, crop_height, crop_width):
    """Decodes only the window [offset, offset + size) of an encoded image to uint8 RGB."""

    def window_fn(shape):
        del shape
        return offset_height, offset_width, crop_height, crop_width

    return _crop(image_bytes, window_fn, jpeg_only=False, exact=True)


def _to_unit_float(image_uint8):
    return tf.image.convert_image_dtype(image_uint8, tf.float32)


def _resize(image, image_size):
    image = tf.image.resize(image, [image_size, image_size], method="bilinear")
    return tf.ensure_shape(image, [image_size, image_size, 3])


def _scale_to_symmetric(image_unit):
    """[0, 1] -> [-1, 1]."""
    return tf.clip_by_value((image_unit - 0.5) * 2.0, -1.0, 1.0)


def _distort_color(image, mode, seed):
    """Colour distortion of the released code, made stateless.

    'fast': brightness then saturation. 'full': brightness, saturation, hue and contrast in one of
    four orders picked at random per image. Output is clipped back to [0, 1].
    """
    if mode == "none":
        return image
    s_order, s_bright, s_sat, s_hue, s_con = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=5)
    )

    def brightness(x):
        return tf.image.stateless_random_brightness(x, BRIGHTNESS_MAX_DELTA, seed=s_bright)

    def saturation(x):
        return tf.image.stateless_random_saturation(x, *SATURATION_RANGE, seed=s_sat)

    def hue(x):
        return tf.image.stateless_random_hue(x, HUE_MAX_DELTA, seed=s_hue)

    def contrast(x):
        return tf.image.stateless_random_contrast(x, *CONTRAST_RANGE, seed=s_con)

    if mode == "fast":
        image = saturation(brightness(image))
    else:
        orders = (
            (brightness, saturation, hue, contrast),
            (saturation, brightness, contrast, hue),
            (contrast, hue, brightness, saturation),
            (hue, saturation, contrast, brightness),
        )

        def apply(ops):
            def fn():
                x = image
                for op in ops:
                    x = op(x)
                return x

            return fn

        choice = tf.random.stateless_uniform([], s_order, 0, len(orders), dtype=tf.int32)
        image = tf.switch_case(choice, [apply(ops) for ops in orders])
    return tf.clip_by_value(image, 0.0, 1.0)


def sample_crop_window(
    image_shape,
    seed,
    *,
    min_object_covered=MIN_OBJECT_COVERED,
    aspect_ratio_range=ASPECT_RATIO_RANGE,
    area_range=AREA_RANGE,
    max_attempts=MAX_ATTEMPTS,
):
    """Inception random crop window (offset_h, offset_w, height, width) for an image [h, w].

    The whole image is the only "object" box; when no window satisfying the constraints is found
    within ``max_attempts`` the whole image is returned (TensorFlow's behaviour).
    """
    whole_image = tf.constant([[[0.0, 0.0, 1.0, 1.0]]], tf.float32)
    shape3 = tf.concat([tf.cast(image_shape, tf.int32), [3]], axis=0)
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape3,
        bounding_boxes=whole_image,
        seed=seed,
        min_object_covered=min_object_covered,
        aspect_ratio_range=list(aspect_ratio_range),
        area_range=list(area_range),
        max_attempts=int(max_attempts),
        use_image_if_no_bounding_boxes=True,
    )
    return begin[0], begin[1], size[0], size[1]


def preprocess_for_train(
    image_bytes,
    image_size,
    *,
    min_object_covered=MIN_OBJECT_COVERED,
    aspect_ratio_range=ASPECT_RATIO_RANGE,
    area_range=AREA_RANGE,
    max_attempts=MAX_ATTEMPTS,
    color_distortion="fast",
    flip=True,
    seed=None,
    jpeg_only=False,
):
    """Encoded image (scalar tf.string, JPEG/PNG/...) -> float32 [S, S, 3] in [-1, 1].

    Args:
      image_bytes: scalar string tensor holding the encoded image.
      image_size: output side S.
      min_object_covered, aspect_ratio_range, area_range, max_attempts: random-crop parameters
        (paper defaults; small-image datasets may want a milder ``area_range``).
      color_distortion: 'fast' (brightness, saturation), 'full' (plus hue and contrast in random
        order) or 'none'.
      flip: random left-right flip (off for data where mirroring changes the class, e.g. digits).
      seed: stateless seed, int tensor of shape [2]. None draws one at random per call.
      jpeg_only: skip the format test; non-JPEG input then raises.
    """
    check_train_args(
        image_size,
        min_object_covered,
        aspect_ratio_range,
        area_range,
        max_attempts,
        color_distortion,
    )
    image_size = int(image_size)
    if seed is None:
        seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
    seed = tf.cast(seed, tf.int64)
    s_crop, s_flip, s_color = tf.unstack(tf.random.experimental.stateless_split(seed, num=3))

    def window_fn(shape):
        return sample_crop_window(
            shape,
            s_crop,
            min_object_covered=min_object_covered,
            aspect_ratio_range=aspect_ratio_range,
            area_range=area_range,
            max_attempts=max_attempts,
        )

    image = _crop(image_bytes, window_fn, jpeg_only)
    if flip:  # on the uint8 crop: cheaper than after the resize, and the two commute exactly
        image = tf.image.stateless_random_flip_left_right(image, seed=s_flip)
    image = _resize(_to_unit_float(image), image_size)
    image = _distort_color(image, color_distortion, s_color)
    return _scale_to_symmetric(image)


def check_fraction(central_fraction):
    """``central_fraction`` as a float in (0, 1]; ValueError otherwise."""
    fraction = float(central_fraction)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"central_fraction must be in (0, 1]; got {central_fraction!r}")
    return fraction


def central_crop_window(image_shape, central_fraction=EVAL_CENTRAL_FRACTION):
    """(offset_h, offset_w, height, width) of the centred window keeping a fraction of each side."""
    fraction = check_fraction(central_fraction)
    shape = tf.cast(image_shape, tf.float32)
    offset = tf.cast((shape - shape * fraction) / 2.0, tf.int32)
    size = tf.cast(image_shape, tf.int32) - 2 * offset
    return offset[0], offset[1], size[0], size[1]


def preprocess_for_eval(
    image_bytes, image_size, central_fraction=EVAL_CENTRAL_FRACTION, jpeg_only=False
):
    """Encoded image (scalar tf.string) -> float32 [S, S, 3] in [-1, 1], deterministic.

    ``jpeg_only``: as in ``preprocess_for_train``.
    """
    check_fraction(central_fraction)

    def window_fn(shape):
        return central_crop_window(shape, central_fraction)

    image = _crop(image_bytes, window_fn, jpeg_only, exact=True)
    return _scale_to_symmetric(_resize(_to_unit_float(image), int(image_size)))


def preprocess_decoded_for_eval(image_uint8, image_size, central_fraction=EVAL_CENTRAL_FRACTION):
    """Decoded uint8 image [H, W, 3] -> float32 [S, S, 3] in [-1, 1]; same maths as the above."""
    image = tf.convert_to_tensor(image_uint8)
    if image.dtype != tf.uint8:
        raise ValueError(f"preprocess_decoded_for_eval expects uint8 pixels; got {image.dtype}")
    if image.shape.rank is not None and image.shape.rank != 3:
        raise ValueError(f"expected an image of shape [H, W, 3]; got shape {image.shape}")
    image = tf.ensure_shape(image, [None, None, 3])
    offset_h, offset_w, height, width = central_crop_window(tf.shape(image)[:2], central_fraction)
    image = tf.image.crop_to_bounding_box(image, offset_h, offset_w, height, width)
    return _scale_to_symmetric(_resize(_to_unit_float(image), int(image_size)))
