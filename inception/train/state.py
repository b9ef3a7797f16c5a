"""Training state: learning-rate schedule, optimizer, moving average of the weights.

Everything that a resumed run needs lives in one ``tf.train.Checkpoint`` (``rundir.Checkpoints``):
the model (weights, BN statistics, dropout RNG state), the optimizer (slots and ``iterations``,
the global step that also positions the learning-rate schedule and the epoch), and the EMA
variables.
"""

import hashlib
import math

import keras
import numpy as np
import tensorflow as tf


def scaled_learning_rate(base_lr, global_batch, reference_batch, rule):
    """The documented scaling rule: base_lr is the rate for ``reference_batch`` images."""
    ratio = global_batch / reference_batch
    if rule == "linear":
        return base_lr * ratio
    if rule == "sqrt":
        return base_lr * math.sqrt(ratio)
    if rule == "none":
        return base_lr
    raise ValueError(f"unknown lr scaling rule {rule!r}")


@keras.saving.register_keras_serializable(package="inception")
class WarmupStaircaseDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to ``peak`` over ``warmup_steps``, then ``peak * rate**floor(s/decay)``.

    The decay counts from step 0 (not from the end of the warm-up), like the released trainer's
    exponential decay on the global step.
    """

    def __init__(self, peak, decay_steps, decay_rate, warmup_steps=0):
        self.peak = float(peak)
        self.decay_steps = max(1, int(decay_steps))
        self.decay_rate = float(decay_rate)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        decayed = self.peak * tf.pow(self.decay_rate, tf.floor(step / self.decay_steps))
        if self.warmup_steps > 0:
            warm = self.peak * (step + 1.0) / float(self.warmup_steps)
            return tf.where(step < self.warmup_steps, tf.minimum(warm, decayed), decayed)
        return decayed

    def get_config(self):
        return dict(peak=self.peak, decay_steps=self.decay_steps, decay_rate=self.decay_rate,
                    warmup_steps=self.warmup_steps)


class PreReducedRMSprop(keras.optimizers.RMSprop):
    """TF1's RMSPropOptimizer (the released trainer's) on gradients already summed over replicas.

    Update, as in TF1 (``ApplyRMSProp``) and Keras alike: ms <- rho * ms + (1 - rho) * g^2;
    mom <- momentum * mom + lr * g / sqrt(ms + epsilon); w <- w - mom (epsilon inside the root).
    The one difference is the start: TF1 initialises the mean square ``ms`` to 1
    (``ones_initializer``), Keras to 0, which with epsilon 1.0 makes Keras' first update up to
    sqrt(1.9) = 1.38 times larger (the gap shrinks as 0.9^t). The velocity (Keras' name for ms)
    therefore starts at 1 here.

    Keras' TensorFlow optimizer all-reduces gradients inside ``apply`` and clips them before that
    reduction, i.e. per replica. The trainer instead all-reduces first and clips the global
    gradient norm (the paper's recipe), so the optimizer must not reduce a second time.
    """

    def build(self, var_list):
        if self.built:
            return
        # keras.optimizers.Optimizer.build (iterations, learning rate), not RMSprop.build, whose
        # velocities start at 0. Slot names, and so checkpoints, are Keras' own.
        super(keras.optimizers.RMSprop, self).build(var_list)
        self._velocities = self.add_optimizer_variables(var_list, "velocity", initializer="ones")
        self._momentums = []
        if self.momentum > 0:
            self._momentums = self.add_optimizer_variables(var_list, "momentum")
        self._average_gradients = []
        if self.centered:
            self._average_gradients = self.add_optimizer_variables(var_list, "average_gradient")

    def _all_reduce_sum_gradients(self, grads_and_vars):
        return list(grads_and_vars)


def make_optimizer(schedule, rho, momentum, epsilon):
    return PreReducedRMSprop(learning_rate=schedule, rho=rho, momentum=momentum, epsilon=epsilon)


class WeightAverage:
    """Exponential moving average of model variables, distributed like the variables.

    decay_t = min(decay, (1 + t) / (10 + t)) with t the global step (the released trainer's
    ``ExponentialMovingAverage(decay, num_updates)``), so short runs are not dominated by the
    initial weights. The released trainer averages every model variable (slim's model variables:
    the weights and the BatchNorm moving statistics); the trainer passes both unless told to keep
    the raw statistics. Create under the strategy's scope; call ``update`` in cross-replica
    context.
    """

    def __init__(self, variables, decay):
        self.decay = float(decay)
        self.model_variables = list(variables)
        self.averages = [
            tf.Variable(v.value.read_value() if hasattr(v.value, "read_value") else v.numpy(),
                        trainable=False, name="ema/" + v.path.replace(":", "_"),
                        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
            for v in self.model_variables
        ]

    def update(self, strategy, step):
        if self.decay <= 0:
            return
        step = tf.cast(step, tf.float32)
        decay = tf.minimum(self.decay, (1.0 + step) / (10.0 + step))

        def apply(average, value, decay):
            decay = tf.cast(decay, average.dtype)  # float64 averages: the step's own tests
            return average.assign(decay * average + (1.0 - decay) * tf.cast(value, average.dtype))

        for average, variable in zip(self.averages, self.model_variables):
            strategy.extended.update(average, apply, args=(variable.value, decay), group=False)

    def values(self):
        """The averaged weights (the raw ones when the average is off)."""
        if self.decay <= 0:
            return [v.value for v in self.model_variables]
        return self.averages


def copy_to(strategy, sources, targets):
    """targets[i] <- sources[i] on every replica (cross-replica context)."""
    def assign(target, source):
        return target.assign(tf.cast(source, target.dtype))

    for target, source in zip(targets, sources):
        target = target.value if isinstance(target, keras.Variable) else target
        source = source.value if isinstance(source, keras.Variable) else source
        strategy.extended.update(target, assign, args=(source,), group=False)


def all_finite(variables):
    return bool(tf.reduce_all([tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(v)))
                               for v in variables]).numpy())


def fingerprint(variables):
    """SHA-256 over the bytes of the given weights: equal on every worker of a synchronous run."""
    digest = hashlib.sha256()
    for v in variables:
        digest.update(np.ascontiguousarray(np.asarray(v)).tobytes())
    return digest.hexdigest()[:16]
