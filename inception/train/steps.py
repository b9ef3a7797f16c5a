"""The compiled steps: synchronous training updates, many per host call, and one distributed
evaluation batch.

Training, per replica: forward/backward -> gradients all-reduced (sum of each replica's share of
the global mean) -> global-norm clipping -> RMSProp -> BatchNorm moving statistics made one set
again (``replicas.share_moving_statistics``); then, across replicas, the EMA of the weights (and,
by default, of the moving statistics). Evaluation runs the task's validation step on each
replica's batch and sums its outputs over the replicas.

``--jit_compile`` (``TrainParts.jit_compile``): with one replica the whole update above (forward,
backward, clipping, RMSProp, BatchNorm statistics, EMA, learning rate) is one XLA computation,
the shape TPUStrategy compiles; with several replicas each replica's forward/backward is one (the
all-reduce between replicas and the update stay outside XLA: tf.distribute's cross-device
collectives on CPUs and GPUs are not XLA ops). Evaluation compiles each replica's batch.

``--steps_per_loop`` (``make_train_loop``): N updates run inside one ``tf.function`` call, their
outputs summed on the device and read once per call; the call ends early after a step whose loss
or gradient norm is not finite, or that carried a stop request.

The steps are built from what they use (``TrainParts``, ``EvalParts``): the task's loss and
validation step (``task.Task.train_step``, ``validate.Validator``) and the trainer's state;
nothing here reads a task or a config.
"""

import dataclasses
from collections.abc import Callable

import keras
import tensorflow as tf

from inception.train import replicas, state

# The top-k accuracies and errors every evaluation reports (the paper's tables: top-1 and top-5;
# its text also quotes top-3): the steps' metrics here, and evaluate.py's.
TOP_K = (1, 3, 5)
# What a call of the train step returns, summed over its updates: the global batches' summed
# loss, images, gradient norms, died counts and top-k hits, and ``steps``, the updates run; ``lr``
# and ``stop_requests`` are the last update's.
SUMMED = ("loss_sum", "count", "grad_norm_sum", "zeros", "size", "dead_channels", "steps") + tuple(
    f"top{k}" for k in TOP_K
)
LAST = ("lr", "stop_requests")


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
    """What validation uses: the inference model, the EMA values copied into it (``sources[i]``
    -> ``targets[i]``) and ``validation_step(eval_model, images, labels)`` -> one replica's
    summed loss, count and top-k hits."""

    eval_model: keras.Model
    validation_step: Callable
    sources: list
    targets: list
    jit_compile: bool = False


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
        died = {
            "zeros": tf.reduce_sum(tf.cast(tf.equal(fmap, 0.0), tf.float32)),
            "size": tf.cast(tf.size(fmap), tf.float32),
            "channel_mass": tf.reduce_sum(tf.abs(fmap), axis=[0, 1, 2]),
        }
        return loss, tf.cast(logits, tf.float32), grads, died

    return forward_backward


