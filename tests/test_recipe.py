"""The training recipe's details against the released code: TF1's RMSPropOptimizer, TF-slim's
initialisers and arg scopes (weight and bias decay), and float32 classifiers under mixed precision.

References: ``tf.compat.v1.train.RMSPropOptimizer`` itself, and the formulas of TF-slim's
``variance_scaling_initializer`` (a normal of stddev sqrt(1.3 * 2 / fan_in) truncated at two
stddevs) and ``xavier_initializer`` (uniform in +-sqrt(6 / (fan_in + fan_out))), written out here.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from inception import blocks, models
from inception.train import state as train_state

NAMES = ("inception_v4", "inception_resnet_v1", "inception_resnet_v2")
WEIGHT_DECAY = 4e-5


@pytest.fixture(scope="module")
def mixed_models():
    """Each network, small, with the aux head and weight decay, built under mixed_bfloat16."""
    policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        built = {
            name: models.build(
                name,
                aux_logits=True,
                input_shape=(75, 75, 3),
                width_multiplier=0.125,
                num_classes=7,
                weight_decay=WEIGHT_DECAY,
                classifier_activation=None,
            )
            for name in NAMES
        }
    finally:
        keras.mixed_precision.set_dtype_policy(policy)
    assert keras.mixed_precision.dtype_policy().name == policy.name
    return built


# ------------------------------------------------------------------------------ optimizer --


def test_rmsprop_equals_tf1_rmsprop_optimizer():
    """Three steps of ours and of the released trainer's optimizer, same variable and gradients."""
    rng = np.random.default_rng(0)
    start = rng.normal(size=(4, 5)).astype("float32")
    # Small and large gradients: with epsilon 1.0 the mean-square start matters most for small ones.
    grads = [(rng.normal(size=(4, 5)) * scale).astype("float32") for scale in (0.05, 3.0, 0.5)]
    lr, decay, momentum, epsilon = 0.045, 0.9, 0.9, 1.0

    ours_var = keras.Variable(start)
    ours = train_state.make_optimizer(lr, decay, momentum, epsilon)
    ours.build([ours_var])
    ref_var = tf.Variable(start)
    ref = tf.compat.v1.train.RMSPropOptimizer(lr, decay=decay, momentum=momentum, epsilon=epsilon)
    for g in grads:
        ours.apply_gradients([(tf.constant(g), ours_var)])
        ref.apply_gradients([(tf.constant(g), ref_var)])
        np.testing.assert_allclose(ours_var.numpy(), ref_var.numpy(), rtol=0, atol=1e-6)
        np.testing.assert_allclose(
            ours._velocities[0].numpy(), ref.get_slot(ref_var, "rms").numpy(), rtol=0, atol=1e-6
        )
        np.testing.assert_allclose(
            ours._momentums[0].numpy(), ref.get_slot(ref_var, "momentum").numpy(), rtol=0, atol=1e-6
        )
    assert float(np.abs(ours_var.numpy() - start).max()) > 1e-2  # the steps did move the variable


# ---------------------------------------------------------------------------- initialisers --


def _fans(shape):
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_unit_normal_std():
    """Standard deviation of a unit normal truncated at +-2 (from the normal pdf and cdf)."""
    mass = math.erf(2 / math.sqrt(2))
    pdf2 = math.exp(-2.0) / math.sqrt(2 * math.pi)
    return math.sqrt(1 - 2 * 2 * pdf2 / mass)


def _slim_he_stddev(shape):
    """slim.variance_scaling_initializer(): truncated_normal(stddev=sqrt(1.3 * 2 / fan_in))."""
    return math.sqrt(1.3 * 2.0 / _fans(shape)[0])


def _xavier_limit(shape):
    """slim.xavier_initializer() (uniform): U(-limit, limit), limit = sqrt(6 / (in + out))."""
    fan_in, fan_out = _fans(shape)
    return math.sqrt(6.0 / (fan_in + fan_out))


def _conv_kernels(model):
    """Every Conv2D layer of the model, nested ones included."""
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.Conv2D)
    ]


