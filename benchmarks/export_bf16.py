"""The bfloat16 SavedModel (``saved_model_bf16``) against the float32 one on this machine's CPU,
both through TensorFlow's session loader (what TF Serving and ``saved_model_cli`` run).

    python benchmarks/export_bf16.py                        # Inception-ResNet-v2, 299x299
    python benchmarks/export_bf16.py --model=inception_v4 --runs=5

A full-size network with freshly initialised weights (seed 0, 1000 classes; speed does not
depend on the weights' values, no download) goes through the exporter with
``--formats=saved_model,saved_model_bf16``. Then both SavedModels are timed at batch 1 and at
batch 32 (median of ``--runs`` timed calls after two warm-up calls, the two models alternating
call by call so that a change in the machine's load hits both alike), and compared with each
other on ``--images`` structured images: gradients, stripes, checkerboards and discs in random
colours, plus uniform noise, in [-1, 1] (top-1 agreement, largest and mean probability
difference). With random weights the probabilities are nearly uniform and the two highest logits
often close (the script prints how close), so the agreement here is a harsher test than a
trained network's confident answers. This is a script, not a test: timings depend on the machine
and its load.
"""

import argparse
import contextlib
import os
import sys
import tempfile
import time

from inception_cli import common

common.setup_script()  # before TensorFlow loads

import numpy as np  # noqa: E402

START = time.perf_counter()
FORMATS = ("saved_model", "saved_model_bf16")


def log(message):
    print(f"[{time.perf_counter() - START:7.1f}s] {message}", file=sys.stderr, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--model",
        default="inception_resnet_v2",
        help="inception_v4, inception_resnet_v1 or inception_resnet_v2",
    )
    p.add_argument("--image_size", type=int, default=299)
    p.add_argument("--runs", type=int, default=7, help="timed calls per batch size (median)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls before them")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--images", type=int, default=64, help="images the two models are compared on")
    common.add_verbose_argument(p)
    args = p.parse_args()
    for flag in ("runs", "batch_size", "images"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag} must be at least 1")
    return args


def structured_images(count, size, seed=0):
    """``count`` float32 [size, size, 3] images in [-1, 1]: five kinds of patterns in turn."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    images = []
    for i in range(count):
        kind = i % 5
        if kind == 0:  # a linear gradient in a random direction
            angle = rng.uniform(0, 2 * np.pi)
            base = (np.cos(angle) * x + np.sin(angle) * y)[..., None]
        elif kind == 1:  # stripes
            base = (np.sin(2 * np.pi * rng.uniform(2, 20) * (x if i % 2 else y)) > 0)[..., None]
        elif kind == 2:  # a checkerboard
            n = rng.integers(2, 16)
            base = ((np.floor(x * n) + np.floor(y * n)) % 2)[..., None]
        elif kind == 3:  # a disc
            cx, cy, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.4)
            base = (((x - cx) ** 2 + (y - cy) ** 2) < r * r)[..., None]
        else:  # noise
            images.append(rng.uniform(-1, 1, (size, size, 3)).astype(np.float32))
            continue
        low, high = rng.uniform(-1, 1, 3), rng.uniform(-1, 1, 3)
        images.append((low + (high - low) * base.astype(np.float32)).astype(np.float32))
    return np.stack(images)


def timed(runners, batch, runs, warmup):
    """{format: median seconds of runner.predict(batch)}, the runners alternating."""
    for _ in range(warmup):
        for runner in runners.values():
            runner.predict(batch)
    times = {name: [] for name in runners}
    for _ in range(runs):
        for name, runner in runners.items():
            start = time.perf_counter()
            runner.predict(batch)
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def main():
    args = parse_args()
    import keras
    import tensorflow as tf

    from inception import models
    from inception.export import agreement, classifier, exporter, formats
    from inception.export.config import ExportOptions

    keras.utils.set_random_seed(0)
    log(f"building {args.model} ({args.image_size}x{args.image_size}, 1000 classes)")
    model = models.build(
        args.model, input_shape=(args.image_size, args.image_size, 3), num_classes=1000
    )
    images = structured_images(args.images, args.image_size)
    validation = agreement.AgreementImages(images, dataset="structured images")
    with tempfile.TemporaryDirectory() as tmp:
        rep = exporter.run_export(
            classifier.from_model(model, [f"class_{i}" for i in range(1000)]),
            tmp,
            "bench",
            ExportOptions(formats=FORMATS, latency_repeats=1),
            agreement_images=validation,
            log=log,
        )
        with contextlib.ExitStack() as stack:
            runners = {
                name: stack.enter_context(formats.load(name).open(rep["variants"][name]["path"]))
                for name in FORMATS
            }
            log("comparing the two SavedModels")
            probabilities = {name: runner.predict(images) for name, runner in runners.items()}
            versus = agreement.agreement(*(probabilities[name] for name in FORMATS))
            results = {}
            for batch_size in (1, args.batch_size):
                log(
                    f"timing batch {batch_size}: {args.warmup} warm-up and {args.runs} timed "
                    "calls each"
                )
                batch = np.resize(images, (batch_size,) + images.shape[1:])  # repeats if needed
                results[batch_size] = timed(runners, batch, args.runs, args.warmup)

    print(
        f"# {args.model}, {args.image_size}x{args.image_size}, {model.count_params():,} "
        f"parameters, random weights; {os.cpu_count()} CPU cores, TensorFlow {tf.__version__}; "
        f"median of {args.runs} runs after {args.warmup} warm-up runs, session loader"
    )
    print(
        f"| SavedModel | size (MB) | batch-1 ms | batch-1 img/s | batch-{args.batch_size} ms "
        f"| batch-{args.batch_size} img/s | vs float32 (batch {args.batch_size}) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    big = args.batch_size
    for name in FORMATS:
        one, many = results[1][name], results[big][name]
        print(
            f"| {name} | {rep['variants'][name]['size_bytes'] / 1e6:.1f} | {one * 1e3:.1f} "
            f"| {1 / one:.2f} | {many * 1e3:.0f} | {big / many:.2f} "
            f"| {results[big][FORMATS[0]] / many:.2f}x |"
        )
    print(
        f"\nbfloat16 vs float32 SavedModel on {versus['num_images']} structured images: top-1 "
        f"agreement {versus['top1_agreement']:.4f}, max |dp| {versus['max_abs_prob_diff']:.2e}, "
        f"mean |dp| {versus['mean_abs_prob_diff']:.2e}"
    )
    row = rep["variants"]["saved_model_bf16"]
    print(
        f"export report row of saved_model_bf16 (vs Keras float32): top-1 agreement "
        f"{row['top1_agreement']:.4f}, max |dp| {row['max_abs_prob_diff']:.2e}"
    )
    # Top-1 agreement depends on the logits only (log p up to a constant), not on how confident
    # the softmax is: the gap between the two highest logits, against the logits' spread, is
    # what a bfloat16 error has to bridge to flip one.
    logits = np.log(np.maximum(probabilities[FORMATS[0]], 1e-30))
    top = np.sort(logits, axis=1)
    gaps = (top[:, -1] - top[:, -2]) / logits.std(axis=1)
    print(
        f"float32 top-1 probability: median {np.median(np.exp(top[:, -1])):.4f}; gap between "
        f"the two highest logits: median {np.median(gaps):.3f}, smallest {gaps.min():.4f} "
        "standard deviations of the image's logits"
    )
    return rep


if __name__ == "__main__":
    main()
