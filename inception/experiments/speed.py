"""Cost against speed: counted multiply-adds and measured training / inference images/s.

Pure Keras, so the same measurement runs on the CPU (TensorFlow backend) and on a GPU (JAX).
The networks are built side by side and interleaved over rounds, so that noise on a shared
machine hits them alike; each figure is the network's best round.
"""

import dataclasses
import functools
import time

import keras
import numpy as np

from inception import compute, models

NETWORKS = {
    "inception_v4": ("inception_v4", None),
    "inception_resnet_v1": ("inception_resnet_v1", None),
    "inception_resnet_v2": ("inception_resnet_v2", "release"),
    "inception_resnet_v2_paper": ("inception_resnet_v2", "paper"),
}
REFERENCE = "inception_resnet_v2"


@dataclasses.dataclass(frozen=True)
class SpeedConfig:
    networks: tuple = tuple(NETWORKS)
    image_size: int = 299
    batch: int = 8
    steps: int = 3
    rounds: int = 2
    width_multiplier: float = 1.0
    precision: str = "float32"
    jit: bool = False

    def __post_init__(self):
        unknown = [n for n in self.networks if n not in NETWORKS]
        if unknown:
            raise ValueError(f"unknown networks {unknown}; choose from {', '.join(NETWORKS)}")
        for field in ("image_size", "batch", "steps", "rounds"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be a positive integer, got {getattr(self, field)}")


def build(key, image_size, width_multiplier=1.0):
    name, variant = NETWORKS[key]
    return models.build(
        name,
        variant=variant,
        input_shape=(image_size, image_size, 3),
        width_multiplier=width_multiplier,
        classifier_activation=None,
    )


def _sync(value):
    """Waits for the device (JAX dispatches asynchronously)."""
    return np.asarray(keras.ops.convert_to_numpy(value))


def _images_per_sec(fn, batch, steps):
    start = time.perf_counter()
    for _ in range(steps):
        out = fn()
    _sync(out)
    return batch * steps / (time.perf_counter() - start)


def _compiled(key, config, x, y):
    model = build(key, config.image_size, config.width_multiplier)
    model.compile(
        optimizer=keras.optimizers.RMSprop(0.045, rho=0.9, momentum=0.9, epsilon=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=config.jit,
    )
    _sync(model.train_on_batch(x, y))  # compiles both paths before any timing
    _sync(model.predict_on_batch(x))
    return model


def measure(config, log=print):
    """Returns {network: {gmacs, train_images_per_sec, infer_images_per_sec, *_ratio}}."""
    rng = np.random.default_rng(0)
    shape = (config.batch, config.image_size, config.image_size, 3)
    x = rng.uniform(-1, 1, shape).astype("float32")
    y = rng.integers(0, 1000, (config.batch,)).astype("int32")
    macs = {
        k: compute.count_macs(build(k, config.image_size, config.width_multiplier))
        for k in config.networks
    }
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(config.precision)
    try:
        nets = {k: _compiled(k, config, x, y) for k in config.networks}
        best = {k: {"train": 0.0, "infer": 0.0} for k in config.networks}
        for r in range(config.rounds):
            for key, model in nets.items():
                train = _images_per_sec(
                    functools.partial(model.train_on_batch, x, y), config.batch, config.steps
                )
                infer = _images_per_sec(
                    functools.partial(model.predict_on_batch, x), config.batch, config.steps
                )
                best[key] = {
                    "train": max(best[key]["train"], train),
                    "infer": max(best[key]["infer"], infer),
                }
                log(f"round {r + 1}: {key:<26} train {train:9.1f} img/s  infer {infer:9.1f} img/s")
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
    ref = REFERENCE if REFERENCE in config.networks else config.networks[0]
    return {
        k: {
            "gmacs": macs[k] / 1e9,
            "train_images_per_sec": best[k]["train"],
            "infer_images_per_sec": best[k]["infer"],
            "macs_ratio": macs[k] / macs[ref],
            "train_ratio": best[k]["train"] / best[ref]["train"],
            "infer_ratio": best[k]["infer"] / best[ref]["infer"],
        }
        for k in config.networks
    }


def format_table(rows):
    lines = [
        f"{'network':<26}{'MMACs':>9}{'train img/s':>13}{'infer img/s':>13}"
        f"{'MACs/ref':>10}{'train/ref':>11}{'infer/ref':>11}"
    ]
    for key, r in rows.items():
        lines.append(
            f"{key:<26}{r['gmacs'] * 1e3:>9.0f}{r['train_images_per_sec']:>13.1f}"
            f"{r['infer_images_per_sec']:>13.1f}{r['macs_ratio']:>10.3f}"
            f"{r['train_ratio']:>11.3f}{r['infer_ratio']:>11.3f}"
        )
    return "\n".join(lines)
