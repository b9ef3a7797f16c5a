"""Inception preprocessing: formats (JPEG, CMYK JPEG, greyscale, PNG), ranges, determinism."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from inception.data import preprocessing as pp


def _photo(height=90, width=120, seed=0):
    """Smooth random image (compresses like a photo, so JPEG round trips stay close)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(height // 10 + 1, width // 10 + 1, 3)).astype(np.uint8)
    big = Image.fromarray(small).resize((width, height), Image.BILINEAR)
    return np.asarray(big)


def _encode(array, fmt, mode="RGB", **kwargs):
    buf = io.BytesIO()
    Image.fromarray(array).convert(mode).save(buf, fmt, **kwargs)
    return buf.getvalue()


@pytest.fixture(scope="module")
def pixels():
    return _photo()


@pytest.fixture(scope="module")
def encoded(pixels):
    return {
        "jpeg": _encode(pixels, "JPEG", quality=95),
        "cmyk_jpeg": _encode(pixels, "JPEG", mode="CMYK", quality=95),
        "grey_jpeg": _encode(pixels, "JPEG", mode="L", quality=95),
        "png": _encode(pixels, "PNG"),
        "rgba_png": _encode(pixels, "PNG", mode="RGBA"),
    }


@pytest.mark.parametrize("kind", ["jpeg", "cmyk_jpeg", "grey_jpeg", "png", "rgba_png"])
@pytest.mark.parametrize("color", ["fast", "full", "none"])
def test_train_output_shape_dtype_range(encoded, kind, color):
    image = pp.preprocess_for_train(encoded[kind], 40, color_distortion=color, seed=[3, 4])
    assert image.shape == (40, 40, 3) and image.dtype == tf.float32
    values = image.numpy()
    assert values.min() >= -1.0 and values.max() <= 1.0
    assert values.std() > 0.05  # an actual image, not a constant


@pytest.mark.parametrize("kind", ["jpeg", "cmyk_jpeg", "png"])
def test_eval_matches_reference_pixels(pixels, encoded, kind):
    """Eval output of every format agrees with the same maths done on the known pixels."""
    got = pp.preprocess_for_eval(encoded[kind], 48).numpy()
    expected = pp.preprocess_decoded_for_eval(pixels, 48).numpy()
    assert got.shape == (48, 48, 3) and got.dtype == np.float32
    tolerance = 1e-6 if kind == "png" else 0.08  # PNG is lossless, JPEG is not
    assert np.abs(got - expected).mean() < tolerance


def test_eval_central_crop_geometry():
    """87.5% central crop: a frame outside the crop must not leak into the output."""
    image = np.zeros((64, 64, 3), np.uint8)
    image[4:60, 4:60] = 255  # the 0.875 crop of 64 is rows/cols 4..59
    out = pp.preprocess_decoded_for_eval(image, 56).numpy()
    np.testing.assert_allclose(out, 1.0, atol=1e-6)
    wider = np.zeros((64, 64, 3), np.uint8)
    wider[5:59, 5:59] = 255  # one black ring inside the crop window shows up
    assert pp.preprocess_decoded_for_eval(wider, 56).numpy().min() < 0.0


def test_fused_crop_decode_equals_decode_then_crop(encoded):
    full = tf.io.decode_jpeg(encoded["jpeg"], channels=3).numpy()
    crop = pp.decode_and_crop(tf.constant(encoded["jpeg"]), 13, 21, 50, 60).numpy()
    assert crop.shape == (50, 60, 3)
    difference = np.abs(crop.astype(int) - full[13:63, 21:81].astype(int))
    assert difference.mean() < 1.0  # chroma upsampling at the window edge may differ slightly
    png_crop = pp.decode_and_crop(tf.constant(encoded["png"]), 13, 21, 50, 60).numpy()
    np.testing.assert_array_equal(
        png_crop, np.asarray(Image.open(io.BytesIO(encoded["png"])).convert("RGB"))[13:63, 21:81]
    )


def test_cmyk_jpeg_decodes_to_the_right_rgb():
    solid = np.zeros((40, 56, 3), np.uint8)
    solid[...] = (200, 40, 90)
    out = pp.preprocess_for_eval(_encode(solid, "JPEG", mode="CMYK", quality=95), 16).numpy()
    np.testing.assert_allclose(
        out.reshape(-1, 3).mean(0), np.array([200, 40, 90]) / 127.5 - 1, atol=0.03
    )


def test_train_is_reproducible_per_seed_and_varies_across_seeds(encoded):
    a = pp.preprocess_for_train(encoded["jpeg"], 32, seed=[1, 2]).numpy()
    b = pp.preprocess_for_train(encoded["jpeg"], 32, seed=[1, 2]).numpy()
    np.testing.assert_array_equal(a, b)
    others = [
        pp.preprocess_for_train(encoded["jpeg"], 32, seed=[1, k]).numpy() for k in range(3, 7)
    ]
    assert all(np.abs(a - o).max() > 0.05 for o in others)


def test_crop_window_respects_area_and_aspect_ranges():
    areas = []
    for k in range(60):
        oh, ow, h, w = (
            int(v)
            for v in pp.sample_crop_window(
                tf.constant([300, 400]), tf.constant([7, k], tf.int64), area_range=(0.5, 1.0)
            )
        )
        assert oh >= 0 and oh + h <= 300 and ow >= 0 and ow + w <= 400
        areas.append(h * w / (300 * 400))
        if (h, w) != (300, 400):  # the fallback is the whole image
            assert 0.75 * 0.95 <= w / h <= 1.33 * 1.05
    assert min(areas) >= 0.49 and len(set(areas)) > 10


def test_flip_is_configurable():
    """A left/right asymmetric image stays unflipped for every seed when flip=False."""
    image = np.zeros((64, 64, 3), np.uint8)
    image[:, :32] = 255
    data = _encode(image, "PNG")
    kwargs = dict(area_range=(1.0, 1.0), aspect_ratio_range=(1.0, 1.0), color_distortion="none")
    lefts = {
        float(
            pp.preprocess_for_train(data, 16, flip=False, seed=[0, k], **kwargs)
            .numpy()[:, :4]
            .mean()
        )
        for k in range(12)
    }
    assert lefts == {1.0}
    flipped = {
        float(
            pp.preprocess_for_train(data, 16, flip=True, seed=[0, k], **kwargs)
            .numpy()[:, :4]
            .mean()
        )
        for k in range(12)
    }
    assert flipped == {1.0, -1.0}


def test_usable_in_a_tf_function_graph(encoded):
    fn = tf.function(
        lambda s: pp.preprocess_for_eval(s, 32), input_signature=[tf.TensorSpec([], tf.string)]
    )
    np.testing.assert_allclose(
        fn(tf.constant(encoded["jpeg"])).numpy(),
        pp.preprocess_for_eval(encoded["jpeg"], 32).numpy(),
    )


def test_undecodable_bytes_raise():
    with pytest.raises(tf.errors.InvalidArgumentError):
        pp.preprocess_for_eval(b"not an image", 32)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(area_range=(0.0, 1.0)),
        dict(area_range=(0.8, 0.5)),
        dict(color_distortion="strong"),
        dict(aspect_ratio_range=(2.0, 1.0)),
        dict(max_attempts=0),
        dict(min_object_covered=1.5),
    ],
)
def test_bad_arguments_are_rejected(encoded, kwargs):
    with pytest.raises(ValueError):
        pp.preprocess_for_train(encoded["jpeg"], 32, **kwargs)


