"""Training-step throughput on random data: our IRv2 vs keras.applications' IRv2, and our v4.

    .venv/bin/python benchmarks/train_step.py [--batch 8] [--steps 6] [--rounds 3] [--image_size 299]

All models are compiled alike (RMSProp, sparse categorical cross-entropy, no XLA) and timed in
one process. Rounds interleave the models so that machine noise hits them all alike; the
figure per model is its best round. Prints images/s and the ratios ours/keras and v4/IRv2.
"""

import argparse
import os
import time

from inception_cli import common

common.setup_script()  # before TensorFlow loads

import keras  # noqa: E402
import numpy as np  # noqa: E402

from inception import models  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--image_size", type=int, default=299)
    common.add_verbose_argument(parser)
    args = parser.parse_args()

    shape = (args.image_size, args.image_size, 3)
    builders = {
        "ours_irv2": lambda: models.build("inception_resnet_v2", input_shape=shape),
        "keras_irv2": lambda: keras.applications.InceptionResNetV2(weights=None, input_shape=shape),
        "ours_v4": lambda: models.build("inception_v4", input_shape=shape),
    }
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (args.batch,) + shape).astype("float32")
    y = rng.integers(0, 1000, (args.batch,)).astype("int32")

    compiled = {}
    for name, build in builders.items():
        model = build()
        model.compile(
            optimizer=keras.optimizers.RMSprop(0.045, rho=0.9, momentum=0.9, epsilon=1.0),
            loss="sparse_categorical_crossentropy",
            jit_compile=False,
        )
        model.train_on_batch(x, y)  # trace and warm up
        model.train_on_batch(x, y)
        compiled[name] = model
        print(f"{name}: built and warmed up", flush=True)

    best = {name: 0.0 for name in compiled}
    for r in range(args.rounds):
        for name, model in compiled.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                model.train_on_batch(x, y)
            rate = args.batch * args.steps / (time.perf_counter() - start)
            best[name] = max(best[name], rate)
            print(f"round {r + 1} {name}: {rate:.2f} images/s", flush=True)

    print(
        f"\nbatch {args.batch}, {args.image_size}x{args.image_size}, best of {args.rounds} rounds "
        f"of {args.steps} steps, {os.cpu_count()} CPUs"
    )
    for name, rate in best.items():
        print(f"  {name:12s} {rate:8.2f} images/s")
    print(f"  ratio ours/keras (IRv2): {best['ours_irv2'] / best['keras_irv2']:.3f}")
    print(f"  ratio v4/IRv2 (ours):    {best['ours_v4'] / best['ours_irv2']:.3f}")


if __name__ == "__main__":
    main()
