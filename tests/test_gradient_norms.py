"""Why clipping at 2.0 is not the recipe: at initialisation the plain Inception-v4's gradient is
two orders of magnitude larger than the residual Inception-ResNet-v2's (BUILD_NOTES "Gradient
norms"; ``benchmarks/gradient_norms.py`` prints the figures, per block)."""

import numpy as np
import tensorflow as tf

from inception import recipe
from inception.experiments import gradients
from inception.train import inputs
from inception.train import plan as plan_lib
from inception.train import state as state_lib
from inception.train import task as task_lib
from inception.train.config import TrainConfig


def _norms_at_init(name, digits_dir, tmp_path):
    flags = dict(
        recipe.values("miniature"),
        model=name,
        dataset="sklearn_digits",
        data_dir=digits_dir,
        model_dir=str(tmp_path / name),
        mode="train",
        image_size=75,
        width_multiplier=0.125,
        seed=0,
        progress=False,
    )
    config = TrainConfig.from_flat(flags)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    plan = plan_lib.make_plan(config, strategy)
    task = task_lib.Task(config, plan)
    train_state = state_lib.TrainState.build(task, strategy, chief=True)
    pipe = inputs.pipeline(config, plan, "train", 0, is_training=True)
    images, labels = next(iter(pipe.input_fn(None)))
    return gradients.block_norms(task, train_state, images, labels)


def test_plain_network_gradient_is_far_larger_at_initialisation(digits_dir, tmp_path):
    v4 = _norms_at_init("inception_v4", digits_dir, tmp_path)
    irv2 = _norms_at_init("inception_resnet_v2", digits_dir, tmp_path)
    # Measured: about 3,800 against 36 (benchmarks/gradient_norms.py); the bar is 10x.
    assert v4.global_grad_norm >= 10 * irv2.global_grad_norm
    # Every variable is in exactly one group, the stem first and the head last.
    assert v4.blocks[0] == "stem" and v4.blocks[-1] == gradients.HEAD
    for norms, name in ((v4, "inception_v4"), (irv2, "inception_resnet_v2")):
        assert np.all(np.isfinite(norms.grad_norm)) and np.all(norms.weight_norm > 0), name
        assert len(norms.blocks) == len(set(norms.blocks)), name
