"""Global gradient norm of the recipe's loss, block by block, at initialisation and after training.

    .venv/bin/python benchmarks/gradient_norms.py                        # miniature: 300 steps
    .venv/bin/python benchmarks/gradient_norms.py --size=full --steps=100 # 299x299, batch 8

For each network: the trainer's own task (models, loss with label smoothing, aux head and weight
decay, RMSProp as released, no clipping) on the embedded digits. Per block (stem, every
Inception / Reduction block, the head): the norm of the loss gradient with respect to the block's
weights and the norm of those weights, on one fixed batch, at initialisation and after --steps
recipe steps; then the global norm of every step. Figures: BUILD_NOTES "Gradient norms".
"""

import argparse
import json
import tempfile

from inception_cli import common

common.setup_script()  # before TensorFlow loads

import numpy as np  # noqa: E402

from inception import recipe  # noqa: E402
from inception.experiments import gradients  # noqa: E402
from inception.train.config import TrainConfig  # noqa: E402

NETWORKS = ("inception_v4", "inception_resnet_v2", "inception_resnet_v1")
SIZES = {
    "miniature": dict(image_size=75, width_multiplier=0.125, batch_size=32),
    "full": dict(image_size=299, width_multiplier=1.0, batch_size=8),
}


def config(network, size, data_dir, model_dir, seed):
    flags = dict(recipe.values("miniature"), **SIZES[size])
    flags.update(
        model=network,
        dataset="sklearn_digits",
        data_dir=data_dir,
        model_dir=model_dir,
        mode="train",
        aux_logits=True,
        seed=seed,
        progress=False,
    )
    return TrainConfig.from_flat(flags)


def table(init, after):
    lines = [
        f"  {'block':<24}{'params':>10}{'|g| init':>11}{'|w| init':>10}{'|g| after':>11}"
        f"{'|w| after':>11}"
    ]
    for i, name in enumerate(init.blocks):
        lines.append(
            f"  {name:<24}{init.params[i]:>10,}{init.grad_norm[i]:>11.3g}"
            f"{init.weight_norm[i]:>10.3g}{after.grad_norm[i]:>11.3g}"
            f"{after.weight_norm[i]:>11.3g}"
        )
    lines.append(
        f"  {'global':<24}{int(init.params.sum()):>10,}{init.global_grad_norm:>11.4g}"
        f"{'':>10}{after.global_grad_norm:>11.4g}"
    )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default=",".join(NETWORKS))
    parser.add_argument("--size", choices=sorted(SIZES), default="miniature")
    parser.add_argument(
        "--steps", type=int, default=300, help="recipe steps between the two measurements"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data_dir", default="data")
    parser.add_argument("--output", default="", help="also write the figures to this JSON file")
    common.add_verbose_argument(parser)
    args = parser.parse_args()

    results = {}
    for network in args.networks.split(","):
        print(f"{network}, {args.size} {SIZES[args.size]}:", flush=True)
        with tempfile.TemporaryDirectory() as model_dir:
            init, after, norms = gradients.measure(
                config(network, args.size, args.data_dir, model_dir, args.seed), args.steps
            )
        print(table(init, after))
        marks = sorted({0, 9, 49, 99, len(norms) - 1} & set(range(len(norms))))
        print("  global norm at step " + ", ".join(f"{i + 1}: {norms[i]:.3g}" for i in marks))
        results[network] = {
            "blocks": init.blocks,
            "params": init.params.tolist(),
            "grad_init": init.grad_norm.tolist(),
            "weight_init": init.weight_norm.tolist(),
            "grad_after": after.grad_norm.tolist(),
            "weight_after": after.weight_norm.tolist(),
            "step_norms": norms.tolist(),
        }
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"size": args.size, "steps": args.steps, "networks": results}, f)
    first = {n: r["step_norms"][0] if r["step_norms"] else np.nan for n, r in results.items()}
    print("first-step global norms: " + ", ".join(f"{n} {v:.4g}" for n, v in first.items()))


if __name__ == "__main__":
    main()
