"""The run's input: training pipelines per epoch (seeded, resumable mid-epoch) and the
evaluation pipeline, distributed over the strategy's replicas and hosts."""

from absl import logging

from inception import data as data_lib


def pipeline(config, plan, split, seed, is_training):
    """The InputPipeline of ``split``: the dataset and training crops of ``config.data`` (unset
    crop fields: the dataset's defaults), evaluation padded to full batches of
    ``plan.eval_batch_size``."""
    return data_lib.InputPipeline(
        config.data,
        split=split,
        image_size=config.model.image_size,
        global_batch_size=config.recipe.batch_size if is_training else plan.eval_batch_size,
        is_training=is_training,
        seed=seed,
        deterministic=config.run.deterministic,
        pad_to_full_batches=not is_training,
    )


def epoch_seed(seed, epoch, offset, deterministic):
    """The pipeline seed of ``epoch`` resumed ``offset`` steps into it.

    Each epoch draws its own seed from (--seed, epoch), so an epoch's order and crops do not
    depend on when the process started. Without --deterministic a run resumed mid-epoch draws a
    fresh order for the rest of the epoch (no input work wasted); with it the seed is the
    epoch's and ``epoch_dataset`` skips the batches already trained on."""
    exact = deterministic or offset == 0
    return (seed * 7919 + epoch * 104729 + (0 if exact else offset * 15485863)) % (2**31)


def epoch_dataset(strategy, pipe, epoch, offset, deterministic):
    """The distributed training data of ``epoch`` from ``pipe`` (its pipeline,
    ``task.Task.build_inputs``), starting ``offset`` steps into it.

    A run resumed mid-epoch with --deterministic skips the ``offset`` batches already trained
    on (they are decoded and dropped: exact, costs up to one epoch of input work).
    """
    skip = offset if (deterministic and offset) else 0

    def input_fn(context):
        dataset = pipe.input_fn(context)
        if skip:
            per_step = context.num_replicas_in_sync // context.num_input_pipelines
            dataset = dataset.skip(skip * per_step)
        return dataset

    if skip:
        logging.info(
            "skipping the %d batches of epoch %d consumed before the restart", skip, epoch + 1
        )
    return strategy.distribute_datasets_from_function(input_fn)
