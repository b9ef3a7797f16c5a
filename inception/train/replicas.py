"""What makes many replicas compute the one-device recipe: their own dropout masks, and one set
of BatchNorm moving statistics (README "Distribution", BUILD_NOTES "Multi-replica exactness")."""

import keras
import tensorflow as tf

from inception import keras_internals


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
    for layer in keras_internals.all_layers(model):
        generator = keras_internals.seed_generator(layer)
        if generator is not None and not keras_internals.draws_wrapped(generator):
            keras_internals.wrap_draws(generator, _folding_next)
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
    for layer in keras_internals.all_layers(model):
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
    shared = context.all_reduce(
        tf.distribute.ReduceOp.SUM, [tf.where(first, x, tf.zeros_like(x)) for x in values]
    )
    for variable, value in zip(variables, shared):
        variable.assign(value)
