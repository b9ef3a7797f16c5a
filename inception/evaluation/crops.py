"""Crop geometry of the evaluation protocols behind the paper's Tables 2-5 (1, 10, 12, 144 crops).

Every multi-crop protocol is defined on one or more *squares* of the image (side = the shorter
side ``m``), as the GoogLeNet and AlexNet protocols do after resizing the shorter side to a
reference length ``s``; a crop of the reference side 224 at scale ``s`` covers ``224 / s`` of the
square. Here the windows are computed in the original image's pixels and each window is resized
once to the network's input side, so the same geometry serves any input size (299, 75, ...).

- 1 crop: the eval preprocessing itself (``preprocess_for_eval``: central 87.5% of each side).
- 10 crops (AlexNet, GoogLeNet): shorter side to 256, the central 256x256 square, its four corner
  crops and centre crop of 224 (7/8 of the square), each also mirrored.
- 12 crops (our definition; the Inception-v3 paper reports 12-crop numbers without defining them):
  the 10 crops plus the whole central square resized, and its mirror; i.e. GoogLeNet's six crops
  of one square at scale 256, each mirrored.
- 144 crops (GoogLeNet): shorter side to 256, 288, 320 and 352; the left, centre and right squares
  (top, centre, bottom for portrait images); per square the four corners and the centre of 224 and
  the whole square resized; each mirrored: 4 x 3 x 6 x 2 = 144. The whole square is the same
  window at every scale, so those 24 crops are 6 distinct views counted four times each.

A crop is a ``CropSpec``; ``protocol_specs(n)`` lists the n crops of protocol n (with repeats),
``crop_window`` turns a spec into an integer window (Python, for tests and documentation) and
``crop_windows`` does the same inside a TensorFlow graph. Rounding: the crop side is
``round(m * 224 / s)``; offsets are ``floor(t * free)`` for t in {0, 1/2, 1} of the free length.
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf

from inception.data import preprocessing
from inception.evaluation.config import PROTOCOLS
from inception.networks import EVAL_CENTRAL_FRACTION

REFERENCE_CROP = 224  # the crop side all the protocols' sources use
TEN_CROP_SCALE = 256  # AlexNet / GoogLeNet: shorter side 256 for 224 crops
MULTI_SCALES = (256, 288, 320, 352)  # GoogLeNet's four shorter sides
SQUARE_POSITIONS = (0.0, 0.5, 1.0)  # left/top, centre, right/bottom square
# (vertical, horizontal) position of a crop inside its square: four corners, then the centre.
CORNERS_AND_CENTRE = ((0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0), (0.5, 0.5))


@dataclasses.dataclass(frozen=True, order=True)
class CropSpec:
    """One crop, independent of the image size.

    kind: 'central' (the 1-crop eval window, ``central_fraction`` of each side) or 'square'.
    square: position of the square along the longer side (0 = left/top, 0.5 centre, 1 right/bottom).
    scale: reference shorter side s; the crop side is 224/s of the square. 0: the whole square.
    position: (vertical, horizontal) place of the crop inside the square, each in {0, 0.5, 1}.
    mirror: flipped left-right after cropping.
    """

    kind: str
    square: float = 0.5
    scale: int = 0
    position: tuple = (0.5, 0.5)
    mirror: bool = False

    @property
    def view(self):
        """The same crop without the mirror: mirrored crops reuse their view's pixels."""
        return dataclasses.replace(self, mirror=False)

    @property
    def group(self):
        """Views of one group have the same window size for every image (one batched resize)."""
        return (self.kind, self.scale)


def _mirrored(specs):
    return [s for spec in specs for s in (spec, dataclasses.replace(spec, mirror=True))]


def _square_crops(square, scale):
    return [CropSpec("square", square, scale, position) for position in CORNERS_AND_CENTRE]


def protocol_specs(num_crops):
    """The crops of protocol ``num_crops`` (1, 10, 12 or 144), repeats included, in a fixed order."""
    if num_crops == 1:
        return [CropSpec("central")]
    if num_crops == 10:
        return _mirrored(_square_crops(0.5, TEN_CROP_SCALE))
    if num_crops == 12:
        return _mirrored(_square_crops(0.5, TEN_CROP_SCALE) + [CropSpec("square", 0.5, 0)])
    if num_crops == 144:
        specs = []
        for scale in MULTI_SCALES:
            for square in SQUARE_POSITIONS:
                specs += _square_crops(square, scale) + [CropSpec("square", square, 0)]
        return _mirrored(specs)
    raise ValueError(f"unknown crop protocol {num_crops!r}; choose from {PROTOCOLS}")


