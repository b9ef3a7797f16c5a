"""Training from Python with the typed configs alone (no absl flags), and the configs' contract
with the command line: the same defaults, the same checks and messages, flat names <-> fields."""

import ast
import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import pytest

from inception.train import config as config_lib

REPO = pathlib.Path(__file__).resolve().parent.parent

# A Python user's runs: configs built directly, train.run, nothing from the command line. The
# first run prepares the dataset in a fresh data_dir; the second, in the same process, finds it
# prepared.
SCRIPT = r"""
import json, sys
import tensorflow as tf
from inception import train
from inception.train import config

# Test speed only: Grappler's graph rewrites off (both runs alike).
tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})

def run(model_dir):
    cfg = config.TrainConfig(
        model=config.ModelConfig(name="inception_resnet_v1", width_multiplier=0.1, image_size=75,
                                 repeats=(1, 1, 1), aux_logits=True, bn_momentum=0.9),
        data=config.DataConfig(dataset="sklearn_digits", data_dir=sys.argv[1]),
        recipe=config.RecipeConfig(batch_size=16, steps_per_epoch=2, epochs=1, ema_decay=0.9),
        run=config.RunConfig(mode="train", model_dir=model_dir, progress=False, seed=1,
                             deterministic=True, strategy="one_device"))
    return train.run(cfg)

fresh = run(sys.argv[2])
prepared = run(sys.argv[3])

from absl import flags
defined = [m for m in flags.FLAGS.flags_by_module_dict() if "inception" in m or m == "__main__"]
print(json.dumps({
    "fresh": fresh, "prepared": prepared,
    "flags_parsed": flags.FLAGS.is_parsed(),
    "flag_modules": defined,
    "cli_modules": sorted(m for m in sys.modules if m.split(".")[0] in ("inception_cli", "main")),
}))
"""


