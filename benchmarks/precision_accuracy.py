"""bfloat16 training (--mixed_precision) against float32: the demo recipe's validation top-1.

    .venv/bin/python benchmarks/precision_accuracy.py                    # 2 networks x 3 seeds
    .venv/bin/python benchmarks/precision_accuracy.py --networks=inception_v4 --seeds=5

The demo's recipe and size (recipe.MINIATURE, width 0.125, 75x75, 5 epochs, the embedded digits)
for each network, seed and precision, in this process (``train.setup`` sets each run's dtype
policy); each run evaluates its EMA weights, always in float32, after every epoch. Prints the
validation top-1 error per epoch (the mean over seeds) and, per run, the final and the best.
Figures: BUILD_NOTES "bfloat16 training, measured".
"""

import argparse
import json
import os
import tempfile

from inception_cli import common

common.setup_script()  # before TensorFlow loads

from label_smoothing import errors, report  # noqa: E402  (benchmarks/ is sys.path[0])

from inception import recipe, train  # noqa: E402
from inception.train.config import TrainConfig  # noqa: E402

PRECISIONS = (False, True)  # --mixed_precision


def config(network, mixed_precision, seed, epochs, data_dir, model_dir):
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
        mixed_precision=mixed_precision,
        seed=seed,
        mode="train_and_eval",
        progress=False,
    )
    return TrainConfig.from_flat(flags)


def _name(mixed):
    return "bfloat16" if mixed else "float32"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default="inception_resnet_v2,inception_v4")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5, help="5: the demo's")
    parser.add_argument("--data_dir", default="data")
    parser.add_argument("--output", default="", help="also write the curves to this JSON file")
    common.add_verbose_argument(parser)
    args = parser.parse_args()
    curves = {}
    with tempfile.TemporaryDirectory() as root:
        for network in args.networks.split(","):
            for seed in range(args.seeds):
                for mixed in PRECISIONS:
                    model_dir = os.path.join(root, f"{network}-{_name(mixed)}-{seed}")
                    cfg = config(network, mixed, seed, args.epochs, args.data_dir, model_dir)
                    summary = train.run(cfg, train.setup(cfg))
                    curves.setdefault((network, mixed), []).append(errors(model_dir))
                    print(
                        f"{network} {_name(mixed)} seed {seed}: final error "
                        f"{curves[(network, mixed)][-1][-1]:.1%}, "
                        f"{summary['train_images_per_sec']:.0f} images/s",
                        flush=True,
                    )
    print(report(curves, args.epochs, "precision", _name))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(
                [
                    {"network": n, "precision": _name(m), "val_top1_error": runs}
                    for (n, m), runs in curves.items()
                ],
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
