"""The training run: the paper's recipe under tf.distribute, resumable and observable.

    config = flags.config_from_flags()      # or make_config(**overrides) in tests
    strategy = setup(config)                # before any other TensorFlow work
    run(config, strategy)

One global step = one synchronous update on ``batch_size`` images spread over all replicas.
Per replica: forward/backward (optionally XLA-compiled) -> gradients all-reduced (sum of each
replica's share of the global mean) -> global-norm clipping -> RMSProp -> BatchNorm moving
statistics made one set again (``share_moving_statistics``) -> (cross-replica) EMA of the weights
and, by default, of the moving statistics. Every replica draws its own dropout masks
(``per_replica_dropout``). Evaluation pads the split to full batches and counts only real images.
Resume semantics: see ``Trainer._epoch_dataset`` and README "Training".
"""

import dataclasses
import json
import math
import os
import time
import types

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from inception import data as data_lib
from inception import flags as flags_lib
from inception import models
from inception import train_observe
from inception import train_setup
from inception import train_state

TOP_K = (1, 3, 5)


class TrainingError(RuntimeError):
    """A run that cannot go on (diverged, died with --stop_if_died, incompatible model_dir)."""


def make_config(**overrides):
    """A config with the flag defaults and ``overrides`` (for tests and library use)."""
    values = {name: flags_lib.FLAGS[name].default for name in _flag_names()}
    unknown = set(overrides) - set(values)
    if unknown:
        raise ValueError(f"unknown config keys: {sorted(unknown)}")
    values.update(overrides)
    return types.SimpleNamespace(**values)


def config_from_flags():
    return types.SimpleNamespace(**{name: flags_lib.FLAGS[name].value for name in _flag_names()})


def _flag_names():
    module = flags_lib.__name__
    return [f.name for f in flags_lib.FLAGS.get_flags_for_module(module)]


def setup(config):
    """Devices, strategy, precision and seeds: call before anything else touches TensorFlow."""
    train_setup.split_cpu(config.num_cpu_devices)
    name = train_setup.resolve_strategy_name(config.strategy, config.tpu)
    strategy = train_setup.make_strategy(name, config.tpu)
    train_setup.set_precision(config.mixed_precision)
    train_setup.set_determinism(config.seed, config.deterministic)
    logging.info("strategy %s with %d replica(s)", name, strategy.num_replicas_in_sync)
    return strategy


@dataclasses.dataclass
class Plan:
    """Everything derived from the config and the dataset before building anything."""
    info: object
    strategy_name: str
    num_replicas: int
    steps_per_epoch: int
    total_steps: int
    num_epochs: int
    eval_batch_size: int
    peak_lr: float


