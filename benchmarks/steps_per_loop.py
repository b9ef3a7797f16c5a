"""The trainer's images/s with one and with N training steps per host call (--steps_per_loop).

    .venv/bin/python benchmarks/steps_per_loop.py                         # the demo, N = 1, 10
    .venv/bin/python benchmarks/steps_per_loop.py --loops=1,10,44 --rounds=3

The demo's network and recipe (configs/demo.cfg: reduced-width Inception-ResNet-v2, 75x75, batch
32, recipe.MINIATURE, the embedded digits) trained for ``--epochs`` in this process, ``--mode=train``, the settings
alternating round by round so that a change in the machine's load hits them alike. A small
network is where the host's share of a step shows: each call returns its outputs to Python,
which then runs the loop's actions (progress bar, metrics, checks). Prints the summary's
``train_images_per_sec`` (the first call, which compiles, excluded) per setting and round, and
each setting's best against one step per call. Figures: BUILD_NOTES "Steps per loop".
"""

import argparse
import os
import tempfile

from inception_cli import common

common.setup_script()  # before TensorFlow loads

from inception import recipe, train  # noqa: E402
from inception.train.config import TrainConfig  # noqa: E402


def demo_config(model_dir, data_dir, epochs, steps_per_loop):
    """configs/demo.cfg's network, data and recipe (recipe.MINIATURE), trained only."""
    flat = dict(recipe.values("miniature"))
    flat.update(
        model="inception_resnet_v2",
        variant="release",
        dataset="sklearn_digits",
        data_dir=data_dir,
        model_dir=model_dir,
        image_size=75,
        width_multiplier=0.125,
        aux_logits=True,
        epochs=epochs,
        mode="train",
        steps_per_loop=steps_per_loop,
        progress=True,
        seed=0,
    )
    return TrainConfig.from_flat(flat)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", default="1,10", help="the --steps_per_loop values")
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data_dir", default="data")
    common.add_verbose_argument(parser)
    args = parser.parse_args()
    loops = [int(n) for n in args.loops.split(",")]
    rates = {n: [] for n in loops}
    with tempfile.TemporaryDirectory() as root:
        for r in range(args.rounds):
            for n in loops:
                cfg = demo_config(os.path.join(root, f"n{n}-r{r}"), args.data_dir, args.epochs, n)
                summary = train.run(cfg, train.setup(cfg))
                rates[n].append(summary["train_images_per_sec"])
                print(
                    f"round {r + 1}, --steps_per_loop={n}: {rates[n][-1]:.1f} images/s", flush=True
                )
    base = max(rates[loops[0]])
    print(f"\n{'steps per call':>15}{'best images/s':>15}{'vs ' + str(loops[0]):>8}  rounds")
    for n in loops:
        print(
            f"{n:>15}{max(rates[n]):>15.1f}{max(rates[n]) / base:>8.3f}  "
            + ", ".join(f"{x:.1f}" for x in rates[n])
        )


if __name__ == "__main__":
    main()