@dataclasses.dataclass(frozen=True)
class CropSet:
    """The distinct crops several protocols need, and each protocol's weights over them.

    ``specs``: the distinct crops in evaluation order (views grouped by window size, then the
    mirrored ones). ``weights[p][u]``: the share of crop u in protocol ``protocols[p]`` (repeats
    counted), so a protocol's probabilities are ``sum_u weights[p][u] * probs[u]``.
    """

    protocols: tuple
    specs: tuple
    weights: tuple

    @property
    def num_distinct(self):
        return len(self.specs)

    @property
    def views(self):
        """Distinct unmirrored views, grouped by window size (the first part of ``specs``)."""
        return tuple(s for s in self.specs if not s.mirror)


def crop_set(protocols):
    """The CropSet of a sequence of protocols (e.g. (1, 10, 12, 144): 127 distinct crops)."""
    protocols = tuple(int(p) for p in protocols)
    if not protocols:
        raise ValueError("at least one crop protocol is needed")
    if len(set(protocols)) != len(protocols):
        raise ValueError(f"crop protocols repeat: {protocols}")
    lists = [protocol_specs(p) for p in protocols]
    # Unmirrored views first, grouped by window size (kind, scale), then their mirrors.
    distinct = sorted(
        {s for specs in lists for s in specs},
        key=lambda s: (s.mirror, s.kind, s.scale, s.square, s.position),
    )
    views = [s for s in distinct if not s.mirror]
    mirrors = [s for s in distinct if s.mirror]
    order = views + mirrors
    index = {s: i for i, s in enumerate(order)}
    weights = []
    for specs in lists:
        row = [0.0] * len(order)
        for s in specs:
            row[index[s]] += 1.0 / len(specs)
        weights.append(tuple(row))
    return CropSet(protocols=protocols, specs=tuple(order), weights=tuple(weights))


def _crop_side(square_side, scale):
    if scale == 0:
        return square_side
    return max(1, min(square_side, int(math.floor(square_side * REFERENCE_CROP / scale + 0.5))))


def crop_window(spec, height, width, central_fraction=EVAL_CENTRAL_FRACTION):
    """(offset_h, offset_w, crop_h, crop_w) of ``spec`` in an image of ``height`` x ``width``."""
    height, width = int(height), int(width)
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive; got {height}x{width}")
    if spec.kind == "central":
        # preprocessing.central_crop_window's arithmetic, in float32 like there.
        fraction = np.float32(central_fraction)
        oh, ow = (
            int((np.float32(n) - np.float32(n) * fraction) / np.float32(2.0))
            for n in (height, width)
        )
        return oh, ow, height - 2 * oh, width - 2 * ow
    m = min(height, width)
    along = int(math.floor(spec.square * (max(height, width) - m)))
    sq_h, sq_w = (along, 0) if height > width else (0, along)
    c = _crop_side(m, spec.scale)
    free = m - c
    return (
        sq_h + int(math.floor(spec.position[0] * free)),
        sq_w + int(math.floor(spec.position[1] * free)),
        c,
        c,
    )


def crop_windows(specs, image_shape):
    """Integer windows [len(specs), 4] (offset_h, offset_w, h, w) of square-kind ``specs`` for an
    image of dynamic shape [h, w] (graph version of ``crop_window``)."""
    shape = tf.cast(image_shape[:2], tf.int64)
    height, width = shape[0], shape[1]
    m = tf.minimum(height, width)
    free_long = tf.maximum(height, width) - m
    portrait = height > width
    rows = []
    for spec in specs:
        if spec.kind != "square":
            raise ValueError(f"crop_windows handles square crops; got {spec}")
        along = _floor_times(spec.square, free_long)
        if spec.scale == 0:
            c = m
        else:
            # round(m * 224 / s) in exact integer arithmetic: floor((2 * m * 224 + s) / (2 s)).
            c = (2 * m * REFERENCE_CROP + spec.scale) // (2 * spec.scale)
            c = tf.clip_by_value(c, 1, m)
        free = m - c
        zero = tf.zeros_like(along)
        oh = _floor_times(spec.position[0], free) + tf.where(portrait, along, zero)
        ow = _floor_times(spec.position[1], free) + tf.where(portrait, zero, along)
        rows.append(tf.stack([oh, ow, c, c]))
    return tf.cast(tf.stack(rows), tf.int32)