@pytest.mark.parametrize("name", NAMES)
def test_models_build_initialises_convolutions_by_the_released_rule(mixed_models, name):
    """Pooled over every conv kernel of models.build's network, and on one large kernel drawn
    from the initializer its layers carry: the empirical spread matches slim's rule."""
    convs = _conv_kernels(mixed_models[name])
    assert len(convs) > 30
    he = name == "inception_v4"  # the Inception-ResNets use slim's conv2d default, Xavier
    rule = _slim_he_stddev if he else _xavier_limit
    # In units of the rule's parameter: slim's He is a normal(0, 1) truncated at +-2, Xavier a U(-1, 1).
    expected_std = _truncated_unit_normal_std() if he else 1 / math.sqrt(3)
    z = np.concatenate([np.ravel(c.kernel.numpy()) / rule(tuple(c.kernel.shape)) for c in convs])
    bound = 2.0 if he else 1.0
    assert z.size > 300_000
    assert abs(z.std() / expected_std - 1) < 0.01  # measured: < 0.05%
    assert np.abs(z).max() <= bound * 1.0001

    # One large kernel (4.7 M values: the std is known to 0.03%) from the initializer the layers
    # carry. Keras' HeNormal would be 0.3% narrower and truncate at 1.994, not 2, slim stddevs.
    shape = (3, 3, 512, 1024)  # fan_in 4608 != fan_avg 6912: He and Xavier differ in std
    big = keras.initializers.get(convs[-1].get_config()["kernel_initializer"])(shape)
    z = np.ravel(np.asarray(big)) / rule(shape)
    assert abs(z.std() / expected_std - 1) < 0.0015
    assert 0.999 * bound < np.abs(z).max() <= bound * 1.0001

    # Dense layers are slim's fully_connected default, Xavier, in every network.
    for dense in (
        mixed_models[name].get_layer("predictions"),
        mixed_models[name].get_layer("aux_logits").fc,
    ):
        assert dense.get_config()["kernel_initializer"]["class_name"] == "GlorotUniform"


def test_one_initializer_config_gives_independent_kernels():
    """An unseeded Keras initializer instance fixes its seed when created: shared by every layer it
    would give equal same-shaped kernels, so layers rebuild it from its config."""
    shared = keras.initializers.VarianceScaling(2.0, "fan_in", "truncated_normal")
    block = blocks.InceptionA(width_multiplier=0.25, conv_initializer=shared)
    block.build((None, 9, 9, 32))
    # b0_0 (1x1 24) and b3_1 (after the pool, 1x1 24) have the same kernel shape.
    first, second = block.b0_0.conv.kernel.numpy(), block.b3_1.conv.kernel.numpy()
    assert first.shape == second.shape
    assert not np.allclose(first, second)
    assert block.b0_0.get_config()["conv_initializer"]["class_name"] == "VarianceScaling"
    again = blocks.InceptionA.from_config(block.get_config())
    assert again.b0_0.conv_initializer == block.b0_0.conv_initializer


# --------------------------------------------------------------------------- weight decay --


@pytest.mark.parametrize("name", NAMES)
def test_weight_decay_follows_the_released_arg_scope(mixed_models, name):
    """Kernels everywhere; biases (residual expansions, classifiers) only in the Inception-ResNets,
    whose released arg scope sets biases_regularizer too. slim convention: wd * sum(w^2) / 2."""
    model = mixed_models[name]
    model(np.zeros((1, 75, 75, 3), "float32"))
    weights = model.trainable_weights
    kernels = [w for w in weights if w.path.endswith("kernel")]
    biases = [w for w in weights if w.path.endswith("bias")]
    assert any("expand" in b.path for b in biases) == (name != "inception_v4")
    # Move the biases off zero so a missing or extra bias penalty changes the sum.
    for b in biases:
        b.assign(np.full(b.shape, 0.5, "float32"))
    decayed = kernels + (biases if name != "inception_v4" else [])
    expected = sum(WEIGHT_DECAY / 2 * float(np.sum(np.square(w.numpy()))) for w in decayed)
    assert len(model.losses) == len(decayed)
    assert float(sum(np.asarray(penalty, "float64") for penalty in model.losses)) == pytest.approx(
        expected, rel=1e-4
    )


# ------------------------------------------------------------------------ mixed precision --


@pytest.mark.parametrize("name", NAMES)
def test_classifier_and_aux_logits_are_float32_under_mixed_precision(mixed_models, name):
    model = mixed_models[name]
    assert model.get_layer("stem").compute_dtype == "bfloat16"  # the body does run mixed
    main, aux = model(
        np.random.default_rng(1).uniform(-1, 1, (2, 75, 75, 3)).astype("float32"), training=False
    )
    assert keras.backend.standardize_dtype(main.dtype) == "float32"
    assert keras.backend.standardize_dtype(aux.dtype) == "float32"
    assert model.get_layer("predictions").compute_dtype == "float32"
    assert model.get_layer("aux_logits").fc.compute_dtype == "float32"


def test_died_fraction_pools_the_epochs_training_steps():
    """What --died_threshold is compared with: the exact zeros before average pooling counted over
    every training step of the epoch (not one batch, not a mean of per-step fractions)."""
    from inception.train import observe

    stats = observe.StepStats()
    # Two calls of one step each (the train step computes each step's fraction of dead channels,
    # steps.py, and sums them over a call's steps).
    for zeros, size, dead in ((3.0, 4.0, 0.5), (0.0, 12.0, 0.0)):
        out = {
            "count": 2.0,
            "loss_sum": 2.0,
            "top1": 1.0,
            "top3": 1.0,
            "top5": 2.0,
            "zeros": zeros,
            "size": size,
            "dead_channels": dead,
            "steps": 1.0,
        }
        stats.add_step(out, died=True)
    assert stats.died_fraction() == pytest.approx(3 / 16)  # the mean of 3/4 and 0/12 would be 0.375
    assert stats.dead_channels() == pytest.approx(0.25)  # half the channels dead in one step of two
