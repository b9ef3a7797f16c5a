"""The task (TF Model Garden's meaning): the stateless description of one training job.

It says how to build the models, the starting weights, the inputs, the learning-rate schedule,
the optimizer and the moving average of the weights, what the loss is, and what one training and
one validation step compute. It holds no model and no variable: the trainer builds the state
from it (``state.TrainState.build``, in the one fixed order a ``--deterministic`` run depends on)
and owns it. A new job (fine-tuning, another dataset, another loss) is a subclass that overrides
the methods it changes; ``trainer.Trainer(..., task=...)`` and ``trainer.run(...,
task_class=...)`` take it.
"""

import keras
import tensorflow as tf
from absl import logging

from inception import data as data_lib
from inception import models
from inception.train import inputs, rundir, state, steps
from inception.train.steps import TOP_K


class Task:
    """The paper's image classification recipe on ``config``'s dataset, sized by ``plan``."""

    def __init__(self, config, plan):
        self.config, self.plan = config, plan
        self.num_classes = plan.info.num_classes

    def build_model(self):
        """The training network: logits and, with --aux_logits, the aux logits."""
        return models.build(self.config.model.name, **self.plan.train_options)

    def build_eval_model(self):
        """The inference network (softmax, no aux head) in float32, whatever the training
        precision: evaluation and ``ema_model.keras`` use it."""
        policy = keras.mixed_precision.dtype_policy()
        keras.mixed_precision.set_dtype_policy("float32")
        try:
            return models.build(self.config.model.name, **self.plan.inference_options)
        finally:
            keras.mixed_precision.set_dtype_policy(policy)

    def initialize(self, model, chief):
        """The starting weights of the fresh training ``model`` (--init_weights, --freeze_up_to,
        --bn_inference); returns the import report (None when no file is read)."""
        return initial_weights(self.config, model, chief, self.num_classes)

    def build_inputs(self, training=True, epoch=0, offset=0):
        """The input pipeline (``data.InputPipeline``: ``input_fn(input_context)`` -> this input
        pipeline's batches, ``skipped_report()``) of the training split for ``epoch``, resumed
        ``offset`` steps into it (``inputs.epoch_seed``), or, not ``training``, of the validation
        split in full batches of ``plan.eval_batch_size``."""
        run = self.config.run
        if not training:
            return inputs.pipeline(self.config, self.plan, "eval", run.seed, is_training=False)
        seed = inputs.epoch_seed(run.seed, epoch, offset, run.deterministic)
        return inputs.pipeline(self.config, self.plan, "train", seed, is_training=True)

    def build_schedule(self):
        """The learning rate per step: linear warm-up, then staircase exponential decay."""
        r, spe = self.config.recipe, self.plan.steps_per_epoch
        return state.WarmupStaircaseDecay(
            self.plan.peak_lr,
            decay_steps=round(r.lr_decay_epochs * spe),
            decay_rate=r.lr_decay_rate,
            warmup_steps=round(r.warmup_epochs * spe),
        )

    def build_optimizer(self, schedule, variables):
        """RMSProp on ``schedule``, its slots built for ``variables`` (the trainable ones)."""
        r = self.config.recipe
        optimizer = state.make_optimizer(schedule, r.rmsprop_decay, r.momentum, r.rmsprop_epsilon)
        optimizer.build(variables)
        return optimizer

    def build_weight_average(self, model, moving_statistics):
        """The EMA of the trainable variables and (the released trainer's default,
        --ema_bn_statistics) of the BatchNorm ``moving_statistics``."""
        r = self.config.recipe
        averaged = list(model.trainable_variables)
        if r.ema_bn_statistics:
            averaged += moving_statistics
        return state.WeightAverage(averaged, r.ema_decay)

    def loss(self, model, labels, outputs, global_batch, num_replicas):
        """This replica's share of the global mean loss (Model Garden's ``build_losses``):
        smoothed cross-entropy of the logits, plus the weighted aux loss, plus its share of
        ``model``'s weight decay. Returns (loss, logits)."""
        r = self.config.recipe
        aux_logits = self.config.model.aux_logits
        logits, aux = outputs[0], (outputs[1] if aux_logits else None)
        loss = tf.reduce_sum(self._cross_entropy(labels, logits)) / global_batch
        if aux is not None:
            loss += (
                r.aux_loss_weight * tf.reduce_sum(self._cross_entropy(labels, aux)) / global_batch
            )
        if model.losses:
            penalties = [tf.cast(penalty, tf.float32) for penalty in model.losses]
            loss += tf.add_n(penalties) / num_replicas
        return loss, logits

    def _cross_entropy(self, labels, logits):
        onehot = tf.one_hot(labels, self.num_classes)
        return keras.losses.categorical_crossentropy(
            onehot,
            tf.cast(logits, tf.float32),
            from_logits=True,
            label_smoothing=self.config.recipe.label_smoothing,
        )

    def train_step(self, strategy, train_state, loss_hook=None):
        """The compiled training update of ``train_state`` (``steps.make_train_step``: forward,
        ``loss``, backward, RMSProp, EMA, many per call)."""
        r, run, s = self.config.recipe, self.config.run, train_state

        def loss(labels, outputs, global_batch, num_replicas):
            return self.loss(s.model, labels, outputs, global_batch, num_replicas)

        parts = steps.TrainParts(
            train_net=s.train_net,
            variables=s.model.trainable_variables,
            loss=loss,
            optimizer=s.optimizer,
            ema=s.ema,
            schedule=s.schedule,
            moving_statistics=s.moving_statistics,
            global_batch=r.batch_size,
            clip_norm=r.clip_norm,
            jit_compile=bool(run.jit_compile),
        )
        return steps.make_train_step(strategy, parts, loss_hook)

    def validation_step(self, model, images, labels):
        """One replica's batch of the validation split through the inference ``model``: summed
        loss (no smoothing), count and top-k hits of the real images (the pipeline pads the
        split to full batches with ``PAD_LABEL`` examples, left out here)."""
        real = tf.not_equal(labels, data_lib.PAD_LABEL)
        probs = tf.cast(model(images, training=False), tf.float32)
        onehot = tf.one_hot(labels, self.num_classes)
        nll = keras.losses.categorical_crossentropy(onehot, probs)
        out = {
            "loss": tf.reduce_sum(tf.where(real, nll, 0.0)),
            "count": tf.reduce_sum(tf.cast(real, tf.float32)),
        }
        out.update(steps.topk_correct(probs, labels, real))
        return out

    def aggregate(self, totals, outputs):
        """``totals`` (None at first) plus one validation batch's summed ``outputs`` (NumPy)."""
        return outputs if totals is None else {k: totals[k] + outputs[k] for k in totals}

    def validation_result(self, totals):
        """The validation metrics of the aggregated sums: val_loss, val_top1/3/5, num_eval."""
        n = max(float(totals["count"]), 1.0)
        result = {"val_loss": float(totals["loss"]) / n, "num_eval": int(totals["count"])}
        for k in TOP_K:
            result[f"val_top{k}"] = float(totals[f"top{k}"]) / n
        return result


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
            model,
            m.init_weights,
            new_head=new_head,
            freeze_up_to=m.freeze_up_to or None,
            bn_inference=bool(m.bn_inference),
        )
        fresh = [path for path, _ in report["left_initialized"]]
        head = (
            "a new classifier"
            if any(p.startswith("predictions/") for p in fresh)
            else "the file's classifier"
        )
        logging.info("initial weights from %s (%s), %s", m.init_weights, report.get("format"), head)
        if chief:
            print(
                f"Initial weights: {m.init_weights} ({report.get('format')}); {head} for "
                f"{num_classes} classes",
                flush=True,
            )
    else:
        if m.init_weights:
            logging.info(
                "%s holds a checkpoint: --init_weights=%s is not read", checkpoints, m.init_weights
            )
        if m.freeze_up_to:
            finetune.freeze(model, m.freeze_up_to)
        if m.bn_inference:
            finetune.set_bn_inference(model)
    if m.freeze_up_to or m.bn_inference:
        logging.info(
            "%d of %d weights trainable (--freeze_up_to=%s, --bn_inference=%s)",
            len(model.trainable_weights),
            len(model.weights),
            m.freeze_up_to or "-",
            bool(m.bn_inference),
        )
    return report