def test_bad_central_fraction_is_rejected(encoded):
    with pytest.raises(ValueError, match="central_fraction"):
        pp.preprocess_for_eval(encoded["jpeg"], 32, central_fraction=0.0)


def test_jpeg_only_fast_path_matches_the_general_one(encoded):
    for kind in ["jpeg", "cmyk_jpeg"]:
        np.testing.assert_array_equal(
            pp.preprocess_for_train(encoded[kind], 32, seed=[5, 6], jpeg_only=True).numpy(),
            pp.preprocess_for_train(encoded[kind], 32, seed=[5, 6]).numpy(),
        )
        np.testing.assert_array_equal(
            pp.preprocess_for_eval(encoded[kind], 32, jpeg_only=True),
            pp.preprocess_for_eval(encoded[kind], 32),
        )
    with pytest.raises(tf.errors.InvalidArgumentError):
        pp.preprocess_for_eval(encoded["png"], 32, jpeg_only=True)


def test_png_train_path_matches_a_near_lossless_jpeg_of_the_same_pixels(pixels, encoded):
    reference = _encode(pixels, "JPEG", quality=100, subsampling=0)
    for k in range(3):
        kwargs = dict(seed=[9, k], color_distortion="none")
        from_png = pp.preprocess_for_train(encoded["png"], 40, **kwargs).numpy()
        from_jpeg = pp.preprocess_for_train(reference, 40, **kwargs).numpy()
        assert np.abs(from_png - from_jpeg).mean() < 0.02
