"""Fuzzes the weight importers with damaged files and counts the outcomes.

    python benchmarks/fuzz_weights.py                    # 300 inputs per format, seed 0
    python benchmarks/fuzz_weights.py --inputs=50 --seed=1 --formats=timm

A small network (width 0.1, 75x75; Inception-v4 with one block per stage for the slim V2
checkpoint and the timm safetensors file, Inception-ResNet-v2 at full depth for the
keras-applications .h5, whose reader counts the network's convolutions) gets distinct random
values; each format's complete file is written from them under the published names and loads
back exactly. Each input is one such file damaged one way (``KINDS``): truncated, bits flipped
(half of them in the first 64 bytes: the headers), a block overwritten with random bytes, the
whole file replaced by random bytes, or rewritten with one tensor of another shape. Then
``pretrained.load_weights`` into a model holding other values must either load (a flipped bit in
a value is not detectable in safetensors or .h5) or raise a WeightsError naming the file, with
every variable of the model unchanged.

Outcomes: ``loaded``, ``WeightsError`` (naming the file, model unchanged), ``WeightsError, model
changed``, ``WeightsError without the path``, or the class of any other exception.
``tests/test_weights_fuzz.py`` asserts on the same generators.
"""

import os
import re
import shutil
import sys

import numpy as np

KINDS = ("truncate", "bit_flip", "random_block", "random_file", "wrong_shape")
FORMATS = ("slim", "timm", "keras_h5")
GOOD_OUTCOMES = ("loaded", "WeightsError")
SMALL = dict(width_multiplier=0.1, input_shape=(75, 75, 3))
_EXPAND = re.compile(r"^inception_resnet_([abc])_(\d+)/expand$")


def build(fmt):
    """The small model of ``fmt`` with distinct random values."""
    from inception import models

    if fmt == "keras_h5":
        model = models.build("inception_resnet_v2", **SMALL)
    else:
        model = models.build("inception_v4", repeats=(1, 1, 1), **SMALL)
    rng = np.random.default_rng(0)
    for v in model.weights:
        if "seed_generator" not in v.path:
            v.assign(rng.uniform(0.5, 1.5, v.shape).astype("float32"))
    return model


def _network(model):
    from inception.weights import names

    return names.network_of_model(model).name


def _values(model):
    return {v.path: np.array(v) for v in model.weights if "seed_generator" not in v.path}


def write_slim(model, directory, shape_of=None):
    """A V2 checkpoint (``.index`` + ``.data``) with slim's names; returns its prefix."""
    import tensorflow as tf

    from inception.weights import names

    values, prefix = _values(model), os.path.join(directory, "model.ckpt")
    tensors = {s.slim: values[s.path] for s in names.slots(_network(model)) if s.path in values}
    tensors = {k: (shape_of(k, v) if shape_of else v) for k, v in tensors.items()}
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=list(tensors),
        shape_and_slices=[""] * len(tensors),
        tensors=[tf.constant(v) for v in tensors.values()],
    )
    return prefix


def write_timm(model, directory, shape_of=None):
    """A timm ``model.safetensors`` (PyTorch layouts, unit BatchNorm weights)."""
    from safetensors.numpy import save_file

    from inception.weights import names

    values = _values(model)
    tensors = {}
    for s in names.slots(_network(model)):
        if s.path in values and s.timm:
            v = values[s.path]
            tensors[s.timm] = v.transpose(3, 2, 0, 1) if v.ndim == 4 else v.T if v.ndim == 2 else v
    for cb in names.conv_bns(_network(model)):
        if cb.timm and f"{cb.path}/bn/beta" in values:
            tensors[f"{cb.timm}.bn.weight"] = np.ones_like(values[f"{cb.path}/bn/beta"])
    tensors = {
        k: np.ascontiguousarray(shape_of(k, v) if shape_of else v, np.float32)
        for k, v in tensors.items()
    }
    path = os.path.join(directory, "model.safetensors")
    save_file(tensors, path)
    return path


def _h5_layers(model):
    """[(layer name, [(weight name, our variable path)])] in keras-applications' naming."""
    from inception.weights import names

    values, layers = _values(model), []
    body = [cb for cb in names.conv_bns(_network(model)) if cb.part == names.BODY]
    for i, cb in enumerate(cb for cb in body if cb.path != "conv_7b"):
        layers.append((f"conv2d_{i + 1}", [("kernel", f"{cb.path}/conv/kernel")]))
        layers.append(
            (
                f"batch_normalization_{i + 1}",
                [
                    (leaf, f"{cb.path}/bn/{leaf}")
                    for leaf in ("beta", "moving_mean", "moving_variance")
                ],
            )
        )
    for path in values:
        match = _EXPAND.match(path.rsplit("/", 1)[0])
        if match and path.endswith("/kernel"):
            block = {"a": 35, "b": 17, "c": 8}[match.group(1)]
            layer = path.rsplit("/", 1)[0]
            layers.append(
                (
                    f"block{block}_{match.group(2)}_conv",
                    [("kernel", f"{layer}/kernel"), ("bias", f"{layer}/bias")],
                )
            )
    layers.append(("conv_7b", [("kernel", "conv_7b/conv/kernel")]))
    layers.append(
        (
            "conv_7b_bn",
            [(leaf, f"conv_7b/bn/{leaf}") for leaf in ("beta", "moving_mean", "moving_variance")],
        )
    )
    layers.append(("predictions", [("kernel", "predictions/kernel"), ("bias", "predictions/bias")]))
    return layers


