"""The task (TF Model Garden's meaning): the training and inference models, the starting weights,
the loss, the optimizer, the moving average of the weights and the compiled train and eval steps
of one run. Built in one fixed order (a ``--deterministic`` run depends on it: models, starting
weights, optimizer, EMA); the build options are the plan's (``plan.build_options``)."""

import keras
import tensorflow as tf
from absl import logging

from inception import models
from inception.train import replicas
from inception.train import rundir
from inception.train import state
from inception.train import steps


class Task:
    """The models, loss, optimizer, EMA and steps of one run, built under ``strategy``.

    ``model`` trains (logits and aux logits), ``train_net`` is the same layers with the
    pre-pooling feature map as an extra output (the died signal), ``eval_model`` is the
    inference network that evaluation and export load the EMA weights into
    (``eval_sources[i]`` -> ``eval_targets[i]``). ``train_step`` and ``eval_steps`` compile the
    steps (``steps.py``)."""

    def __init__(self, config, strategy, plan, chief):
        self.config, self.strategy = config, strategy
        self.num_classes = plan.info.num_classes
        self.train_options = plan.train_options
        self.infer_options = plan.inference_options
        with strategy.scope():
            self.model = models.build(config.model.name, **self.train_options)
            policy = keras.mixed_precision.dtype_policy()
            keras.mixed_precision.set_dtype_policy("float32")  # evaluate/export in float32
            try:
                self.eval_model = models.build(config.model.name, **self.infer_options)
            finally:
                keras.mixed_precision.set_dtype_policy(policy)
        # Before the optimizer (it sees only the trainable variables) and the EMA (it starts
        # from the loaded values); outside the scope so a .keras source model is not mirrored.
        self.init_report = initial_weights(config, self.model, chief, self.num_classes)
        with strategy.scope():
            self._build_training(plan)
        replicas.per_replica_dropout(self.model)
        self.eval_sources, self.eval_targets = self._pair_eval_variables()

    def _build_training(self, plan):
        r, spe = self.config.recipe, plan.steps_per_epoch
        # The same layers with the pre-pooling feature map as an extra output, so every
        # training step also measures the "died" signal (paper section 3.3) for free.
        outputs = self.model.outputs
        # ``input``, not ``inputs``: a model of one input called on a tensor, not a list (Keras
        # warns "The structure of `inputs` doesn't match" otherwise).
        self.train_net = keras.Model(
            self.model.input, list(outputs) + [self.model.get_layer("features").output])
        self.schedule = state.WarmupStaircaseDecay(
            plan.peak_lr, decay_steps=round(r.lr_decay_epochs * spe),
            decay_rate=r.lr_decay_rate, warmup_steps=round(r.warmup_epochs * spe))
        self.optimizer = state.make_optimizer(self.schedule, r.rmsprop_decay, r.momentum,
                                              r.rmsprop_epsilon)
        self.optimizer.build(self.model.trainable_variables)
        # The released trainer averages every model variable, moving statistics included.
        self.moving_statistics = replicas.moving_statistics(self.model)
        averaged = list(self.model.trainable_variables)
        if r.ema_bn_statistics:
            averaged += self.moving_statistics
        self.ema = state.WeightAverage(averaged, r.ema_decay)

    def loss(self, labels, outputs, global_batch, num_replicas):
        """This replica's share of the global mean loss: smoothed cross-entropy of the logits,
        plus the weighted aux loss, plus its share of the weight decay. Returns (loss, logits)."""
        r = self.config.recipe
        aux_logits = self.config.model.aux_logits
        logits, aux = outputs[0], (outputs[1] if aux_logits else None)
        loss = tf.reduce_sum(self._cross_entropy(labels, logits)) / global_batch
        if aux is not None:
            loss += r.aux_loss_weight * tf.reduce_sum(self._cross_entropy(labels, aux)) / global_batch
        if self.model.losses:
            penalties = [tf.cast(l, tf.float32) for l in self.model.losses]
            loss += tf.add_n(penalties) / num_replicas
        return loss, logits

    def _cross_entropy(self, labels, logits):
        onehot = tf.one_hot(labels, self.num_classes)
        return keras.losses.categorical_crossentropy(
            onehot, tf.cast(logits, tf.float32), from_logits=True,
            label_smoothing=self.config.recipe.label_smoothing)

    def train_step(self, loss_hook=None):
        """The compiled training update (``steps.make_train_step``)."""
        r, run = self.config.recipe, self.config.run
        statistics = self.moving_statistics
        parts = steps.TrainParts(
            train_net=self.train_net, variables=self.model.trainable_variables, loss=self.loss,
            optimizer=self.optimizer, ema=self.ema, schedule=self.schedule,
            moving_statistics=statistics, global_batch=r.batch_size, clip_norm=r.clip_norm,
            jit_compile=bool(run.jit_compile))
        return steps.make_train_step(self.strategy, parts, loss_hook)

    def eval_steps(self):
        """The compiled evaluation step and EMA-weight loader (``steps.EvalSteps``)."""
        parts = steps.EvalParts(eval_model=self.eval_model, num_classes=self.num_classes,
                                sources=self.eval_sources, targets=self.eval_targets,
                                jit_compile=bool(self.config.run.jit_compile))
        return steps.make_eval_steps(self.strategy, parts)

    def rng_states(self):
        """Dropout's random-generator states: model variables that Keras does not list among the
        weights and tf.train.Checkpoint does not reach through the layers. Checkpointing them
        makes a resumed --deterministic run draw the same dropout masks as an uninterrupted one."""
        weights = {id(v) for v in self.model.weights}
        return [v for v in self.model.variables if id(v) not in weights]

    def _pair_eval_variables(self):
        """eval_model variable <- its EMA average (the raw BN statistics with
        --noema_bn_statistics)."""
        averages = {id(v): a for v, a in zip(self.ema.model_variables, self.ema.values())}
        sources, targets = [], []
        for layer in self.eval_model.layers:
            if not layer.weights:
                continue
            source = self.model.get_layer(layer.name)
            if len(source.weights) != len(layer.weights):
                raise AssertionError(f"layer {layer.name}: training and inference models differ")
            for s, t in zip(source.weights, layer.weights):
                if tuple(s.shape) != tuple(t.shape):
                    raise AssertionError(f"{s.path} vs {t.path}: shapes differ")
                sources.append(averages.get(id(s), s))
                targets.append(t)
        return sources, targets