def _floor_times(t, n):
    """floor(t * n) for t in {0, 0.5, 1} and an int64 tensor n, exactly."""
    if t == 0.0:
        return tf.zeros_like(n)
    if t == 1.0:
        return n
    if t == 0.5:
        return n // 2
    raise ValueError(f"positions must be 0, 0.5 or 1; got {t}")


def _central_view(image_bytes, central_fraction):
    """The 1-crop window decoded exactly as ``preprocess_for_eval`` decodes it (uint8).

    For JPEG that is the fused window decode, which differs from slicing a full decode by a few
    levels near the window's edge (chroma upsampling), so this view is decoded on its own.
    """

    def shape_of(image_bytes):
        return tf.cond(
            tf.io.is_jpeg(image_bytes),
            lambda: tf.image.extract_jpeg_shape(image_bytes, output_type=tf.int32)[:2],
            lambda: tf.shape(tf.io.decode_image(image_bytes, channels=3, expand_animations=False))[
                :2
            ],
        )

    window = preprocessing.central_crop_window(shape_of(image_bytes), central_fraction)
    return preprocessing.decode_and_crop(image_bytes, *window)


def _resize_views(views_uint8, image_size):
    """uint8 views of one size [n, h, w, 3] -> float32 [n, S, S, 3] in [-1, 1]: the eval
    preprocessing's conversion, bilinear resize and scaling, batched (same kernels per view)."""
    images = tf.image.convert_image_dtype(views_uint8, tf.float32)
    images = tf.image.resize(images, [image_size, image_size], method="bilinear")
    return tf.clip_by_value((images - 0.5) * 2.0, -1.0, 1.0)


def make_crops(image_bytes, crop_set, image_sizes, central_fraction=EVAL_CENTRAL_FRACTION):
    """Encoded image -> one float32 tensor [crop_set.num_distinct, S, S, 3] per size in ``image_sizes``.

    The image is decoded once (plus the 1-crop window through the eval preprocessing's own path
    when protocol 1 is in the set); every window is cut from it, converted and resized once per
    requested size (views of one window size in one batched resize); mirrors flip the resized
    views. Crops come out in ``crop_set.specs`` order.
    """
    image_bytes = tf.convert_to_tensor(image_bytes, tf.string)
    views = crop_set.views
    groups = []
    for spec in views:
        if not groups or groups[-1][0] != spec.group:
            groups.append((spec.group, []))
        groups[-1][1].append(spec)
    square = [s for s in views if s.kind == "square"]
    central = None
    if any(s.kind == "central" for s in views):
        central = _central_view(image_bytes, central_fraction)
    if square:
        image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
        image = tf.ensure_shape(image, [None, None, 3])
        windows = crop_windows(square, tf.shape(image))
    view_index = {s: i for i, s in enumerate(views)}
    mirrored = [view_index[s.view] for s in crop_set.specs if s.mirror]
    out = []
    for size in image_sizes:
        size = int(size)
        parts, row = [], 0
        for (kind, _), specs in groups:
            if kind == "central":
                parts.append(
                    preprocessing.preprocess_decoded_for_eval(central, size, central_fraction=1.0)[
                        None
                    ]
                )
                continue
            cut = [
                tf.slice(
                    image,
                    [windows[row + i, 0], windows[row + i, 1], 0],
                    [windows[row + i, 2], windows[row + i, 3], 3],
                )
                for i in range(len(specs))
            ]
            row += len(specs)
            parts.append(_resize_views(tf.stack(cut), size))
        resized = tf.concat(parts, axis=0) if len(parts) > 1 else parts[0]
        if mirrored:
            flipped = tf.reverse(tf.gather(resized, mirrored), axis=[2])
            resized = tf.concat([resized, flipped], axis=0)
        out.append(tf.ensure_shape(resized, [crop_set.num_distinct, size, size, 3]))
    return tuple(out)
