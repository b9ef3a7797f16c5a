"""Multi-crop evaluation throughput: what the crop pipeline adds to the network's own cost.

    python benchmarks/multicrop.py                                  # full-size IRv2 at 299
    python benchmarks/multicrop.py --width_multiplier=0.25 --protocols=1,10,144

For each protocol the real evaluation path runs (``inception.evaluation``: decode once, cut and
resize every crop in tf.data, one distributed step per batch of images) on in-memory JPEGs of
ImageNet's typical size (500x375, random smooth content), with the same forward batch in crops
for every protocol (images per step = batch // distinct crops). Prints forward passes (crops) per
second and their ratio to single-crop images per second (1.0 = the crop pipeline costs nothing),
the protocol's nominal crops per second (144 counts repeated crops), and the input pipeline's own
crops per second without the network. Weights are random (speed does not depend on them).
This is a script, not a test: timings depend on the machine and its load.
"""

import argparse
import sys
import time

from inception_cli import common

common.setup_script()  # before TensorFlow loads

import numpy as np  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="inception_resnet_v2")
    p.add_argument("--image_size", type=int, default=299)
    p.add_argument("--width_multiplier", type=float, default=1.0)
    p.add_argument("--num_classes", type=int, default=1000)
    p.add_argument("--protocols", default="1,10,144")
    p.add_argument(
        "--batch_size",
        type=int,
        default=126,
        help="forward batch in crops (126 = 144-crop's distinct crops per image)",
    )
    p.add_argument("--steps", type=int, default=3, help="timed steps per protocol")
    p.add_argument("--source_size", default="375x500", help="HxW of the JPEGs")
    common.add_verbose_argument(p)
    args = p.parse_args()
    if args.batch_size < 1 or args.steps < 1:
        p.error("--batch_size and --steps must be at least 1")
    return args


def log(message):
    print(message, file=sys.stderr, flush=True)


def main():
    args = parse_args()
    import tensorflow as tf

    from inception import models
    from inception.evaluation import crops, members, runner
    from inception.train import devices

    strategy = devices.make_strategy("one_device")
    height, width = (int(v) for v in args.source_size.split("x"))
    rng = np.random.default_rng(0)
    with strategy.scope():
        model = models.build(
            args.model,
            input_shape=(args.image_size, args.image_size, 3),
            width_multiplier=args.width_multiplier,
            num_classes=args.num_classes,
        )
    member = members.Member(
        name=args.model,
        path="<benchmark>",
        model=model,
        image_size=args.image_size,
        num_outputs=args.num_classes,
        architecture=args.model,
        run_record={},
        labels=None,
    )
    rows = []
    for protocol in (int(p) for p in args.protocols.split(",")):
        crop_set = crops.crop_set([protocol])
        per_step = max(1, args.batch_size // crop_set.num_distinct)
        count = min(per_step * 4, 64)  # distinct source images, repeated
        encoded = []
        for _ in range(count):
            small = rng.integers(0, 256, (height // 8, width // 8, 3)).astype(np.uint8)
            pixels = tf.image.resize(small, [height, width]).numpy().astype(np.uint8)
            encoded.append(tf.io.encode_jpeg(pixels, quality=90).numpy())
        source = tf.data.Dataset.from_tensor_slices(
            (tf.constant(encoded), tf.zeros([count], tf.int32))
        ).repeat()

        def input_fn(context, source=source, crop_set=crop_set, per_step=per_step):
            del context
            return runner.crop_dataset(source, crop_set, [args.image_size], per_step)

        # The input pipeline alone, after two warm-up batches (tracing, thread pools).
        batches = iter(input_fn(None))
        for _ in range(2):
            next(batches)
        start = time.perf_counter()
        for _ in range(args.steps):
            next(batches)
        pipeline = args.steps * per_step * crop_set.num_distinct / (time.perf_counter() - start)
        del batches

        step = runner.make_step(strategy, [member], crop_set, args.num_classes)
        iterator = iter(strategy.distribute_datasets_from_function(input_fn))
        for _ in range(3):  # compile, then drain what the pipeline prefetched meanwhile
            step(next(iterator))["count"].numpy()
        start = time.perf_counter()
        for _ in range(args.steps):
            step(next(iterator))["count"].numpy()
        seconds = time.perf_counter() - start
        images = per_step * args.steps / seconds
        rows.append(
            (
                protocol,
                crop_set.num_distinct,
                per_step * crop_set.num_distinct,
                images,
                images * crop_set.num_distinct,
                images * protocol,
                pipeline,
            )
        )
        log(
            f"{protocol:>3} crops: {images:8.2f} images/s, {images * crop_set.num_distinct:8.2f} "
            f"forward passes/s (batch {per_step} images = {per_step * crop_set.num_distinct} crops); "
            f"input pipeline alone {pipeline:8.1f} crops/s"
        )

    single = next((r[3] for r in rows if r[0] == 1), None)
    print(
        f"\n{args.model} width {args.width_multiplier} at {args.image_size}x{args.image_size}, "
        f"{height}x{width} JPEG sources, forward batch ~{args.batch_size} crops, "
        f"{args.steps} timed steps\n"
    )
    print(
        "| protocol | distinct crops/image | images/s | forward passes/s | vs 1-crop images/s "
        "| nominal crops/s | pipeline alone (crops/s) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for protocol, distinct, _batch, images, passes, nominal, pipeline in rows:
        ratio = f"{passes / single:.2f}" if single else "-"
        print(
            f"| {protocol} | {distinct} | {images:.2f} | {passes:.2f} | {ratio} | "
            f"{nominal:.2f} | {pipeline:.1f} |"
        )


if __name__ == "__main__":
    main()