def _update(strategy, parts, loss_hook):
    """(images, labels, stop flag) -> one synchronous update's summed outputs (cross-replica
    context: the function ``strategy.run``s the replica step, reduces and updates the EMA)."""
    optimizer, variables = parts.optimizer, parts.variables
    num_replicas = float(strategy.num_replicas_in_sync)
    statistics = parts.moving_statistics if strategy.num_replicas_in_sync > 1 else []
    forward_backward = _forward_backward(parts, num_replicas, loss_hook)
    if parts.jit_compile and strategy.num_replicas_in_sync > 1:
        forward_backward = tf.function(forward_backward, jit_compile=True)

    def replica_step(images, labels, stop_flag):
        loss, logits, grads, died = forward_backward(images, labels)
        context = tf.distribute.get_replica_context()
        grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        # In float32 whatever the variables' dtypes (float64 ones: the step's own tests).
        norm = tf.linalg.global_norm([tf.cast(g, tf.float32) for g in grads])
        if parts.clip_norm > 0:
            grads, _ = tf.clip_by_global_norm(grads, parts.clip_norm, use_norm=norm)
        optimizer.apply(grads, variables)
        if statistics:
            replicas.share_moving_statistics(statistics)
        out = {
            "loss": loss,
            "count": tf.cast(tf.shape(labels)[0], tf.float32),
            "grad_norm": norm / num_replicas,
            # A value of this replica's own (not the shared input), so that it is reduced.
            "stop_requests": tf.identity(stop_flag),
        }
        out.update(topk_correct(logits, labels))
        out.update(died)
        return out

    def update(images, labels, stop_flag):
        per_replica = strategy.run(replica_step, args=(images, labels, stop_flag))
        sums = {
            k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
            for k, v in per_replica.items()
        }
        parts.ema.update(strategy, optimizer.iterations)
        sums["lr"] = parts.schedule(optimizer.iterations - 1)
        # Summed over the steps of a call, so computed here, on the global batch's mass.
        mass = sums.pop("channel_mass")
        sums["dead_channels"] = tf.reduce_mean(tf.cast(tf.equal(mass, 0.0), tf.float32))
        return sums

    if parts.jit_compile and strategy.num_replicas_in_sync == 1:
        return tf.function(update, jit_compile=True)
    return update


def make_train_step(strategy, parts, loss_hook=None):
    """A tf.function: (iterator, stop flag, number of steps) -> the outputs of the updates it
    ran (``SUMMED`` and ``LAST``). It runs ``number of steps`` updates, each followed by the EMA,
    unless one ends the call early (a non-finite loss or gradient norm, a stop request).

    ``stop_requests`` is the stop flag summed over every replica of every worker: a worker that
    was asked to stop (a signal) passes 1.0, and every worker learns it from the same step's
    all-reduce, so all of them stop after the same step (README "Never losing work")."""
    update = _update(strategy, parts, loss_hook)

    def one(iterator, stop_flag):
        images, labels = next(iterator)
        out = update(images, labels, stop_flag)
        loss, norm = out.pop("loss"), out.pop("grad_norm")
        # The global batch's mean loss -> its sum, so that the updates of a call add up.
        return dict(
            out,
            loss_sum=loss * out["count"],
            grad_norm_sum=norm,
            steps=tf.constant(1.0, tf.float32),
        )

    @tf.function
    def train_step(iterator, stop_flag, num_steps=1):
        sums = {k: tf.constant(0.0, tf.float32) for k in SUMMED + LAST}
        for _ in tf.range(num_steps):
            if _ends_call(sums):
                break
            out = one(iterator, stop_flag)
            sums = {k: sums[k] + out[k] if k in SUMMED else out[k] for k in sums}
        return sums

    return train_step


def _ends_call(sums):
    """After a non-finite loss or gradient norm (nothing more is trained on broken weights) or a
    stop request (the stop takes effect after the step that carried it)."""
    finite = tf.logical_and(
        tf.math.is_finite(sums["loss_sum"]), tf.math.is_finite(sums["grad_norm_sum"])
    )
    return tf.logical_or(tf.logical_not(finite), sums["stop_requests"] > 0)


def make_eval_steps(strategy, parts):
    """The EvalSteps of ``parts`` (an EvalParts) under ``strategy``."""
    validation_step, eval_model = parts.validation_step, parts.eval_model

    def replica_eval(images, labels):
        return validation_step(eval_model, images, labels)

    if parts.jit_compile:
        replica_eval = tf.function(replica_eval, jit_compile=True)

    @tf.function(reduce_retracing=True)
    def eval_step(batch):
        per_replica = strategy.run(replica_eval, args=batch)
        return {
            k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
            for k, v in per_replica.items()
        }

    @tf.function
    def load_eval_weights():
        state.copy_to(strategy, parts.sources, parts.targets)

    return EvalSteps(step=eval_step, load_weights=load_eval_weights)