def check_runtime(config, strategy):
    """The checks that need the dataset or the strategy; cheap; raise ValueError with advice."""
    if config.sync_batch_norm and config.jit_compile:
        raise ValueError("--sync_batch_norm and --jit_compile cannot be combined (synchronized "
                         "BatchNorm all-reduces inside the forward pass, outside XLA's cluster); "
                         "drop one of them")
    info = data_lib.describe(config.dataset, data_dir=config.data_dir or None,
                             manual_dir=config.manual_dir or None, download=config.download)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ValueError(
            f"--batch_size={config.batch_size} is the GLOBAL batch and must divide by the "
            f"{replicas} replicas of this strategy; use e.g. "
            f"--batch_size={max(1, config.batch_size // replicas) * replicas}")
    eval_batch = config.eval_batch_size or config.batch_size
    if eval_batch % replicas:
        raise ValueError(f"--eval_batch_size={eval_batch} must divide by the {replicas} replicas")
    if config.mode != "eval":
        if info.train_split is None:
            raise ValueError(f"dataset {info.name!r} has no train split to train on")
        if config.steps_per_epoch:
            spe = config.steps_per_epoch
        else:
            if info.num_train is None:
                raise ValueError(f"the size of {info.name!r} is unknown until it is prepared; "
                                 "pass --steps_per_epoch")
            spe = info.num_train // config.batch_size
            if spe < 1:
                raise ValueError(f"--batch_size={config.batch_size} is larger than the "
                                 f"{info.num_train} training images of {info.name!r}")
    else:
        spe = config.steps_per_epoch or max(1, (info.num_train or 0) // config.batch_size)
    if config.mode != "train" and info.eval_split is None:
        raise ValueError(f"dataset {info.name!r} has no validation/test split; use --mode=train")
    total = int(math.ceil(config.epochs * spe - 1e-9))
    if config.freeze_up_to:
        blocks = models.layout_block_names(config.model, config.variant or None)
        if config.freeze_up_to not in blocks:
            raise ValueError(f"--freeze_up_to={config.freeze_up_to!r} is not a block of "
                             f"{config.model}; its blocks: {', '.join(blocks)}")
    if (config.mode == "eval" and not config.init_weights
            and not tf.train.latest_checkpoint(_ckpt_dir(config))):
        raise ValueError(f"--mode=eval needs a trained run in --model_dir={config.model_dir!r} "
                         f"but {_ckpt_dir(config)} holds no checkpoint (or pass --init_weights "
                         "to evaluate a weights file)")
    peak = train_state.scaled_learning_rate(config.learning_rate, config.batch_size,
                                            config.lr_reference_batch, config.lr_scaling)
    return Plan(info=info, strategy_name=type(strategy).__name__, num_replicas=replicas,
                steps_per_epoch=spe, total_steps=total, num_epochs=int(math.ceil(total / spe)),
                eval_batch_size=eval_batch, peak_lr=peak)


def per_replica_dropout(model):
    """Makes every replica (and every worker) of a distributed run draw its own dropout masks.

    Keras keeps a dropout layer's random state in one ``SeedGenerator`` variable, mirrored like
    the weights, and every worker starts from the same --seed: without this all replicas of a
    step would draw the same mask (32 distinct masks for a global batch of 8 x 32). The seed each
    draw uses gets the replica's global id (``replica_id_in_sync_group``, unique over workers)
    folded in, so masks differ between replicas while the shared state still advances once per
    step: it stays a function of the checkpointed state, and --deterministic runs (resumed or not)
    repeat bit for bit. Returns the number of random generators changed.
    """
    changed = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        generator = getattr(layer, "seed_generator", None)
        if isinstance(generator, keras.random.SeedGenerator) and not hasattr(
                generator, "_per_replica"):
            generator.next = _folding_next(generator.next)
            generator._per_replica = True
            changed += 1
    return changed


def _folding_next(draw):
    def next_seed(ordered=True):
        seed = draw(ordered)
        context = tf.distribute.get_replica_context()
        if context is None:  # cross-replica context: no replica to draw for
            return seed
        replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
        folded = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), replica)
        return tf.cast(folded, seed.dtype)

    return next_seed


def moving_statistics(model):
    """The BatchNorm moving means and variances, in ``model.non_trainable_weights`` order.

    Without frozen layers they are all the non-trainable weights; frozen blocks
    (--freeze_up_to) and --bn_inference add frozen kernels and betas, which are constant and
    need neither sharing between replicas nor averaging. The order is kept so checkpoints of
    earlier runs (the EMA is saved as a list) restore unchanged.
    """
    statistics = set()
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            statistics.update((id(layer.moving_mean), id(layer.moving_variance)))
    return [w for w in model.non_trainable_weights if id(w) in statistics]


def share_moving_statistics(variables):
    """Replica context: every replica's copy of ``variables`` <- global replica 0's copy.

    Keras creates BatchNorm's moving statistics with aggregation NONE, so under tf.distribute
    each replica updates only its own copy from its own batch and the copies drift apart. The
    released multi-clone trainer keeps one copy and runs the moving-average updates of the first
    clone only (model_deploy's UPDATE_OPS of clone 0); broadcasting replica 0's freshly updated
    copy after every step is exactly that. A sum where every other replica adds zeros is exact.
    """
    context = tf.distribute.get_replica_context()
    first = tf.equal(context.replica_id_in_sync_group, 0)
    values = [tf.convert_to_tensor(v) for v in variables]
    shared = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                [tf.where(first, x, tf.zeros_like(x)) for x in values])
    for variable, value in zip(variables, shared):
        variable.assign(value)


def _ckpt_dir(config):
    return os.path.join(config.model_dir, "checkpoints")


def build_options(config, num_classes):
    """models.build keyword arguments of the training model."""
    return dict(
        num_classes=num_classes,
        input_shape=(config.image_size, config.image_size, 3),
        variant=config.variant or None,
        aux_logits=bool(config.aux_logits),
        dropout_rate=config.dropout_rate,
        residual_scales=flags_lib.parse_residual_scales(config.residual_scales),
        width_multiplier=config.width_multiplier,
        bn_momentum=config.bn_momentum,
        bn_epsilon=config.bn_epsilon,
        weight_decay=config.weight_decay,
        bn_synchronized=bool(config.sync_batch_norm),
        classifier_activation=None,
    )


def inference_options(train_options):
    """The exported model: one softmax output, no aux head, plain BatchNorm."""
    return dict(train_options, aux_logits=False, classifier_activation="softmax",
                bn_synchronized=False)