def test_train_from_python_without_absl_flags(tmp_path):
    env = dict(
        os.environ,
        TF_CPP_MIN_LOG_LEVEL="2",
        KERAS_BACKEND="tensorflow",
        PYTHONPATH=str(REPO),
        CUDA_VISIBLE_DEVICES="",
    )
    env.pop("TF_CONFIG", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            str(tmp_path / "data"),
            str(tmp_path / "run"),
            str(tmp_path / "run_again"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["fresh"]["steps"] == 2 and out["fresh"]["weights_fingerprint"]
    assert (tmp_path / "run" / "ema_model.keras").exists()
    # Preparing the dataset (the first run only) must not change the seeded weights: TFDS
    # draws from Python's random, which Keras' unseeded initializers read too.
    assert out["prepared"]["weights_fingerprint"] == out["fresh"]["weights_fingerprint"]
    # absl.flags itself is loaded (Keras logs through absl.logging, which imports it), but no
    # flag of ours is defined and the command line was never parsed.
    assert not out["flags_parsed"] and out["flag_modules"] == [] and out["cli_modules"] == []


def _imports(path):
    """Every module name an ``import`` or ``from ... import`` of ``path`` names."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_library_never_imports_absl_flags_or_the_cli():
    forbidden = ("absl.flags", "absl.app", "inception_cli", "main")
    for path in (REPO / "inception").rglob("*.py"):
        bad = [n for n in _imports(path) if n.startswith(forbidden)]
        assert not bad, f"{path.relative_to(REPO)} imports {bad}"


# ------------------------------------------------------------------ the configs' contract ----
def _flag_values():
    from absl import flags as absl_flags

    from inception_cli import train_flags

    values = absl_flags.FlagValues()
    for flag in train_flags.FLAGS.get_flags_for_module(train_flags.__name__):
        if flag.name != "config":  # --config=NAME names a file of flags; it is not a field
            values[flag.name] = flag
    return values, train_flags


def test_flags_are_the_config_fields_with_its_defaults():
    values, train_flags = _flag_values()
    defaults = config_lib.TrainConfig().to_flat()
    assert set(values) == set(defaults) == set(train_flags.NAMES)
    values(["prog"])
    try:
        assert train_flags.to_config(values) == config_lib.TrainConfig()
    finally:
        values.unparse_flags()


BAD = [
    (dict(image_size=64), "--image_size must be at least 75"),
    (dict(batch_size=0), "--batch_size must be a positive integer"),
    (dict(model="inception_v4", variant="release"), "--variant must fit --model"),
    (dict(strategy="tpu"), "--strategy=tpu needs --tpu"),
    (dict(label_smoothing=1.5), "--label_smoothing must be in [0.0, 1.0)"),
    (dict(residual_scales=["0.1", "0.2"]), "--residual_scales must be three positive numbers"),
    (dict(repeats=["1", "2"]), "--repeats must be three positive integers"),
    (dict(repeats=["1", "1", "x"]), "--repeats must be three positive integers"),
    (
        dict(repeats="1,1,1", init_weights="imagenet"),
        "--init_weights of a published file needs the paper's block counts",
    ),
    (dict(area_range="0.5,0.1"), "--area_range must be 'lo,hi'"),
    (dict(ema_decay=1.0), "--ema_decay must be in [0.0, 1.0)"),
    (dict(deterministic=True, seed=-1), "--seed must be >= 0 (NumPy's seeds are non-negative)"),
    (
        dict(model="inception_v4", freeze_up_to="inception_resnet_a_1"),
        "is not a block of inception_v4; its blocks: stem, inception_a_1",
    ),
    # The exact list of this network: one A block here, so no inception_resnet_a_2.
    (
        dict(model="inception_resnet_v1", repeats="1,1,1", freeze_up_to="inception_resnet_a_2"),
        "is not a block of inception_resnet_v1; its blocks: stem, inception_resnet_a_1, reduction_a",
    ),
    (
        dict(init_weights="/no/such/weights.keras"),
        "--init_weights='/no/such/weights.keras': no such file",
    ),
    (dict(num_cpu_devices=2, strategy="one_device"), "--num_cpu_devices > 1 only makes sense"),
]


@pytest.mark.parametrize("values,message", BAD, ids=[next(iter(v)) for v, _ in BAD])
def test_config_and_flags_refuse_a_bad_value_with_the_same_message(values, message):
    with pytest.raises(ValueError) as raised:
        config_lib.TrainConfig.from_flat(values)
    assert message in str(raised.value)
    flag_values, _ = _flag_values()
    args = [f"--{k}={','.join(v) if isinstance(v, list) else v}" for k, v in values.items()]
    try:
        with pytest.raises(Exception) as from_flags:
            flag_values(["prog"] + args)
        assert str(raised.value) in str(from_flags.value)
    finally:
        flag_values.unparse_flags()


def test_flat_names_round_trip_and_replace():
    cfg = config_lib.TrainConfig.from_flat(
        dict(
            model="inception_v4",
            image_size=99,
            area_range="0.05,1.0",
            batch_size=64,
            residual_scales=["1.0", "1.0", "1.0"],
            repeats=["1", "2", "1"],
            mode="train",
            seed=3,
        )
    )
    assert cfg.model.name == "inception_v4" and cfg.model.image_size == 99
    assert cfg.model.repeats == (1, 2, 1)
    # The paper's own counts name the same network as none given: one run identity.
    assert cfg.replace(repeats="4,7,3").model.repeats is None
    assert cfg.replace(model="inception_resnet_v1").model.repeats == (1, 2, 1)
    assert cfg.data.area_range == (0.05, 1.0) and cfg.model.residual_scales == (1.0, 1.0, 1.0)
    assert cfg.recipe.batch_size == 64 and cfg.run.mode == "train" and cfg.run.seed == 3
    assert config_lib.TrainConfig.from_flat(cfg.to_flat()) == cfg
    other = cfg.replace(batch_size=32, model="inception_resnet_v1")
    assert (other.recipe.batch_size, other.model.name) == (32, "inception_resnet_v1")
    assert other.model.image_size == 99 and cfg.recipe.batch_size == 64  # frozen copies
    with pytest.raises(ValueError, match="unknown config keys"):
        cfg.replace(batchsize=32)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.recipe.batch_size = 1
