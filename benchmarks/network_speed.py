"""Cost against speed of the full-size networks: multiply-adds, training and inference images/s.

    .venv/bin/python benchmarks/network_speed.py --batch 8 --steps 3 --rounds 2      # this CPU
    KERAS_BACKEND=jax python benchmarks/network_speed.py --batch 64 --steps 10 --jit \
        --precision mixed_bfloat16                                                  # a GPU

The paper says Inception-ResNet-v2 costs about what Inception-v4 costs, yet Inception-v4 is
markedly slower in practice. Prints, per network, the counted multiply-adds and the best-round
images/s of a compiled training step (RMSProp, cross-entropy) and of inference, measured in one
process with the networks interleaved, and the ratios against Inception-ResNet-v2 (release).
"""

import argparse
import json

from inception_cli import common

common.setup_script()  # before TensorFlow loads

import keras  # noqa: E402

from inception.experiments import speed  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        default=",".join(speed.NETWORKS),
        help=f"comma-separated subset of {', '.join(speed.NETWORKS)}",
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--image_size", type=int, default=299)
    parser.add_argument(
        "--precision", default="float32", choices=["float32", "mixed_bfloat16", "mixed_float16"]
    )
    parser.add_argument("--jit", action="store_true", help="jit_compile=True (XLA)")
    parser.add_argument("--json", help="also write the figures to this file")
    common.add_verbose_argument(parser)
    args = parser.parse_args()
    try:
        config = speed.SpeedConfig(
            networks=tuple(k.strip() for k in args.models.split(",") if k.strip()),
            image_size=args.image_size,
            batch=args.batch,
            steps=args.steps,
            rounds=args.rounds,
            precision=args.precision,
            jit=args.jit,
        )
    except ValueError as err:
        parser.error(str(err))
    rows = speed.measure(config, log=lambda m: print(m, flush=True))
    print(
        f"\nbackend {keras.backend.backend()}, precision {config.precision}, jit {config.jit}, "
        f"batch {config.batch}, {config.image_size}x{config.image_size}, best of "
        f"{config.rounds} rounds x {config.steps} steps"
    )
    print(speed.format_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"backend": keras.backend.backend(), "config": vars(args), "networks": rows},
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