def write_keras_h5(model, directory, shape_of=None):
    """keras-applications' legacy Inception-ResNet-v2 ``.h5`` layout: one group per layer,
    ``layer_names`` and ``weight_names`` attributes."""
    import h5py

    values = _values(model)
    path = os.path.join(directory, "inception_resnet_v2.h5")
    layers = _h5_layers(model)
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [name.encode() for name, _ in layers]
        for name, weights in layers:
            group = f.create_group(name)
            keys = [f"{name}/{leaf}:0" for leaf, _ in weights]
            group.attrs["weight_names"] = [k.encode() for k in keys]
            for key, (_, ours) in zip(keys, weights):
                group[key] = shape_of(key, values[ours]) if shape_of else values[ours]
    return path


WRITERS = {"slim": write_slim, "timm": write_timm, "keras_h5": write_keras_h5}


def _other_shape(rng):
    """A ``shape_of`` that gives one tensor (picked by ``rng``) one more row."""
    state = {}

    def shape_of(key, value):
        state.setdefault("target", None)
        if state["target"] is None and rng.random() < 0.05:
            state["target"] = key
            return np.concatenate([value, value[:1]], axis=0)
        return value

    return shape_of


def _damage_bytes(kind, rng, data):
    data = bytearray(data)
    if kind == "truncate":
        return bytes(data[: int(rng.integers(0, len(data)))])
    if kind == "bit_flip":
        for _ in range(int(rng.integers(1, 9))):
            limit = min(64, len(data)) if rng.integers(2) else len(data)
            data[int(rng.integers(limit))] ^= 1 << int(rng.integers(8))
        return bytes(data)
    if kind == "random_block":
        start = int(rng.integers(len(data)))
        size = int(rng.integers(1, 257))
        data[start : start + size] = rng.integers(
            0, 256, len(data[start : start + size]), dtype=np.uint8
        ).tobytes()
        return bytes(data)
    return rng.integers(0, 256, int(rng.integers(1, 4096)), dtype=np.uint8).tobytes()


def make_case(fmt, kind, rng, model, directory):
    """Writes one damaged file of ``fmt`` into the empty ``directory``; returns the path to load."""
    if kind == "wrong_shape":
        return WRITERS[fmt](model, directory, _other_shape(rng))
    path = WRITERS[fmt](model, directory)
    files = sorted(os.path.join(directory, f) for f in os.listdir(directory))
    victim = files[int(rng.integers(len(files)))]
    with open(victim, "rb") as f:
        damaged = _damage_bytes(kind, rng, f.read())
    with open(victim, "wb") as f:
        f.write(damaged)
    return path


def load_one(model, path, before):
    """(outcome, message) of loading ``path`` into ``model`` whose values are ``before``."""
    from inception.weights import WeightsError, pretrained

    try:
        pretrained.load_weights(model, path)
    except Exception as err:  # noqa: BLE001 -- every failure is classified
        outcome, message = type(err).__name__, str(err)
        after = _values(model)
        if any(not np.array_equal(before[k], after[k]) for k in before):
            return f"{outcome}, model changed", message
        display = path[: -len(".index")] if path.endswith(".index") else path
        if isinstance(err, WeightsError) and display not in message:
            return "WeightsError without the path", message
        return outcome, message
    return "loaded", None


def _assign(variables, values):
    for key, value in values.items():
        variables[key].assign(value)


def fuzz(fmt, count, seed, scratch, model=None):
    """``count`` damaged files of ``fmt``: [(kind, outcome, message)]."""
    model = model or build(fmt)
    rng = np.random.default_rng(seed)
    original = _values(model)
    other = {k: (v * 0 + 7).astype(v.dtype) for k, v in original.items()}
    variables = {v.path: v for v in model.weights}
    results = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        case = os.path.join(scratch, f"{fmt}-{i}")
        os.makedirs(case)
        _assign(variables, original)  # the file holds the original values, the model others
        path = make_case(fmt, kind, rng, model, case)
        _assign(variables, other)
        outcome, message = load_one(model, path, other)
        results.append((kind, outcome, message))
        shutil.rmtree(case, ignore_errors=True)
    _assign(variables, original)
    return results


def main():
    import argparse
    import collections
    import tempfile
    import time

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=300, help="per format")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--formats", default=",".join(FORMATS))
    args = parser.parse_args()
    failures = 0
    for fmt in args.formats.split(","):
        with tempfile.TemporaryDirectory() as scratch:
            start = time.perf_counter()
            results = fuzz(fmt, args.inputs, args.seed, scratch)
            print(
                f"{fmt}: {args.inputs} inputs, seed {args.seed}, "
                f"{time.perf_counter() - start:.0f} s"
            )
            for (kind, outcome), n in sorted(
                collections.Counter((k, o) for k, o, _ in results).items()
            ):
                print(f"  {kind:<13} {outcome:<32} {n}")
            shown = set()
            for kind, outcome, message in results:
                if outcome != "loaded" and (outcome, kind) not in shown:
                    shown.add((outcome, kind))
                    print(f"    {outcome} ({kind}): {message[:240]!r}")
            failures += sum(o not in GOOD_OUTCOMES for _, o, _ in results)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from inception_cli import common

    common.setup_script()
    sys.exit(main())
