"""Input-pipeline throughput on ImageNet-like JPEGs (about 500x375, made locally).

Measures images/s, in one run, of:
  plain    : full JPEG decode + bilinear resize + scale to [-1, 1] (the baseline)
  fused    : our train decode path: Inception random crop window fused with JPEG decoding, then
             resize + scale (no flip, no colour) -- the like-for-like comparison with `plain`
  fused_any: the same through the per-record format test (non-JPEG re-encoded to JPEG)
  train    : our full train preprocessing (plus 'fast' colour distortion)
  pipeline : `train` (general, format-testing) inside InputPipeline's skip-and-count wrapper
  keras_cv : full decode + keras_cv.layers.RandomCropAndResize (same crop parameters), if keras-cv
             imports; otherwise reported as skipped
and prints each with its ratio to `plain`, both in images/s (wall clock) and in images per
CPU-second (steadier on a shared machine). Every variant runs as a parallel tf.data map (AUTOTUNE)
+ batch + prefetch over the same in-memory encoded files; variants take turns, best pass reported.

  .venv/bin/python benchmarks/input_pipeline.py [--num_images 300] [--image_size 299] [--rounds 3]
"""

import argparse
import os
import tempfile
import time

from inception_cli import common

common.setup_script()  # before TensorFlow loads

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter  # noqa: E402

from inception.data import preprocessing, skipping  # noqa: E402


