"""Where the gradient comes from: the global gradient norm of the recipe's loss, block by block.

``measure`` builds a run's task exactly as the trainer does (models, loss with label smoothing,
the aux head and weight decay, RMSProp as released), takes one batch of its training data and
reports, for the stem, every Inception / Reduction block and the head, the norm of the gradient
of the loss with respect to that block's weights and the norm of the weights themselves; then it
trains ``steps`` recipe steps (no clipping unless the config says so) and measures again on the
same batch. ``benchmarks/gradient_norms.py`` prints it; BUILD_NOTES "Gradient norms" has the
figures.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from inception.train import inputs
from inception.train import plan as plan_lib
from inception.train import state as state_lib
from inception.train import task as task_lib

HEAD = "head"  # the classifier and the aux head


@dataclasses.dataclass
class BlockNorms:
    """Per block (in network order): gradient norm, weight norm and parameter count."""

    blocks: list
    grad_norm: np.ndarray
    weight_norm: np.ndarray
    params: np.ndarray

    @property
    def global_grad_norm(self):
        return float(np.sqrt(np.sum(self.grad_norm**2)))


def block_of_variables(model):
    """[(block name, its trainable variables)] in network order; everything after the last
    block (the classifier, the aux head) is ``HEAD``."""
    groups, head = [], []
    for layer in model.layers:
        variables = layer.trainable_variables
        if not variables:
            continue
        if layer.name in ("predictions", "aux_logits"):
            head += variables
        else:
            groups.append((layer.name, variables))
    return groups + [(HEAD, head)]


def block_norms(task, train_state, images, labels):
    """BlockNorms of ``task``'s loss on one batch (training mode: batch statistics, dropout) with
    ``train_state``'s model, one replica holding the whole batch."""
    model = train_state.model
    groups = block_of_variables(model)
    variables = [v for _, vs in groups for v in vs]
    with tf.GradientTape() as tape:
        outputs = train_state.train_net(images, training=True)
        loss, _ = task.loss(model, labels, outputs, float(images.shape[0]), 1.0)
    grads = tape.gradient(loss, variables)
    grad_norm, weight_norm, params, i = [], [], [], 0
    for _, vs in groups:
        g, i = grads[i : i + len(vs)], i + len(vs)
        grad_norm.append(float(tf.linalg.global_norm(g)))
        weight_norm.append(float(tf.linalg.global_norm([v.value for v in vs])))
        params.append(sum(int(np.prod(v.shape)) for v in vs))
    return BlockNorms(
        [name for name, _ in groups], np.array(grad_norm), np.array(weight_norm), np.array(params)
    )


def measure(config, train_steps, log=print):
    """(BlockNorms at initialisation, BlockNorms after ``train_steps`` steps, the global gradient
    norm of every training step) for ``config`` (a TrainConfig) on one device."""
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    plan = plan_lib.make_plan(config, strategy)
    task = task_lib.Task(config, plan)
    train_state = state_lib.TrainState.build(task, strategy, chief=True)
    pipe = inputs.pipeline(config, plan, "train", config.run.seed, is_training=True)
    images, labels = next(iter(pipe.input_fn(None)))  # the batch both measurements use
    at_init = block_norms(task, train_state, images, labels)
    train_step = task.train_step(strategy, train_state)
    no_stop = tf.constant(0.0)
    iterator = iter(strategy.distribute_datasets_from_function(pipe.input_fn))
    norms = []
    for step in range(train_steps):
        norms.append(float(train_step(iterator, no_stop)["grad_norm_sum"]))  # one step
        if (step + 1) % max(1, train_steps // 5) == 0:
            log(f"  step {step + 1}/{train_steps}: gradient norm {norms[-1]:.2f}")
    return at_init, block_norms(task, train_state, images, labels), np.array(norms)
