"""Training state: what a run builds from its task and trains (``TrainState``, built in one fixed
order), and its pieces: the learning-rate schedule, the optimizer, the moving average of the
weights.

Everything that a resumed run needs lives in one ``tf.train.Checkpoint`` (``rundir.Checkpoints``):
the model (weights, BN statistics, dropout RNG state), the optimizer (slots and ``iterations``,
the global step that also positions the learning-rate schedule and the epoch), and the EMA
variables.
"""

import dataclasses
import hashlib
import math

import keras
import numpy as np
import tensorflow as tf

from inception.train import replicas


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
        return dict(
            peak=self.peak,
            decay_steps=self.decay_steps,
            decay_rate=self.decay_rate,
            warmup_steps=self.warmup_steps,
        )


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
            tf.Variable(
                v.value.read_value() if hasattr(v.value, "read_value") else v.numpy(),
                trainable=False,
                name="ema/" + v.path.replace(":", "_"),
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
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
    return bool(
        tf.reduce_all(
            [tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(v))) for v in variables]
        ).numpy()
    )


def fingerprint(variables):
    """SHA-256 over the bytes of the given weights: equal on every worker of a synchronous run."""
    digest = hashlib.sha256()
    for v in variables:
        digest.update(np.ascontiguousarray(np.asarray(v)).tobytes())
    return digest.hexdigest()[:16]


@dataclasses.dataclass
class TrainState:
    """The models, optimizer and EMA of one run, built from its task (``TrainState.build``).

    ``model`` trains (logits and aux logits); ``train_net`` is the same layers with the
    pre-pooling feature map as an extra output (the died signal); ``eval_model`` is the inference
    network that evaluation and export load the EMA weights into (``eval_sources[i]`` ->
    ``eval_targets[i]``); ``init_report``: the --init_weights import report (or None)."""

    model: keras.Model
    eval_model: keras.Model
    init_report: object
    train_net: keras.Model
    schedule: object
    optimizer: keras.optimizers.Optimizer
    moving_statistics: list
    ema: WeightAverage
    eval_sources: list
    eval_targets: list

    @classmethod
    def build(cls, task, strategy, chief):
        """``task``'s state under ``strategy``, in one fixed order: a ``--deterministic`` run
        depends on it (models, starting weights, optimizer, EMA, then per-replica dropout)."""
        with strategy.scope():
            model = task.build_model()
            eval_model = task.build_eval_model()
        # Before the optimizer (it sees only the trainable variables) and the EMA (it starts
        # from the loaded values); outside the scope so a .keras source model is not mirrored.
        init_report = task.initialize(model, chief)
        with strategy.scope():
            # The same layers with the pre-pooling feature map as an extra output, so every
            # training step also measures the "died" signal (paper section 3.3) for free.
            # ``input``, not ``inputs``: a model of one input called on a tensor, not a list
            # (Keras warns "The structure of `inputs` doesn't match" otherwise).
            train_net = keras.Model(
                model.input, list(model.outputs) + [model.get_layer("features").output]
            )
            schedule = task.build_schedule()
            optimizer = task.build_optimizer(schedule, model.trainable_variables)
            # The released trainer averages every model variable, moving statistics included.
            statistics = replicas.moving_statistics(model)
            ema = task.build_weight_average(model, statistics)
        replicas.per_replica_dropout(model)
        sources, targets = _pair_eval_variables(model, eval_model, ema)
        return cls(
            model=model,
            eval_model=eval_model,
            init_report=init_report,
            train_net=train_net,
            schedule=schedule,
            optimizer=optimizer,
            moving_statistics=statistics,
            ema=ema,
            eval_sources=sources,
            eval_targets=targets,
        )

    def rng_states(self):
        """Dropout's random-generator states: model variables that Keras does not list among the
        weights and tf.train.Checkpoint does not reach through the layers. Checkpointing them
        makes a resumed --deterministic run draw the same dropout masks as an uninterrupted one."""
        weights = {id(v) for v in self.model.weights}
        return [v for v in self.model.variables if id(v) not in weights]


def _pair_eval_variables(model, eval_model, ema):
    """eval_model variable <- its EMA average (the raw BN statistics with
    --noema_bn_statistics)."""
    averages = {id(v): a for v, a in zip(ema.model_variables, ema.values())}
    sources, targets = [], []
    for layer in eval_model.layers:
        if not layer.weights:
            continue
        source = model.get_layer(layer.name)
        if len(source.weights) != len(layer.weights):
            raise AssertionError(f"layer {layer.name}: training and inference models differ")
        for s, t in zip(source.weights, layer.weights):
            if tuple(s.shape) != tuple(t.shape):
                raise AssertionError(f"{s.path} vs {t.path}: shapes differ")
            sources.append(averages.get(id(s), s))
            targets.append(t)
    return sources, targets
