"""Label smoothing 0.1 (the Inception-v3 paper's, our default) against 0 (the released trainer's).

    .venv/bin/python benchmarks/label_smoothing.py                       # 2 networks x 3 seeds
    .venv/bin/python benchmarks/label_smoothing.py --networks=inception_v4 --seeds=5 --epochs=10

The demo's recipe and size (recipe.MINIATURE, width 0.125, 75x75, the embedded digits) for each
network, seed and smoothing, in this process; each run evaluates its EMA weights after every
epoch. Prints the validation top-1 error per epoch (the mean over seeds) and, per run, the final
and the best. The loss is not compared: with smoothing the best attainable loss is not zero.
Figures: BUILD_NOTES "Label smoothing, measured".
"""

import argparse
import csv
import json
import os
import tempfile

from inception_cli import common

common.setup_script()  # before TensorFlow loads

import numpy as np  # noqa: E402

from inception import recipe, train  # noqa: E402
from inception.runfiles import METRICS_CSV  # noqa: E402
from inception.train.config import TrainConfig  # noqa: E402

SMOOTHINGS = (0.0, 0.1)


def config(network, smoothing, seed, epochs, data_dir, model_dir):
    flags = dict(recipe.values("miniature"))
    flags.update(
        model=network,
        dataset="sklearn_digits",
        data_dir=data_dir,
        model_dir=model_dir,
        image_size=75,
        width_multiplier=0.125,
        epochs=epochs,
        aux_logits=True,
        label_smoothing=smoothing,
        seed=seed,
        mode="train_and_eval",
        progress=False,
    )
    return TrainConfig.from_flat(flags)


def errors(model_dir):
    """Validation top-1 error after each epoch, from the run's metrics.csv."""
    with open(os.path.join(model_dir, METRICS_CSV)) as f:
        return [1.0 - float(row["val_top1"]) for row in csv.DictReader(f)]


def report(curves, epochs, column="smoothing", label=lambda smoothing: f"{smoothing:.1f}"):
    """The per-epoch means and the per-seed finals of ``curves`` ({(network, setting): [errors
    per epoch, per seed]}); ``label(setting)`` is the setting in the ``column``."""
    lines = [
        f"{'network':<22}{column:>10}  validation top-1 error after epoch 1..{epochs} "
        "(mean over seeds)"
    ]
    for (network, setting), runs in curves.items():
        mean = np.mean(np.array(runs), axis=0)
        lines.append(f"{network:<22}{label(setting):>10}  " + " ".join(f"{e:6.1%}" for e in mean))
    lines.append("")
    lines.append(
        f"{'network':<22}{column:>10}  final error per seed; mean; best epoch's error per seed"
    )
    for (network, setting), runs in curves.items():
        finals, bests = [r[-1] for r in runs], [min(r) for r in runs]
        lines.append(
            f"{network:<22}{label(setting):>10}  "
            + " ".join(f"{e:6.1%}" for e in finals)
            + f"; {np.mean(finals):6.1%}; "
            + " ".join(f"{e:6.1%}" for e in bests)
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default="inception_resnet_v2,inception_v4")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--data_dir", default="data")
    parser.add_argument("--output", default="", help="also write the curves to this JSON file")
    common.add_verbose_argument(parser)
    args = parser.parse_args()
    curves = {}
    with tempfile.TemporaryDirectory() as root:
        for network in args.networks.split(","):
            for smoothing in SMOOTHINGS:
                for seed in range(args.seeds):
                    model_dir = os.path.join(root, f"{network}-{smoothing}-{seed}")
                    cfg = config(network, smoothing, seed, args.epochs, args.data_dir, model_dir)
                    train.run(cfg, train.setup(cfg))
                    curves.setdefault((network, smoothing), []).append(errors(model_dir))
                    print(
                        f"{network} smoothing {smoothing} seed {seed}: final error "
                        f"{curves[(network, smoothing)][-1][-1]:.1%}",
                        flush=True,
                    )
    print(report(curves, args.epochs))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(
                [
                    {"network": n, "label_smoothing": s, "val_top1_error": runs}
                    for (n, s), runs in curves.items()
                ],
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