def make_photo_like_jpegs(directory, count, width=500, height=375, seed=0):
    """Writes `count` JPEGs whose content (smooth shading, shapes, texture noise) compresses like
    photographs (roughly 50-150 KB at quality 90), and returns their paths."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        coarse = rng.integers(0, 256, size=(6, 8, 3)).astype(np.uint8)
        image = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(5, 15))):
            x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
            x1, y1 = x0 + int(rng.integers(10, 200)), y0 + int(rng.integers(10, 200))
            fill = tuple(int(v) for v in rng.integers(0, 256, size=3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=fill)
        image = image.filter(ImageFilter.GaussianBlur(1.0))
        pixels = np.asarray(image).astype(np.int16)
        pixels = pixels + rng.normal(0, 9, size=pixels.shape).astype(np.int16)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        path = os.path.join(directory, f"img_{i:05d}.JPEG")
        image.save(path, "JPEG", quality=90)
        paths.append(path)
    return paths


def plain_decode_resize(image_bytes, size):
    image = tf.io.decode_jpeg(image_bytes, channels=3)
    image = tf.image.resize(tf.image.convert_image_dtype(image, tf.float32), [size, size])
    return image * 2.0 - 1.0


def build(encoded, map_fn=None, wrap=None, batch_size=32):
    dataset = tf.data.Dataset.from_tensor_slices(encoded)
    if wrap is not None:
        dataset = wrap(dataset)
    else:
        dataset = dataset.map(map_fn, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def measure(datasets_by_name, rounds):
    """Best-of-`rounds` images/s (wall clock) and images per CPU-second (all threads of this
    process) for each dataset; variants take turns so a load change on a shared machine hits
    them alike. One warm-up pass each first (tracing, thread pools)."""
    for dataset in datasets_by_name.values():
        for _ in dataset:
            pass
    wall = {name: 0.0 for name in datasets_by_name}
    cpu = dict(wall)
    for _ in range(rounds):
        for name, dataset in datasets_by_name.items():
            count = 0
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            for batch in dataset:
                count += int(batch.shape[0])
            wall[name] = max(wall[name], count / (time.perf_counter() - start_wall))
            cpu[name] = max(cpu[name], count / max(time.process_time() - start_cpu, 1e-9))
    return wall, cpu


def keras_cv_map_fn(size):
    """None (with the reason printed) when keras-cv cannot be imported."""
    try:
        import keras_cv
    except Exception as err:  # noqa: BLE001 -- absent, or not for this Keras/TensorFlow
        print(f"  keras_cv  skipped: cannot import keras_cv ({type(err).__name__}: {err})")
        return None
    layer = keras_cv.layers.RandomCropAndResize(
        target_size=(size, size),
        crop_area_factor=preprocessing.AREA_RANGE,
        aspect_ratio_factor=preprocessing.ASPECT_RATIO_RANGE,
    )
    print(f"  (keras-cv {keras_cv.__version__})")

    def fn(image_bytes):
        image = tf.image.convert_image_dtype(tf.io.decode_jpeg(image_bytes, channels=3), tf.float32)
        return layer(image, training=True) * 2.0 - 1.0

    return fn


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_images", type=int, default=300)
    parser.add_argument("--image_size", type=int, default=299)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="timed passes over the files per variant; the best is reported",
    )
    common.add_verbose_argument(parser)
    args = parser.parse_args()
    size = args.image_size

    with tempfile.TemporaryDirectory() as directory:
        print(
            f"making {args.num_images} ImageNet-like 500x375 JPEGs in {directory} ...", flush=True
        )
        paths = make_photo_like_jpegs(directory, args.num_images)
        encoded = [open(p, "rb").read() for p in paths]
    mean_kb = np.mean([len(e) for e in encoded]) / 1024
    print(
        f"mean file size {mean_kb:.0f} KB; output {size}x{size}; batch {args.batch_size}; "
        f"best of {args.rounds} passes; {os.cpu_count()} CPU cores visible; "
        f"TensorFlow {tf.__version__}",
        flush=True,
    )

    def fused(image_bytes):  # the decode path alone: crop window, fused crop-decode, resize
        return preprocessing.preprocess_for_train(
            image_bytes, size, color_distortion="none", flip=False, jpeg_only=True
        )

    def fused_any(image_bytes):  # the same with the per-record format test
        return preprocessing.preprocess_for_train(
            image_bytes, size, color_distortion="none", flip=False
        )

    def train(image_bytes):  # paper train preprocessing: + flip + 'fast' colour distortion
        return preprocessing.preprocess_for_train(image_bytes, size, jpeg_only=True)

    def pipeline(dataset):  # `train` as InputPipeline runs it: undecodable records dropped
        def process(image_bytes, position):
            seed = tf.stack([tf.constant(0, tf.int64), position])
            return (preprocessing.preprocess_for_train(image_bytes, size, seed=seed),)

        return skipping.map_skipping_errors(
            dataset.map(lambda image_bytes: (image_bytes,)),
            process,
            (skipping.tiny_jpeg(),),
            counter=skipping.SkipCounter(),
            name="benchmark",
        ).map(lambda image: image)

    variants = {
        "plain": build(encoded, lambda b: plain_decode_resize(b, size), batch_size=args.batch_size),
        "fused": build(encoded, fused, batch_size=args.batch_size),
        "fused_any": build(encoded, fused_any, batch_size=args.batch_size),
        "train": build(encoded, train, batch_size=args.batch_size),
        "pipeline": build(encoded, wrap=pipeline, batch_size=args.batch_size),
    }
    keras_cv_fn = keras_cv_map_fn(size)
    if keras_cv_fn is not None:
        variants["keras_cv"] = build(encoded, keras_cv_fn, batch_size=args.batch_size)
    wall, cpu = measure(variants, args.rounds)

    print(f"{'variant':<10} {'images/s':>9} {'x plain':>8} {'img/CPU-s':>10} {'x plain':>8}")
    for name in variants:
        print(
            f"{name:<10} {wall[name]:9.1f} {wall[name] / wall['plain']:8.2f} "
            f"{cpu[name]:10.1f} {cpu[name] / cpu['plain']:8.2f}"
        )
    ratio = wall["fused"] / wall["plain"]
    verdict = "beats" if ratio >= 1.0 else "does NOT beat"
    print(
        f"fused crop-decode {verdict} plain full decode + resize: ratio {ratio:.2f} "
        f"(images/s), {cpu['fused'] / cpu['plain']:.2f} (images per CPU-second)"
    )


if __name__ == "__main__":
    main()
