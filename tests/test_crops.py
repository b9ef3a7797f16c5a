"""Crop geometry of the evaluation protocols (inception/evaluation/crops.py).

The expected boxes are derived here from the sources' own description, in their own frame:
resize the shorter side to s (256 for 10/12 crops; 256, 288, 320, 352 for 144), take the
left/centre/right square (top/centre/bottom for portrait images), cut 224x224 corners and centre
(and the whole square), mirror; then map back to the original image by m / s. Image sizes are
chosen so every box is a whole number of pixels in both frames.
"""

import collections
from fractions import Fraction

import numpy as np
import pytest
import tensorflow as tf

from inception.data import preprocessing
from inception.evaluation import crops

M = 7920  # shorter side: m * 224 / s and the offsets are integers for all four scales
LONG = 11880  # 1.5 * M


def _source_boxes(height, width, scales, squares, whole_square):
    """Multiset of (offset_h, offset_w, h, w, mirrored) following GoogLeNet / AlexNet literally."""
    m, portrait = min(height, width), height > width
    boxes = collections.Counter()
    for s in scales:
        f = Fraction(m, s)  # original pixels per resized pixel
        long_resized = Fraction(max(height, width), m) * s
        for where in squares:  # 'first', 'centre', 'last' square of side s
            start = {"first": 0, "centre": (long_resized - s) / 2, "last": long_resized - s}[where]
            cuts = [
                (0, 0, 224),
                (0, s - 224, 224),
                (s - 224, 0, 224),
                (s - 224, s - 224, 224),
                (Fraction(s - 224, 2), Fraction(s - 224, 2), 224),
            ]
            if whole_square:
                cuts.append((0, 0, s))
            for y, x, side in cuts:
                if portrait:
                    y = y + start
                else:
                    x = x + start
                box = tuple(v * f for v in (y, x, side, side))
                assert all(v.denominator == 1 for v in box), box
                for mirror in (False, True):
                    boxes[tuple(int(v) for v in box) + (mirror,)] += 1
    return boxes


def _our_boxes(protocol, height, width):
    return collections.Counter(
        crops.crop_window(s, height, width) + (s.mirror,) for s in crops.protocol_specs(protocol)
    )


@pytest.mark.parametrize("height,width", [(M, LONG), (LONG, M), (M, M)])
def test_protocol_boxes_are_the_sources(height, width):
    assert _our_boxes(10, height, width) == _source_boxes(height, width, [256], ["centre"], False)
    assert _our_boxes(12, height, width) == _source_boxes(height, width, [256], ["centre"], True)
    assert _our_boxes(144, height, width) == _source_boxes(
        height, width, [256, 288, 320, 352], ["first", "centre", "last"], True
    )


def test_counts_mirrors_and_distinct_crops():
    for n in crops.PROTOCOLS:
        specs = crops.protocol_specs(n)
        assert len(specs) == n
        if n > 1:
            # Every crop appears once plain and once mirrored.
            plain = collections.Counter(s for s in specs if not s.mirror)
            assert sum(plain.values()) == n // 2
            assert plain == collections.Counter(s.view for s in specs if s.mirror)
    # 144: the whole square is one window at every scale -> 6 distinct views repeated 4 times.
    crop_set = crops.crop_set([144])
    assert crop_set.num_distinct == 126
    whole = [i for i, s in enumerate(crop_set.specs) if s.scale == 0]
    assert len(whole) == 6
    assert all(crop_set.weights[0][i] == pytest.approx(4 / 144) for i in whole)
    # The nesting 10 < 12 < 144 (the centre square at scale 256) shares crops between protocols.
    assert crops.crop_set([1, 10, 12, 144]).num_distinct == 1 + 126
    assert crops.crop_set([10, 12]).num_distinct == 12
    for crop_set in (crops.crop_set([1, 10, 12, 144]), crops.crop_set([12, 1])):
        assert np.allclose(np.sum(crop_set.weights, axis=1), 1.0)
        for p, row in zip(crop_set.protocols, crop_set.weights):
            assert sum(w > 0 for w in row) == len(set(crops.protocol_specs(p)))
    with pytest.raises(ValueError, match="unknown crop protocol"):
        crops.protocol_specs(7)
    with pytest.raises(ValueError, match="repeat"):
        crops.crop_set([10, 10])


def test_one_crop_window_is_the_eval_preprocessing():
    spec = crops.CropSpec("central")
    for h, w in [
        (64, 64),
        (75, 91),
        (333, 500),
        (500, 375),
        (1, 1),
        (2, 7),
        (299, 299),
        (257, 1023),
    ]:
        for fraction in (0.875, 0.5, 1.0):
            expected = [int(v) for v in preprocessing.central_crop_window([h, w], fraction)]
            assert list(crops.crop_window(spec, h, w, fraction)) == expected, (h, w, fraction)


@pytest.mark.parametrize(
    "shape",
    [(64, 64), (75, 91), (333, 500), (500, 375), (1, 1), (2, 7), (480, 640), (M, LONG), (LONG, M)],
)
def test_graph_windows_equal_python_windows(shape):
    specs = [s for s in crops.crop_set([10, 12, 144]).views]
    graph = crops.crop_windows(specs, tf.constant(shape)).numpy()
    for spec, row in zip(specs, graph):
        assert tuple(int(v) for v in row) == crops.crop_window(spec, *shape), spec
        oh, ow, h, w = row
        assert oh >= 0 and ow >= 0 and oh + h <= shape[0] and ow + w <= shape[1] and h >= 1


def _image(height, width, fmt):
    rng = np.random.default_rng(height * 1000 + width)
    pixels = rng.integers(0, 256, (height // 4 + 1, width // 4 + 1, 3)).astype(np.uint8)
    pixels = tf.image.resize(pixels, [height, width]).numpy().astype(np.uint8)  # some structure
    if fmt == "jpeg":
        return tf.io.encode_jpeg(pixels, quality=90).numpy()
    return tf.io.encode_png(pixels).numpy()


@pytest.mark.parametrize(
    "height,width,fmt", [(90, 120, "jpeg"), (131, 97, "png"), (64, 64, "jpeg")]
)
def test_crops_are_cut_from_one_decode_and_resized(height, width, fmt):
    """Every crop = its window sliced from the decoded image, bilinear-resized to S, scaled to
    [-1, 1], mirrored if asked; the 1-crop view is exactly preprocess_for_eval's output."""
    encoded = _image(height, width, fmt)
    crop_set = crops.crop_set([1, 10, 12, 144])
    sizes = (75, 87)
    out = crops.make_crops(tf.constant(encoded), crop_set, sizes)
    decoded = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    for size, images in zip(sizes, out):
        images = images.numpy()
        assert images.shape == (127, size, size, 3)
        for spec, image in zip(crop_set.specs, images):
            if spec.kind == "central":
                expected = preprocessing.preprocess_for_eval(tf.constant(encoded), size).numpy()
                np.testing.assert_array_equal(image, expected)
                continue
            oh, ow, h, w = crops.crop_window(spec, height, width)
            window = tf.image.convert_image_dtype(decoded[oh : oh + h, ow : ow + w], tf.float32)
            expected = tf.image.resize(window, [size, size]).numpy() * 2.0 - 1.0
            if spec.mirror:
                expected = expected[:, ::-1]
            np.testing.assert_allclose(image, expected, atol=1e-6, err_msg=str(spec))
