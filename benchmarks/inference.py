"""Inference speed of the full-size networks (299x299) on this machine's CPU, for every runtime
the export produces: Keras, the SavedModel, and each TFLite variant on the LiteRT interpreter.

    python benchmarks/inference.py                       # Inception-ResNet-v2 (release)
    python benchmarks/inference.py --models=inception_v4,inception_resnet_v1,inception_resnet_v2

Prints, per network and runtime, batch-1 latency (median ms) and batch-32 throughput (images/s),
each also as a ratio to Keras. Weights are freshly initialised (speed does not depend on their
values; no download); int8 is calibrated on embedded-dataset training images resized to 299.
This is a script, not a test: timings depend on the machine and its load.
"""

import argparse
import os
import sys
import tempfile

from inception import config
from inception_cli import common

common.setup_script()  # before TensorFlow loads

import numpy as np  # noqa: E402

from inception.export import report as export_report  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="inception_resnet_v2",
                   help="comma-separated: inception_v4, inception_resnet_v1, inception_resnet_v2")
    p.add_argument("--image_size", type=int, default=299)
    p.add_argument("--variants", default=",".join(config.TFLITE_VARIANTS), help="TFLite variants")
    p.add_argument("--latency_runs", type=int, default=10, help="timed batch-1 runs (median)")
    p.add_argument("--throughput_runs", type=int, default=3, help="timed batch-32 runs (median)")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--calibration_images", type=int, default=16)
    p.add_argument("--data_dir", default="data", help="TFDS data dir for the embedded dataset")
    p.add_argument("--num_threads", type=int, default=os.cpu_count(),
                   help="LiteRT interpreter threads (TensorFlow uses all cores)")
    common.add_verbose_argument(p)
    args = p.parse_args()
    for flag in ("latency_runs", "throughput_runs", "batch_size", "calibration_images"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag} must be at least 1")
    return args



def log(message):
    print(message, file=sys.stderr, flush=True)


def bench_runtime(label, predict, args, rows, one, batch):
    # The export report's timer (median of the runs after one warm-up call), in milliseconds.
    latency = export_report.latency_ms(lambda: predict(one), args.latency_runs, warmup=1)
    throughput = args.batch_size / (
        export_report.latency_ms(lambda: predict(batch), args.throughput_runs, warmup=1) / 1000.0)
    rows.append((label, latency, throughput))
    log(f"  {label:<18} {latency:9.1f} ms (batch 1)   {throughput:7.2f} images/s (batch {args.batch_size})")


def main():
    args = parse_args()
    import keras
    import tensorflow as tf

    from inception import models
    from inception.data import catalogue
    from inception.export import data, litert, saved_model, source, tflite

    size = args.image_size
    rng = np.random.default_rng(0)
    one = rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32)
    batch = rng.uniform(-1, 1, (args.batch_size, size, size, 3)).astype(np.float32)
    variants = [v for v in args.variants.split(",") if v]
    calibration = None
    if "int8" in variants:
        calibration = data.calibration_images(catalogue.EMBEDDED_DATASET, size,
                                              args.calibration_images, args.data_dir)
    print(f"# inference benchmark: {size}x{size}, {os.cpu_count()} CPU cores, TensorFlow "
          f"{tf.__version__}, LiteRT threads {args.num_threads}")
    results = {}
    for name in [m for m in args.models.split(",") if m]:
        log(f"{name}: building")
        keras.utils.set_random_seed(0)
        model = models.build(name, input_shape=(size, size, 3), num_classes=1000)
        src = source.from_model(model, [f"class_{i}" for i in range(1000)])
        rows = []
        keras_fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        bench_runtime("keras", lambda x: keras_fn(x).numpy(), args, rows, one, batch)
        with tempfile.TemporaryDirectory() as tmp:
            log(f"{name}: SavedModel")
            path = saved_model.write_saved_model(os.path.join(tmp, "sm"), src, name)
            signature = tf.saved_model.load(path).signatures[saved_model.SIGNATURE_IMAGES]
            bench_runtime("saved_model", lambda x: signature(images=tf.constant(x))[
                "probabilities"].numpy(), args, rows, one, batch)
            for variant in variants:
                log(f"{name}: TFLite {variant} (converting)")
                blob = tflite.export_variant(src, variant, calibration)
                file = os.path.join(tmp, f"{variant}.tflite")
                with open(file, "wb") as f:
                    f.write(blob)
                runner = litert.LiteRTClassifier(file, num_threads=args.num_threads)
                bench_runtime(f"tflite_{variant} ({len(blob) / 1e6:.0f} MB)",
                              lambda x: runner.predict(x, batch_size=args.batch_size),
                              args, rows, one, batch)
        results[name] = rows
        base_latency, base_throughput = rows[0][1], rows[0][2]
        print(f"\n## {name} ({model.count_params():,} parameters)")
        print(f"| runtime | batch-1 latency (ms) | vs Keras | batch-{args.batch_size} "
              f"throughput (img/s) | vs Keras |")
        print("|---|---:|---:|---:|---:|")
        for label, latency, throughput in rows:
            print(f"| {label} | {latency:.1f} | {latency / base_latency:.2f}x | {throughput:.2f} "
                  f"| {throughput / base_throughput:.2f}x |", flush=True)
    return results


if __name__ == "__main__":
    main()
