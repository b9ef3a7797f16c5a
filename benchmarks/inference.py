"""Inference speed of the full-size networks (299x299) on this machine's CPU, for every export
format: Keras, the SavedModel (through the session loader, as TF Serving runs it), each TFLite
variant on the LiteRT interpreter and ONNX on ONNX Runtime.

    python benchmarks/inference.py                       # Inception-ResNet-v2 (release), every format
    python benchmarks/inference.py --formats=saved_model,tflite_fp32,onnx
    python benchmarks/inference.py --models=inception_v4,inception_resnet_v1,inception_resnet_v2

Each network goes through the exporter (``inception.export.exporter.run_export``, the code
``export.py`` runs), so size, top-1 agreement, largest probability difference and batch-1 latency
(median ms) are the export report's; batch-32 throughput (images/s) is timed here on each format's
own runner. Weights are freshly initialised (speed does not depend on their values; no download);
the agreement is measured on embedded-dataset validation images resized to the network's input and
int8 is calibrated on its training images. This is a script, not a test: timings depend on the
machine and its load.
"""

import argparse
import os
import sys
import time

from inception.export import formats
from inception.export.config import ExportOptions
from inception_cli import common

common.setup_script()  # before TensorFlow loads

import numpy as np  # noqa: E402

from inception.export import agreement  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--models",
        default="inception_resnet_v2",
        help="comma-separated: inception_v4, inception_resnet_v1, inception_resnet_v2",
    )
    p.add_argument("--image_size", type=int, default=299)
    p.add_argument(
        "--formats",
        default=",".join(formats.EXPORT_FORMATS),
        help=f"comma-separated, any of {', '.join(formats.EXPORT_FORMATS)}",
    )
    p.add_argument("--latency_runs", type=int, default=10, help="timed batch-1 runs (median)")
    p.add_argument("--throughput_runs", type=int, default=3, help="timed batch-32 runs (median)")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--eval_images", type=int, default=32, help="validation images compared")
    p.add_argument("--calibration_images", type=int, default=16)
    p.add_argument("--data_dir", default="data", help="TFDS data dir for the embedded dataset")
    common.add_verbose_argument(p)
    args = p.parse_args()
    for flag in (
        "latency_runs",
        "throughput_runs",
        "batch_size",
        "eval_images",
        "calibration_images",
    ):
        if getattr(args, flag) < 1:
            p.error(f"--{flag} must be at least 1")
    try:
        args.formats = formats.check_export_formats([f for f in args.formats.split(",") if f])
    except ValueError as err:
        p.error(str(err))
    return args


START = time.perf_counter()


def log(message):
    """Progress on stderr, with the seconds since the start (conversion times)."""
    print(f"[{time.perf_counter() - START:7.1f}s] {message}", file=sys.stderr, flush=True)


def dataset_images(args):
    """(AgreementImages, calibration images) of the embedded dataset at the benchmark's input
    size."""
    from inception.data import catalogue
    from inception.export import data

    encoded, labels = data.encoded_eval_images(
        catalogue.EMBEDDED_DATASET, args.eval_images, args.data_dir
    )
    validation = agreement.AgreementImages(
        data.preprocess(encoded, args.image_size), labels, dataset=catalogue.EMBEDDED_DATASET
    )
    calibration = None
    if "tflite_int8" in args.formats:
        calibration = data.calibration_images(
            catalogue.EMBEDDED_DATASET, args.image_size, args.calibration_images, args.data_dir
        )
    return validation, calibration


def throughput(predict, batch, runs):
    """Images per second of ``predict(batch)`` (the report's timer, one warm-up call)."""
    return len(batch) / (agreement.latency_ms(lambda: predict(batch), runs, warmup=1) / 1000.0)


def benchmark(name, args, validation, calibration, tmp):
    """The export report of one network, with each format's batch throughput added."""
    import keras
    import tensorflow as tf

    from inception import models
    from inception.export import classifier, exporter, formats

    log(f"{name}: building")
    keras.utils.set_random_seed(0)
    model = models.build(name, input_shape=(args.image_size,) * 2 + (3,), num_classes=1000)
    src = classifier.from_model(model, [f"class_{i}" for i in range(1000)])
    options = ExportOptions(formats=args.formats, latency_repeats=args.latency_runs)
    rep = exporter.run_export(
        src,
        tmp,
        name,
        options,
        agreement_images=validation,
        calibration_images=calibration,
        log=log,
    )
    log(f"{name}: exported and measured")
    batch = (
        np.random.default_rng(0)
        .uniform(-1, 1, (args.batch_size, args.image_size, args.image_size, 3))
        .astype(np.float32)
    )
    keras_fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    rep["keras"]["images_per_s"] = throughput(keras_fn, batch, args.throughput_runs)
    for fmt_name, row in rep["variants"].items():
        with formats.load(fmt_name).open(row["path"]) as runner:
            row["images_per_s"] = throughput(runner.predict, batch, args.throughput_runs)
        log(
            f"  {fmt_name:<16} {row['latency_ms_per_image']:9.1f} ms (batch 1)   "
            f"{row['images_per_s']:7.2f} images/s (batch {args.batch_size})"
        )
    rep["parameters"] = model.count_params()
    return rep


def print_table(name, rep, args):
    keras_row = rep["keras"]
    print(f"\n## {name} ({rep['parameters']:,} parameters)")
    print(
        f"| format | size (MB) | top-1 agreement | max abs prob diff | batch-1 latency (ms) "
        f"| vs Keras | batch-{args.batch_size} throughput (img/s) | vs Keras |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = [("keras", {"size_bytes": None, **keras_row})] + list(rep["variants"].items())
    for label, row in rows:
        size = "-" if row["size_bytes"] is None else f"{row['size_bytes'] / 1e6:.1f}"
        agree = row.get("top1_agreement")
        diff = row.get("max_abs_prob_diff")
        print(
            f"| {label} | {size} | {'-' if agree is None else f'{agree:.4f}'} "
            f"| {'-' if diff is None else f'{diff:.1e}'} | {row['latency_ms_per_image']:.1f} "
            f"| {row['latency_ms_per_image'] / keras_row['latency_ms_per_image']:.2f}x "
            f"| {row['images_per_s']:.2f} | {row['images_per_s'] / keras_row['images_per_s']:.2f}x |",
            flush=True,
        )


def main():
    args = parse_args()
    import tempfile

    import tensorflow as tf

    validation, calibration = dataset_images(args)
    print(
        f"# inference benchmark: {args.image_size}x{args.image_size}, {os.cpu_count()} CPU "
        f"cores, TensorFlow {tf.__version__}, compared on {len(validation.images)} images"
    )
    results = {}
    for name in [m for m in args.models.split(",") if m]:
        with tempfile.TemporaryDirectory() as tmp:
            results[name] = benchmark(name, args, validation, calibration, tmp)
        print_table(name, results[name], args)
    return results


if __name__ == "__main__":
    main()
