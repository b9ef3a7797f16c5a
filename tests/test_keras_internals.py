"""The Keras internals of ``inception/keras_internals.py`` still exist and behave as the code relies
on. Each failure names what changed in this Keras version and what to update."""

import keras
import numpy as np

from inception import keras_internals

VERSION = f"Keras {keras.__version__}"


class _Block(keras.layers.Layer):
    """A layer holding layers, the way the networks' blocks do."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(3, name="inner_dense")
        self.dropout = keras.layers.Dropout(0.5, seed=1, name="inner_dropout")

    def call(self, x, training=False):
        return self.dropout(self.dense(x), training=training)


def _model():
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(_Block(name="block")(inputs)))


def test_flatten_layers_reaches_nested_layers():
    assert hasattr(keras.layers.Layer, "_flatten_layers"), (
        f"{VERSION} has no Layer._flatten_layers: update keras_internals.all_layers (used by "
        "train.replicas and weights.finetune to reach the layers inside blocks)"
    )
    model = _model()
    names = [layer.name for layer in keras_internals.all_layers(model)]
    assert model.name not in names, (
        f"{VERSION}: _flatten_layers(include_self=False) lists the model itself"
    )
    assert {"block", "inner_dense", "inner_dropout", "head"} <= set(names), (
        f"{VERSION}: _flatten_layers(recursive=True) no longer yields the layers inside a layer "
        f"(got {names}): update keras_internals.all_layers"
    )
    assert len(names) == len(set(names)), f"{VERSION}: _flatten_layers lists a layer twice: {names}"


def test_dropout_draws_through_its_seed_generators_next():
    layer = keras.layers.Dropout(0.5, seed=3)
    generator = keras_internals.seed_generator(layer)
    assert generator is not None, (
        f"{VERSION}: Dropout keeps no keras.random.SeedGenerator in `seed_generator`: update "
        "keras_internals.seed_generator (train.replicas.per_replica_dropout finds dropout by it)"
    )
    assert not keras_internals.draws_wrapped(generator), (
        f"{VERSION}: a fresh SeedGenerator has an attribute `_per_replica` of its own: rename "
        "keras_internals._PER_REPLICA, our mark"
    )
    calls = []

    def wrap(draw):
        def next_seed(ordered=True):
            calls.append(ordered)
            return draw(ordered)

        return next_seed

    x = np.ones((4, 64), "float32")
    start = np.array(generator.state)
    keras_internals.wrap_draws(generator, wrap)
    assert keras_internals.draws_wrapped(generator)
    first = np.array(layer(x, training=True))
    assert calls, (
        f"{VERSION}: Dropout no longer draws through its SeedGenerator's `next` looked "
        "up on the instance: per-replica dropout (train.replicas) would silently give "
        "every replica the same mask; update keras_internals.wrap_draws"
    )
    generator.state.assign(start)
    again = np.array(layer(x, training=True))
    assert np.array_equal(first == 0, again == 0), (
        f"{VERSION}: the same SeedGenerator state no longer draws the same dropout mask (resumed "
        "--deterministic runs depend on it)"
    )


def test_wrapped_seeds_change_the_masks():
    """The seed the wrapper returns is the one the draw uses (replicas fold their id into it)."""
    import tensorflow as tf

    layer = keras.layers.Dropout(0.5, seed=3)
    generator = keras_internals.seed_generator(layer)
    start = np.array(generator.state)
    x = np.ones((4, 64), "float32")
    plain = np.array(layer(x, training=True))
    generator.state.assign(start)

    def fold(draw):
        def next_seed(ordered=True):
            seed = draw(ordered)
            return tf.cast(
                tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), 1), seed.dtype
            )

        return next_seed

    keras_internals.wrap_draws(generator, fold)
    folded = np.array(layer(x, training=True))
    assert not np.array_equal(plain == 0, folded == 0), (
        f"{VERSION}: dropout ignores the seed its SeedGenerator's `next` returns; update "
        "keras_internals.wrap_draws"
    )


def test_per_replica_dropout_finds_nested_dropout_once():
    """train.replicas.per_replica_dropout through these functions, on a dropout inside a block."""
    from inception.train import replicas

    model = _model()
    assert replicas.per_replica_dropout(model) == 1
    assert replicas.per_replica_dropout(model) == 0  # wrapped once
