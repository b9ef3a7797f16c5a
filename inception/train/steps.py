"""The compiled steps: one synchronous training update and one distributed evaluation batch.

Training, per replica: forward/backward (optionally XLA-compiled) -> gradients all-reduced (sum
of each replica's share of the global mean) -> global-norm clipping -> RMSProp -> BatchNorm
moving statistics made one set again (``replicas.share_moving_statistics``); then, across
replicas, the EMA of the weights (and, by default, of the moving statistics). Evaluation counts
only the real images of the padded last batches.

The steps are built from what they use (``TrainParts``, ``EvalParts``), given by the task
(``task.Task.train_step``, ``task.Task.eval_steps``); nothing here reads a task or a config.
"""

import dataclasses
from typing import Callable

import keras
import tensorflow as tf

from inception import data as data_lib
from inception.config import TOP_K
from inception.train import replicas
from inception.train import state


@dataclasses.dataclass
class TrainParts:
    """What one training update uses. ``loss(labels, outputs, global_batch, num_replicas)`` ->
    (this replica's loss, logits); ``moving_statistics`` are shared between replicas."""
    train_net: keras.Model
    variables: list
    loss: Callable
    optimizer: keras.optimizers.Optimizer
    ema: state.WeightAverage
    schedule: Callable
    moving_statistics: list
    global_batch: int
    clip_norm: float = 0.0
    jit_compile: bool = False


@dataclasses.dataclass
class EvalParts:
    """What evaluation uses: the inference model and the EMA values copied into it."""
    eval_model: keras.Model
    num_classes: int
    sources: list
    targets: list


@dataclasses.dataclass
class EvalSteps:
    """``step(batch)`` -> summed loss, count and top-k hits of the real images;
    ``load_weights()``: the inference model <- the EMA weights."""
    step: Callable
    load_weights: Callable


def topk_correct(scores, labels, mask=None):
    """{"top1": hits, "top3": ..., "top5": ...} of one batch (only where ``mask``)."""
    out = {}
    labels = tf.cast(labels, tf.int32)
    num_classes = scores.shape[-1]
    for k in TOP_K:
        kk = min(k, num_classes)
        top = tf.math.top_k(scores, k=kk).indices
        hit = tf.reduce_any(tf.equal(top, labels[:, None]), axis=1)
        if mask is not None:
            hit = tf.logical_and(hit, mask)
        out[f"top{k}"] = tf.reduce_sum(tf.cast(hit, tf.float32))
    return out


def _forward_backward(parts, num_replicas, loss_hook):
    """Replica context: (images, labels) -> (loss, float32 logits, gradients, died counts).

    ``loss_hook(loss, step)``, when given, may replace the loss (tests inject faults with it)."""
    global_batch, iterations = float(parts.global_batch), parts.optimizer.iterations

    def forward_backward(images, labels):
        with tf.GradientTape() as tape:
            outputs = parts.train_net(images, training=True)
            fmap = tf.cast(outputs[-1], tf.float32)
            loss, logits = parts.loss(labels, outputs, global_batch, num_replicas)
            if loss_hook is not None:
                loss = loss_hook(loss, iterations)
        grads = tape.gradient(loss, parts.variables)
        died = {"zeros": tf.reduce_sum(tf.cast(tf.equal(fmap, 0.0), tf.float32)),
                "size": tf.cast(tf.size(fmap), tf.float32),
                "channel_mass": tf.reduce_sum(tf.abs(fmap), axis=[0, 1, 2])}
        return loss, tf.cast(logits, tf.float32), grads, died

    if parts.jit_compile:
        return tf.function(forward_backward, jit_compile=True)
    return forward_backward


def make_train_step(strategy, parts, loss_hook=None):
    """A tf.function: (iterator, stop flag) -> the global batch's summed loss, counts, top-k
    hits, died counts, gradient norm, learning rate and ``stop_requests``; applies one update and
    the EMA.

    ``stop_requests`` is the stop flag summed over every replica of every worker: a worker that
    was asked to stop (a signal) passes 1.0, and every worker learns it from the same step's
    all-reduce, so all of them stop after the same step (README "Never losing work")."""
    optimizer, variables = parts.optimizer, parts.variables
    num_replicas = float(strategy.num_replicas_in_sync)
    statistics = parts.moving_statistics if strategy.num_replicas_in_sync > 1 else []
    forward_backward = _forward_backward(parts, num_replicas, loss_hook)

    def replica_step(images, labels, stop_flag):
        loss, logits, grads, died = forward_backward(images, labels)
        context = tf.distribute.get_replica_context()
        grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        norm = tf.linalg.global_norm(grads)
        if parts.clip_norm > 0:
            grads, _ = tf.clip_by_global_norm(grads, parts.clip_norm, use_norm=norm)
        optimizer.apply(grads, variables)
        if statistics:
            replicas.share_moving_statistics(statistics)
        out = {"loss": loss, "count": tf.cast(tf.shape(labels)[0], tf.float32),
               "grad_norm": norm / num_replicas,
               # A value of this replica's own (not the shared input), so that it is reduced.
               "stop_requests": tf.identity(stop_flag)}
        out.update(topk_correct(logits, labels))
        out.update(died)
        return out

    @tf.function
    def train_step(iterator, stop_flag):
        images, labels = next(iterator)
        per_replica = strategy.run(replica_step, args=(images, labels, stop_flag))
        sums = {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in per_replica.items()}
        parts.ema.update(strategy, optimizer.iterations)
        sums["lr"] = parts.schedule(optimizer.iterations - 1)
        return sums

    return train_step


def make_eval_steps(strategy, parts):
    """The EvalSteps of ``parts`` (an EvalParts) under ``strategy``."""
    eval_model, num_classes = parts.eval_model, parts.num_classes

    def replica_eval(images, labels):
        # The pipeline pads the split to full batches with PAD_LABEL examples: count only
        # the real ones.
        real = tf.not_equal(labels, data_lib.PAD_LABEL)
        probs = tf.cast(eval_model(images, training=False), tf.float32)
        onehot = tf.one_hot(labels, num_classes)
        nll = keras.losses.categorical_crossentropy(onehot, probs)
        out = {"loss": tf.reduce_sum(tf.where(real, nll, 0.0)),
               "count": tf.reduce_sum(tf.cast(real, tf.float32))}
        out.update(topk_correct(probs, labels, real))
        return out

    @tf.function(reduce_retracing=True)
    def eval_step(batch):
        per_replica = strategy.run(replica_eval, args=batch)
        return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in per_replica.items()}

    @tf.function
    def load_eval_weights():
        state.copy_to(strategy, parts.sources, parts.targets)

    return EvalSteps(step=eval_step, load_weights=load_eval_weights)
