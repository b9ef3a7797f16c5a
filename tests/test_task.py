"""A new job is one ``train.Task`` subclass: the trainer builds, trains and validates whatever the
task describes. One task overrides the training data and the loss (each test checks one of them)
and trains a few steps of the smallest network of the training tests (conftest's trained_run:
Inception-ResNet-v1 x0.1, one block per stage)."""

import numpy as np
import pytest
import tensorflow as tf

from training_runs import no_grappler, small_config

STEPS = 3


def _config(digits_dir, model_dir):
    return small_config(
        digits_dir,
        model_dir,
        mode="train",
        batch_size=8,
        steps_per_epoch=STEPS,
        epochs=1,
        learning_rate=0.045,
        checkpoint_every_steps=1000,
        seed=0,
    )


class InMemory:
    """An input pipeline as ``Task.build_inputs`` returns one: ``input_fn(input_context)`` ->
    this input pipeline's batches (images float32 [B, S, S, 3], labels int32 [B]), and
    ``skipped_report()``. Records the contexts it was called with."""

    def __init__(self, images, labels, global_batch):
        self.images, self.labels, self.global_batch = images, labels, global_batch
        self.contexts = []

    def input_fn(self, context):
        self.contexts.append(context)
        per_replica = context.get_per_replica_batch_size(self.global_batch)
        dataset = tf.data.Dataset.from_tensor_slices((self.images, self.labels))
        return dataset.repeat().batch(per_replica, drop_remainder=True)

    def skipped_report(self):
        return "no undecodable images"


@pytest.fixture(scope="module")
def trained_task(digits_dir, tmp_path_factory):
    """One train.run of a task with its own training data AND its own loss (one trainer build
    serves both tests): (summary, the task's input pipelines, the weights' fingerprint as built)."""
    from inception import train
    from inception.train import state

    pipes, built = [], []

    class NoiseImagesNoLoss(train.Task):
        """Another dataset: sixteen images of uniform noise in [-1, 1], in memory. A loss of zero:
        every gradient is zero, so RMSProp leaves every trainable weight as built (the base
        task's loss on these images moves them, as it moves trained_run's)."""

        def initialize(self, model, chief):
            report = super().initialize(model, chief)
            built.append(state.fingerprint(model.trainable_variables))
            return report

        def build_inputs(self, training=True, epoch=0, offset=0):
            if not training:
                return super().build_inputs(training=False)
            size, rng = self.config.model.image_size, np.random.default_rng(epoch)
            images = rng.uniform(-1.0, 1.0, (16, size, size, 3)).astype("float32")
            labels = rng.integers(0, self.num_classes, 16).astype("int32")
            pipes.append(InMemory(images, labels, self.config.recipe.batch_size))
            return pipes[-1]

        def loss(self, model, labels, outputs, global_batch, num_replicas):
            loss, logits = super().loss(model, labels, outputs, global_batch, num_replicas)
            return 0.0 * loss, logits

    config = _config(digits_dir, str(tmp_path_factory.mktemp("task") / "run"))
    with no_grappler():  # test speed only
        summary = train.run(config, train.setup(config), task_class=NoiseImagesNoLoss)
    assert len(built) == 1
    return summary, pipes, built[0]


def test_a_task_with_its_own_training_data_trains_through_the_trainer(trained_task):
    summary, pipes, _ = trained_task
    assert summary["steps"] == STEPS
    assert len(pipes) == 1 and pipes[0].contexts, "the trainer did not read the task's inputs"
    assert all(isinstance(c, tf.distribute.InputContext) for c in pipes[0].contexts)


def test_a_task_with_its_own_loss_trains_through_the_trainer(trained_task):
    """The trained weights (summary.json's fingerprint) are the weights as built."""
    summary, _, built = trained_task
    assert summary["steps"] == STEPS
    assert summary["weights_fingerprint"] == built