def initial_weights(config, model, chief, num_classes):
    """--init_weights, --freeze_up_to, --bn_inference on the freshly built model; returns the
    import report (None when no file is read).

    A run with a checkpoint restores it later (it holds every weight), so the file is not
    read then; freezing and BatchNorm mode are not in checkpoints and are applied anyway.
    """
    from inception.weights import finetune

    m = config.model
    checkpoints = rundir.checkpoint_dir(config.run.model_dir)
    resuming = bool(rundir.checkpoint_candidates(checkpoints))
    report = None
    if m.init_weights and not resuming:
        # Evaluating needs the file's own classifier: a fresh head would score chance.
        new_head = bool(m.init_new_head) and config.run.mode != "eval"
        report = finetune.load_initial_weights(
            model, m.init_weights, new_head=new_head,
            freeze_up_to=m.freeze_up_to or None, bn_inference=bool(m.bn_inference))
        fresh = [path for path, _ in report["left_initialized"]]
        head = ("a new classifier" if any(p.startswith("predictions/") for p in fresh)
                else "the file's classifier")
        logging.info("initial weights from %s (%s), %s", m.init_weights, report.get("format"),
                     head)
        if chief:
            print(f"Initial weights: {m.init_weights} ({report.get('format')}); {head} for "
                  f"{num_classes} classes", flush=True)
    else:
        if m.init_weights:
            logging.info("%s holds a checkpoint: --init_weights=%s is not read", checkpoints,
                         m.init_weights)
        if m.freeze_up_to:
            finetune.freeze(model, m.freeze_up_to)
        if m.bn_inference:
            finetune.set_bn_inference(model)
    if m.freeze_up_to or m.bn_inference:
        logging.info("%d of %d weights trainable (--freeze_up_to=%s, --bn_inference=%s)",
                     len(model.trainable_weights), len(model.weights), m.freeze_up_to or "-",
                     bool(m.bn_inference))
    return report