# Fields that must match for a model_dir to be resumed.
# init_weights: a rerun with other initial weights is another run, not a resume (the checkpoint
# would silently win over the file).
_RUN_IDENTITY = ("model", "variant", "width_multiplier", "image_size", "num_classes", "dataset",
                 "batch_size", "steps_per_epoch", "ema_bn_statistics", "init_weights",
                 "freeze_up_to", "bn_inference")
# Fields that also change what a checkpoint holds (ema_bn_statistics: the averaged moving
# statistics; freeze_up_to, bn_inference: which variables have optimizer slots and averages), so
# --mode=eval must match them too; and their values in runs written before the field existed.
_CHECKPOINT_LAYOUT = ("ema_bn_statistics", "freeze_up_to", "bn_inference")
_RUN_DEFAULTS = {"ema_bn_statistics": False, "init_weights": "", "freeze_up_to": "",
                 "bn_inference": False}


class Trainer:
    """Builds the distributed model, optimizer, EMA and checkpoints, and runs train/eval."""

    def __init__(self, config, strategy, plan):
        self.config = config
        self.strategy = strategy
        self.plan = plan
        self.chief = train_setup.is_chief(strategy)
        self.task = train_setup.task_name(strategy)
        self.num_classes = plan.info.num_classes
        self.train_options = build_options(config, self.num_classes)
        self.infer_options = inference_options(self.train_options)
        write = self._check_run_config()
        self._build()
        # The run directory only once the model is built and its weights loaded: a refused
        # --init_weights leaves nothing behind, in particular no identity blocking the fix.
        os.makedirs(config.model_dir, exist_ok=True)
        self.observer = train_observe.Observer(config.model_dir, self.chief, config.progress)
        if write:
            self.observer.write_json("run_config.json", write)
            with open(os.path.join(self.config.model_dir, "labels.txt"), "w") as f:
                f.write("\n".join(self.plan.info.label_names) + "\n")

    # ----------------------------------------------------------------------------- building --
    def _run_config(self):
        c = self.config
        variant = c.variant or models.DEFAULT_VARIANT[c.model]
        json_options = dict(self.infer_options, input_shape=list(self.infer_options["input_shape"]))
        return {
            "model": c.model, "variant": variant, "width_multiplier": c.width_multiplier,
            "image_size": c.image_size, "num_classes": self.num_classes, "dataset": self.plan.info.name,
            "label_names": list(self.plan.info.label_names),
            "build_options": dict(json_options, name=c.model),
            "train_build_options": dict(self.train_options,
                                        input_shape=list(self.train_options["input_shape"])),
            "batch_size": c.batch_size, "steps_per_epoch": self.plan.steps_per_epoch,
            "peak_learning_rate": self.plan.peak_lr,
            "recipe": {k: getattr(c, k) for k in (
                "learning_rate", "lr_reference_batch", "lr_scaling", "lr_decay_rate",
                "lr_decay_epochs", "warmup_epochs", "rmsprop_decay", "momentum",
                "rmsprop_epsilon", "clip_norm", "label_smoothing", "weight_decay", "ema_decay",
                "aux_loss_weight", "epochs", "seed", "deterministic", "mixed_precision")},
            "ema_bn_statistics": bool(c.ema_bn_statistics),
            "init_weights": c.init_weights, "init_new_head": bool(c.init_new_head),
            "freeze_up_to": c.freeze_up_to, "bn_inference": bool(c.bn_inference),
        }

    def _check_run_config(self):
        """Refuses a model_dir of another run; returns the run_config.json to write (or None)."""
        path = os.path.join(self.config.model_dir, "run_config.json")
        current = self._run_config()
        if os.path.exists(path):
            with open(path) as f:
                previous = json.load(f)
            previous = dict(_RUN_DEFAULTS, **previous)
            eval_mode = self.config.mode == "eval"
            keys = _CHECKPOINT_LAYOUT if eval_mode else _RUN_IDENTITY
            diffs = "; ".join(f"{k}: {previous.get(k)!r} there, {current[k]!r} now"
                              for k in keys if previous.get(k) != current[k])
            if diffs and eval_mode:
                raise TrainingError(
                    f"--model_dir={self.config.model_dir!r} was trained with flags that decide "
                    f"what its checkpoints hold ({diffs}); evaluate it with those flags (e.g. "
                    "--noema_bn_statistics for a run that did not average the BatchNorm "
                    "statistics, the run's --freeze_up_to and --bn_inference).")
            if diffs:
                raise TrainingError(
                    f"--model_dir={self.config.model_dir!r} holds a different run ({diffs}). "
                    "Resume it with its own flags, or pass a new --model_dir.")
            if self.config.mode == "eval":
                return None
        return current if self.chief and self.config.mode != "eval" else None

    def _build(self):
        c, plan = self.config, self.plan
        spe = plan.steps_per_epoch
        with self.strategy.scope():
            self.model = models.build(c.model, **self.train_options)
            policy = keras.mixed_precision.dtype_policy()
            keras.mixed_precision.set_dtype_policy("float32")  # evaluate/export in float32
            try:
                self.eval_model = models.build(c.model, **self.infer_options)
            finally:
                keras.mixed_precision.set_dtype_policy(policy)
        # Before the optimizer (it sees only the trainable variables) and the EMA (it starts
        # from the loaded values); outside the scope so a .keras source model is not mirrored.
        self.init_report = self._initial_weights()
        with self.strategy.scope():
            # The same layers with the pre-pooling feature map as an extra output, so every
            # training step also measures the "died" signal (paper section 3.3) for free.
            outputs = self.model.outputs
            self.train_net = keras.Model(
                self.model.inputs, list(outputs) + [self.model.get_layer("features").output])
            schedule = train_state.WarmupStaircaseDecay(
                plan.peak_lr, decay_steps=round(c.lr_decay_epochs * spe),
                decay_rate=c.lr_decay_rate, warmup_steps=round(c.warmup_epochs * spe))
            self.schedule = schedule
            self.optimizer = train_state.make_optimizer(schedule, c.rmsprop_decay, c.momentum,
                                                        c.rmsprop_epsilon)
            self.optimizer.build(self.model.trainable_variables)
            # The released trainer averages every model variable, moving statistics included.
            self.moving_statistics = moving_statistics(self.model)
            averaged = list(self.model.trainable_variables)
            if c.ema_bn_statistics:
                averaged += self.moving_statistics
            self.ema = train_state.WeightAverage(averaged, c.ema_decay)
        per_replica_dropout(self.model)
        self._pair_eval_variables()
        self.checkpoints = train_state.Checkpoints(
            _ckpt_dir(c), self.chief, self.task, c.keep_checkpoints,
            model=self.model, optimizer=self.optimizer, ema=self.ema.averages,
            rng=self._rng_states())

    def _initial_weights(self):
        """--init_weights, --freeze_up_to, --bn_inference on the freshly built model.

        A run with a checkpoint restores it later (it holds every weight), so the file is not
        read then; freezing and BatchNorm mode are not in checkpoints and are applied anyway.
        """
        from inception.weights import finetune

        c = self.config
        resuming = bool(tf.train.latest_checkpoint(_ckpt_dir(c)))
        report = None
        if c.init_weights and not resuming:
            # Evaluating needs the file's own classifier: a fresh head would score chance.
            new_head = bool(c.init_new_head) and c.mode != "eval"
            report = finetune.load_initial_weights(
                self.model, c.init_weights, new_head=new_head,
                freeze_up_to=c.freeze_up_to or None, bn_inference=bool(c.bn_inference))
            fresh = [path for path, _ in report["left_initialized"]]
            head = ("a new classifier" if any(p.startswith("predictions/") for p in fresh)
                    else "the file's classifier")
            logging.info("initial weights from %s (%s), %s", c.init_weights,
                         report.get("format"), head)
            if self.chief:
                print(f"Initial weights: {c.init_weights} ({report.get('format')}); {head} for "
                      f"{self.num_classes} classes", flush=True)
        else:
            if c.init_weights:
                logging.info("%s holds a checkpoint: --init_weights=%s is not read",
                             _ckpt_dir(c), c.init_weights)
            if c.freeze_up_to:
                finetune.freeze(self.model, c.freeze_up_to)
            if c.bn_inference:
                finetune.set_bn_inference(self.model)
        if c.freeze_up_to or c.bn_inference:
            logging.info("%d of %d weights trainable (--freeze_up_to=%s, --bn_inference=%s)",
                         len(self.model.trainable_weights), len(self.model.weights),
                         c.freeze_up_to or "-", bool(c.bn_inference))
        return report

    def _rng_states(self):
        """Dropout's random-generator states: model variables that Keras does not list among the
        weights and tf.train.Checkpoint does not reach through the layers. Checkpointing them
        makes a resumed --deterministic run draw the same dropout masks as an uninterrupted one."""
        weights = {id(v) for v in self.model.weights}
        return [v for v in self.model.variables if id(v) not in weights]

    def _pair_eval_variables(self):
        """eval_model variable <- its EMA average (the raw BN statistics with
        --noema_bn_statistics)."""
        averages = {id(v): a for v, a in zip(self.ema.model_variables, self.ema.values())}
        self._eval_sources, self._eval_targets = [], []
        for layer in self.eval_model.layers:
            if not layer.weights:
                continue
            source = self.model.get_layer(layer.name)
            if len(source.weights) != len(layer.weights):
                raise AssertionError(f"layer {layer.name}: training and inference models differ")
            for s, t in zip(source.weights, layer.weights):
                if tuple(s.shape) != tuple(t.shape):
                    raise AssertionError(f"{s.path} vs {t.path}: shapes differ")
                self._eval_sources.append(averages.get(id(s), s))
                self._eval_targets.append(t)

    # ------------------------------------------------------------------------------- steps --
    def _make_train_step(self):
        c = self.config
        model, optimizer, strategy = self.model, self.optimizer, self.strategy
        train_net = self.train_net
        global_batch = float(c.batch_size)
        replicas = float(strategy.num_replicas_in_sync)
        variables = model.trainable_variables
        num_classes = self.num_classes
        aux_weight = c.aux_loss_weight if c.aux_logits else 0.0
        nan_step = c.test_inject_nan_at_step
        statistics = self.moving_statistics if strategy.num_replicas_in_sync > 1 else []

        def cross_entropy(labels, logits):
            onehot = tf.one_hot(labels, num_classes)
            return keras.losses.categorical_crossentropy(
                onehot, tf.cast(logits, tf.float32), from_logits=True,
                label_smoothing=c.label_smoothing)

        def forward_backward(images, labels):
            with tf.GradientTape() as tape:
                outputs = train_net(images, training=True)
                logits, aux = outputs[0], (outputs[1] if c.aux_logits else None)
                fmap = tf.cast(outputs[-1], tf.float32)
                loss = tf.reduce_sum(cross_entropy(labels, logits)) / global_batch
                if aux is not None:
                    loss += aux_weight * tf.reduce_sum(cross_entropy(labels, aux)) / global_batch
                if model.losses:
                    loss += tf.add_n([tf.cast(l, tf.float32) for l in model.losses]) / replicas
                if nan_step >= 0:
                    loss = tf.where(tf.equal(optimizer.iterations, nan_step),
                                    tf.constant(float("nan")), loss)
            grads = tape.gradient(loss, variables)
            died = {"zeros": tf.reduce_sum(tf.cast(tf.equal(fmap, 0.0), tf.float32)),
                    "size": tf.cast(tf.size(fmap), tf.float32),
                    "channel_mass": tf.reduce_sum(tf.abs(fmap), axis=[0, 1, 2])}
            return loss, tf.cast(logits, tf.float32), grads, died

        if c.jit_compile:
            forward_backward = tf.function(forward_backward, jit_compile=True)

        def replica_step(images, labels):
            loss, logits, grads, died = forward_backward(images, labels)
            context = tf.distribute.get_replica_context()
            grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            norm = tf.linalg.global_norm(grads)
            if c.clip_norm > 0:
                grads, _ = tf.clip_by_global_norm(grads, c.clip_norm, use_norm=norm)
            optimizer.apply(grads, variables)
            if statistics:
                share_moving_statistics(statistics)
            out = {"loss": loss, "count": tf.cast(tf.shape(labels)[0], tf.float32),
                   "grad_norm": norm / replicas}
            out.update(_topk_correct(logits, labels))
            out.update(died)
            return out

        @tf.function
        def train_step(iterator):
            images, labels = next(iterator)
            per_replica = strategy.run(replica_step, args=(images, labels))
            sums = {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                    for k, v in per_replica.items()}
            self.ema.update(strategy, optimizer.iterations)
            sums["lr"] = self.schedule(optimizer.iterations - 1)
            return sums

        return train_step

    def _make_eval_steps(self):
        strategy, eval_model = self.strategy, self.eval_model
        num_classes = self.num_classes

        def replica_eval(images, labels):
            # The pipeline pads the split to full batches with PAD_LABEL examples: count only
            # the real ones.
            real = tf.not_equal(labels, data_lib.PAD_LABEL)
            probs = tf.cast(eval_model(images, training=False), tf.float32)
            onehot = tf.one_hot(labels, num_classes)
            nll = keras.losses.categorical_crossentropy(onehot, probs)
            out = {"loss": tf.reduce_sum(tf.where(real, nll, 0.0)),
                   "count": tf.reduce_sum(tf.cast(real, tf.float32))}
            out.update(_topk_correct(probs, labels, real))
            return out

        @tf.function(reduce_retracing=True)
        def eval_step(batch):
            per_replica = strategy.run(replica_eval, args=batch)
            return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                    for k, v in per_replica.items()}

        @tf.function
        def load_eval_weights():
            train_state.copy_to(strategy, self._eval_sources, self._eval_targets)

        return eval_step, load_eval_weights

    # ---------------------------------------------------------------------------- datasets --
    def _pipeline(self, split, seed, is_training):
        c = self.config
        kwargs = {}
        if is_training:
            area = flags_lib.parse_area_range(c.area_range)
            if area:
                kwargs["area_range"] = area
            if c.min_object_covered >= 0:
                kwargs["min_object_covered"] = c.min_object_covered
            if c.color_distortion != "default":
                kwargs["color_distortion"] = c.color_distortion
        return data_lib.InputPipeline(
            c.dataset, split=split, image_size=c.image_size,
            global_batch_size=c.batch_size if is_training else self.plan.eval_batch_size,
            is_training=is_training, data_dir=c.data_dir or None,
            manual_dir=c.manual_dir or None, download=c.download, seed=seed,
            deterministic=c.deterministic, drop_remainder=is_training,
            pad_to_full_batches=not is_training, **kwargs)

    def _epoch_dataset(self, epoch, offset):
        """The distributed training data of ``epoch``, starting ``offset`` steps into it.

        Each epoch draws its own pipeline seed from (--seed, epoch), so an epoch's order and
        crops do not depend on when the process started. A run resumed mid-epoch with
        --deterministic skips the ``offset`` batches already trained on (they are decoded and
        dropped: exact, costs up to one epoch of input work); without --deterministic it draws
        a fresh order for the rest of the epoch instead (no input work wasted).
        """
        c = self.config
        exact = c.deterministic or offset == 0
        seed = (c.seed * 7919 + epoch * 104729 + (0 if exact else offset * 15485863)) % (2**31)
        pipe = self._pipeline("train", seed, is_training=True)
        self._train_pipe = pipe
        skip = offset if (c.deterministic and offset) else 0

        def input_fn(context):
            dataset = pipe.input_fn(context)
            if skip:
                per_step = context.num_replicas_in_sync // context.num_input_pipelines
                dataset = dataset.skip(skip * per_step)
            return dataset

        if skip:
            logging.info("skipping the %d batches of epoch %d consumed before the restart",
                         skip, epoch + 1)
        return self.strategy.distribute_datasets_from_function(input_fn)

    # --------------------------------------------------------------------------- evaluate --
    def evaluate(self):
        """Validation metrics (loss without smoothing, top-1/3/5) of the EMA weights."""
        if not hasattr(self, "_eval_fns"):
            self._eval_fns = self._make_eval_steps()
            self._eval_pipe = self._pipeline("eval", self.config.seed, is_training=False)
        eval_step, load_eval_weights = self._eval_fns
        load_eval_weights()
        dataset = self.strategy.distribute_datasets_from_function(self._eval_pipe.input_fn)
        totals = None
        for batch in dataset:
            out = {k: v.numpy() for k, v in eval_step(batch).items()}
            totals = out if totals is None else {k: totals[k] + out[k] for k in totals}
        n = max(float(totals["count"]), 1.0)
        result = {"val_loss": float(totals["loss"]) / n, "num_eval": int(totals["count"])}
        for k in TOP_K:
            result[f"val_top{k}"] = float(totals[f"top{k}"]) / n
        return result

    # ------------------------------------------------------------------------------ train --
    def restore(self):
        path = self.checkpoints.restore()
        step = int(self.optimizer.iterations.numpy())
        if path:
            spe = self.plan.steps_per_epoch
            logging.info("resuming from step %d (epoch %d, step %d of %d in it) of checkpoint %s",
                         step, step // spe + 1, step % spe, spe, path)
            print(f"Resuming from step {step} (checkpoint {path})", flush=True)
        return path, step

    def _save(self, step):
        if not train_state.all_finite(self.model.trainable_variables):
            raise TrainingError(self._diverged_message(step, "the weights are no longer finite"))
        self.checkpoints.save(step)
        self._last_good = (step, self.checkpoints.manager.latest_checkpoint)

    def _diverged_message(self, step, what):
        last = getattr(self, "_last_good", None)
        kept = (f"the last good checkpoint ({last[1]}, step {last[0]}) is kept"
                if last and last[1] else "no checkpoint was written")
        return (f"training stopped at step {step}: {what}. Nothing was saved after the last "
                f"finite step; {kept}. Lower --learning_rate, keep --clip_norm on, or check "
                "the data, then rerun the same command to resume from that checkpoint.")

    def _end_of_epoch(self, epoch, step, stats):
        """Evaluation, died signal, exported EMA model and the CSV row for epoch ``epoch``."""
        c = self.config
        row = {"epoch": epoch, "step": step, "lr": float(self.schedule(max(step - 1, 0))),
               "wall_time_s": time.time() - self.observer.start}
        died = False
        if stats is not None and stats.count:
            row.update(loss=stats.loss(), train_images_per_sec=stats.images_per_sec(),
                       died_fraction=stats.died_fraction(), dead_channels=stats.dead_channels())
            row.update({f"train_top{k}": a for k, a in zip(TOP_K, stats.accuracy())})
            self.last_died = row["died_fraction"]
            died = train_observe.check_died(row["died_fraction"], row["dead_channels"],
                                            c.died_threshold, epoch)
            self.observer.train_scalars(step, {"died_fraction": row["died_fraction"],
                                               "dead_channels": row["dead_channels"]})
        if c.mode == "train_and_eval":
            started = time.time()
            result = self.evaluate()
            logging.info("evaluation took %.1f s", time.time() - started)
            row.update(result)
            self.last_eval = result
            self.observer.val_scalars(step, {
                "loss": result["val_loss"], "top1_accuracy": result["val_top1"],
                "top3_accuracy": result["val_top3"], "top5_accuracy": result["val_top5"]})
            logging.info("epoch %g: val top-1 %.4f top-3 %.4f top-5 %.4f loss %.4f (%d images, "
                         "EMA weights)", epoch, result["val_top1"], result["val_top3"],
                         result["val_top5"], result["val_loss"], result["num_eval"])
            if self.chief:
                print(f"Epoch {epoch}: val top-1 {result['val_top1']:.4f}, top-5 "
                      f"{result['val_top5']:.4f} (EMA weights)", flush=True)
        started = time.time()
        self.export_ema_model()
        logging.info("ema_model.keras written in %.1f s", time.time() - started)
        self.observer.csv_row(row)
        if died and c.stop_if_died:
            raise TrainingError(f"stopping at epoch {epoch} (--stop_if_died): the layer before "
                                "average pooling has died; see the warning above")

    def export_ema_model(self):
        if not hasattr(self, "_eval_fns"):
            self._eval_fns = self._make_eval_steps()
            self._eval_pipe = self._pipeline("eval", self.config.seed, is_training=False)
        self._eval_fns[1]()
        if self.chief:
            train_state.save_keras_atomically(
                self.eval_model, os.path.join(self.config.model_dir, "ema_model.keras"))

    def train(self):
        c, plan = self.config, self.plan
        spe, total = plan.steps_per_epoch, plan.total_steps
        resumed_from, step = self.restore()
        self._last_good = (step, resumed_from)
        if not resumed_from and self.observer.logged_epochs():
            logging.warning("%s holds metrics of an earlier run but no checkpoint: starting from "
                            "step 0", c.model_dir)
            print(f"Warning: no checkpoint in {c.model_dir}; starting from step 0", flush=True)
        if step > total:
            logging.warning("the checkpoint is at step %d, beyond the %d steps asked for; nothing "
                            "to train", step, total)
        # A crash between an epoch-end checkpoint and its CSV row: finish that epoch's report.
        if step and step % spe == 0:
            done_epoch = step // spe
            if done_epoch not in self.observer.logged_epochs():
                self._end_of_epoch(done_epoch, step, None)
        train_step = self._make_train_step()
        stats = train_observe.StepStats()
        session = train_observe.StepStats()
        first_step = step
        while step < total:
            epoch, offset = divmod(step, spe)
            end = min((epoch + 1) * spe, total)
            iterator = iter(self._epoch_dataset(epoch, offset))
            bar = self.observer.progbar(spe, epoch, plan.num_epochs)
            stats.reset()
            while step < end:
                start = time.perf_counter()
                out = {k: v.numpy() for k, v in train_step(iterator).items()}
                seconds = time.perf_counter() - start
                step += 1
                loss = float(out["loss"])
                if not (math.isfinite(loss) and math.isfinite(float(out["grad_norm"]))):
                    what = "the loss is NaN" if math.isnan(loss) else (
                        f"the loss is {loss}" if not math.isfinite(loss)
                        else "the gradient norm is not finite")
                    raise TrainingError(self._diverged_message(step, what))
                timed = seconds if step > first_step + 1 else None  # the first step compiles
                correct = [float(out[f"top{k}"]) for k in TOP_K]
                stats.add(loss * float(out["count"]), float(out["count"]), correct, timed, out)
                session.add(loss * float(out["count"]), float(out["count"]), correct, timed)
                if bar is not None:
                    bar.update(step - epoch * spe, [
                        ("loss", stats.loss()), ("top1", stats.accuracy()[0]),
                        ("lr", float(out["lr"])),
                        ("img/s", float(out["count"]) / seconds)])
                if step % c.log_every_steps == 0 or step == end:
                    acc = stats.accuracy()
                    self.observer.train_scalars(step, {
                        "loss": stats.loss(), "learning_rate": float(out["lr"]),
                        "top1_accuracy": acc[0], "top3_accuracy": acc[1],
                        "top5_accuracy": acc[2], "images_per_sec": stats.images_per_sec(),
                        "grad_norm": float(out["grad_norm"])})
                if step % c.checkpoint_every_steps == 0 and step != end:
                    self._save(step)
            self._save(step)
            logging.info("epoch %d: %s", epoch + 1, self._train_pipe.skipped_report())
            self._end_of_epoch(epoch + 1 if step % spe == 0 else step / spe, step, stats)
        self.session_stats = session
        self.resumed_from = resumed_from
        return step

    def summary(self, step, wall_time):
        """summary.json: final validation errors, length, throughput."""
        c, plan = self.config, self.plan
        result = getattr(self, "last_eval", None)
        if result is None and c.mode == "train_and_eval":
            result = self.evaluate()
        summary = {
            "model": c.model, "variant": c.variant or models.DEFAULT_VARIANT[c.model],
            "dataset": plan.info.name, "global_batch_size": c.batch_size,
            "num_replicas": plan.num_replicas, "strategy": plan.strategy_name,
            "steps": step, "steps_per_epoch": plan.steps_per_epoch,
            "epochs": step / plan.steps_per_epoch,
            "train_images_per_sec": _finite_or_none(self.session_stats.images_per_sec()),
            "wall_time_s": wall_time,
            "resumed_from": getattr(self, "resumed_from", None),
            "weights_fingerprint": train_state.fingerprint(self.model.trainable_variables),
        }
        if result is not None:
            summary.update({f"val_top{k}_error": 1.0 - result[f"val_top{k}"] for k in TOP_K})
            summary.update({f"val_top{k}": result[f"val_top{k}"] for k in TOP_K})
            summary.update(val_loss=result["val_loss"], num_eval=result["num_eval"],
                           )
        summary["died_fraction"] = _finite_or_none(getattr(self, "last_died", None))
        self.observer.write_json("summary.json", summary)
        return summary


def _topk_correct(scores, labels, mask=None):
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


def _finite_or_none(x):
    return float(x) if x is not None and math.isfinite(x) else None


def run(config, strategy):
    """Runs ``config.mode``; returns the summary dict (train modes) or the eval result."""
    start = time.time()
    plan = check_runtime(config, strategy)
    trainer = Trainer(config, strategy, plan)
    if config.mode == "eval":
        path, step = trainer.restore()
        result = trainer.evaluate()
        result.update({f"val_top{k}_error": 1.0 - result[f"val_top{k}"] for k in TOP_K})
        # Without a checkpoint the EMA holds exactly the --init_weights values.
        result.update(step=step, checkpoint=path, init_weights=None if path else config.init_weights)
        trainer.observer.write_json("eval.json", result)
        what = f"{path} (EMA weights)" if path else f"--init_weights={config.init_weights}"
        if path and config.init_weights:
            print(f"{config.model_dir} holds checkpoint {path}: it is evaluated, not "
                  f"--init_weights (use another --model_dir to evaluate the file)", flush=True)
        print(f"Evaluation of {what}: top-1 error {result['val_top1_error']:.4f}, "
              f"top-3 {result['val_top3_error']:.4f}, top-5 {result['val_top5_error']:.4f} on "
              f"{result['num_eval']} images", flush=True)
        return result
    step = trainer.train()
    logging.info("training loop done after %.1f s", time.time() - start)
    summary = trainer.summary(step, time.time() - start)
    logging.info("final weights fingerprint (%s): %s", trainer.task, summary["weights_fingerprint"])
    print(f"[{trainer.task}] final weights fingerprint: {summary['weights_fingerprint']}",
          flush=True)
    if "val_top1_error" in summary:
        print(f"Done: {step} steps, val top-1 error {summary['val_top1_error']:.4f}, top-5 "
              f"{summary['val_top5_error']:.4f}; summary in "
              f"{os.path.join(config.model_dir, 'summary.json')}", flush=True)
    return summary
