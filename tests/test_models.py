"""The three networks against independent references: the paper's tables (docs/paper.md),
keras.applications' InceptionResNetV2 and InceptionV3, and Keras' own serialisation.
tests/test_networks.py checks the registry of NetworkSpecs they are built from."""

import re

import keras
import numpy as np
import pytest

from inception import blocks, models, networks
from inception.compute import count_macs

# Every block's output at 299x299, from the paper's figures (docs/paper.md "The networks").
EXPECTED = {
    ("inception_v4", None): (
        [("stem", 35, 384)]
        + [(f"inception_a_{i}", 35, 384) for i in range(1, 5)]
        + [("reduction_a", 17, 1024)]
        + [(f"inception_b_{i}", 17, 1024) for i in range(1, 8)]
        + [("reduction_b", 8, 1536)]
        + [(f"inception_c_{i}", 8, 1536) for i in range(1, 4)]
        + [("features", 8, 1536)]
    ),
    ("inception_resnet_v1", None): (
        [("stem", 35, 256)]
        + [(f"inception_resnet_a_{i}", 35, 256) for i in range(1, 6)]
        + [("reduction_a", 17, 896)]
        + [(f"inception_resnet_b_{i}", 17, 896) for i in range(1, 11)]
        + [("reduction_b", 8, 1792)]
        + [(f"inception_resnet_c_{i}", 8, 1792) for i in range(1, 6)]
        + [("features", 8, 1792)]
    ),
    ("inception_resnet_v2", None): (  # the default variant: the released network
        [("stem", 35, 320)]
        + [(f"inception_resnet_a_{i}", 35, 320) for i in range(1, 11)]
        + [("reduction_a", 17, 1088)]
        + [(f"inception_resnet_b_{i}", 17, 1088) for i in range(1, 21)]
        + [("reduction_b", 8, 2080)]
        + [(f"inception_resnet_c_{i}", 8, 2080) for i in range(1, 11)]
        + [("conv_7b", 8, 1536), ("features", 8, 1536)]
    ),
    ("inception_resnet_v2", "paper"): (
        [("stem", 35, 384)]
        + [(f"inception_resnet_a_{i}", 35, 384) for i in range(1, 6)]
        + [("reduction_a", 17, 1152)]
        + [(f"inception_resnet_b_{i}", 17, 1152) for i in range(1, 11)]
        + [("reduction_b", 8, 2144)]
        + [(f"inception_resnet_c_{i}", 8, 2144) for i in range(1, 6)]
        + [("features", 8, 2144)]
    ),
}


# keras.applications' InceptionResNetV2 and TF-slim's released Inception-v4 at 1000 classes
# without the aux head: (all weights, trainable weights).
REFERENCE_PARAMETERS = {
    ("inception_v4", None): (42_711_400, 42_648_232),
    ("inception_resnet_v2", None): (55_873_736, 55_813_192),
}


@pytest.fixture(scope="module")
def full_models():
    """Every network at full size, built once (about 5 s) for the shape, name, parameter, cost and
    keras.applications checks; the last overwrites Inception-ResNet-v2's weights, which no other
    check reads."""
    return {key: models.build(key[0], variant=key[1]) for key in EXPECTED}


def _count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


@pytest.mark.parametrize("key", list(EXPECTED), ids=lambda k: f"{k[0]}-{k[1]}")
def test_every_block_output_shape_matches_the_paper(full_models, key):
    model = full_models[key]
    ends = models.endpoints(model)
    expected = EXPECTED[key]
    assert list(ends.output) == [name for name, _, _ in expected]
    for name, side, channels in expected:
        assert tuple(ends.output[name].shape) == (None, side, side, channels), name
    assert tuple(model.output.shape) == (None, 1000)


@pytest.mark.parametrize("key", list(EXPECTED), ids=lambda k: f"{k[0]}-{k[1]}")
def test_block_names_read_from_the_layouts_equal_the_built_models(full_models, key):
    assert models.layout_block_names(*key) == models.block_names(full_models[key])


@pytest.mark.parametrize("key", list(REFERENCE_PARAMETERS), ids=lambda k: k[0])
def test_default_variants_have_the_reference_parameter_counts(full_models, key):
    """A network built without a variant is the released one: Inception-ResNet-v2's default is
    keras.applications' network, parameter for parameter."""
    model = full_models[key]
    assert (_count(model.weights), _count(model.trainable_weights)) == REFERENCE_PARAMETERS[key]
    assert (
        model.name
        == {"inception_v4": "inception_v4", "inception_resnet_v2": "inception_resnet_v2_release"}[
            key[0]
        ]
    )


def _ref_weights_for(ours, ref):
    """For each of our weights, the keras.applications variable that plays the same role.

    keras.applications names only the residual up-projections (``block35_3_conv``) and
    ``conv_7b``; every other conv/BN pair is auto-named in creation order (``conv2d_17`` with
    ``batch_normalization_17``), which is the order of our blocks' tables.
    """

    def index(layer, base):
        m = re.fullmatch(base + r"(?:_(\d+))?", layer.name)
        return None if m is None else int(m.group(1) or 0)

    def ordered(base):
        return sorted(
            (layer for layer in ref.layers if index(layer, base) is not None),
            key=lambda layer: index(layer, base),
        )

    pairs = iter(zip(ordered("conv2d"), ordered("batch_normalization")))
    kind = {"a": "block35", "b": "block17", "c": "block8"}
    mapping, current = [], None
    for w in ours.weights:
        parts = w.path.split("/")
        if parts[1:2] == ["expand"]:
            m = re.fullmatch(r"inception_resnet_([abc])_(\d+)", parts[0])
            src = ref.get_layer(f"{kind[m.group(1)]}_{m.group(2)}_conv")
            mapping.append((w, getattr(src, parts[-1])))
            continue
        if parts[0] == "predictions":
            mapping.append((w, getattr(ref.get_layer("predictions"), parts[-1])))
            continue
        if parts[0] == "conv_7b":
            current = ref.get_layer("conv_7b"), ref.get_layer("conv_7b_bn")
        elif parts[-2] == "conv":
            current = next(pairs)
        conv, bn = current
        mapping.append((w, conv.kernel if parts[-2] == "conv" else getattr(bn, parts[-1])))
    assert next(pairs, None) is None, "keras.applications has convolutions we did not use"
    return mapping


def test_irv2_release_is_keras_applications_inception_resnet_v2(full_models):
    ref = keras.applications.InceptionResNetV2(weights=None, classifier_activation=None)
    ours = full_models[("inception_resnet_v2", None)]
    # The shared model ends in a softmax; its logits are the classifier's input times its kernel,
    # plus its bias (the dropout before it is the identity at inference).
    classifier = ours.get_layer("predictions")
    before_classifier = keras.Model(ours.input, classifier.input)

    def logits(x):
        return (
            np.asarray(before_classifier(x, training=False)) @ classifier.kernel.numpy()
            + classifier.bias.numpy()
        )

    mapping = _ref_weights_for(ours, ref)
    assert len(mapping) == len(ours.weights) == len(ref.weights)
    assert len({id(r) for _, r in mapping}) == len(ref.weights)
    rng = np.random.default_rng(0)
    # Non-trivial BatchNorm statistics and biases, so a swapped branch cannot go unnoticed.
    for _, r in mapping:
        if r.path.endswith("moving_variance"):
            r.assign(rng.uniform(0.5, 1.5, r.shape).astype("float32"))
        elif r.path.endswith(("moving_mean", "beta", "bias")):
            r.assign(rng.normal(0.0, 0.1, r.shape).astype("float32"))
    for w, r in mapping:
        assert tuple(w.shape) == tuple(r.shape), (w.path, r.path)
        w.assign(r.numpy())
    x = rng.uniform(-1, 1, (2, 299, 299, 3)).astype("float32")
    expected = np.asarray(ref(x, training=False))
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(logits(x), expected, atol=1e-4, rtol=0)
    # And the comparison can fail: the same weights with one expansion bias changed do not match.
    b = ours.get_layer("inception_resnet_a_1").expand.bias
    b.assign(b.numpy() + 1.0)
    assert np.abs(logits(x) - expected).max() > 1e-3


def test_compute_matches_the_paper(full_models):
    v4 = count_macs(full_models[("inception_v4", None)])
    irv2 = count_macs(full_models[("inception_resnet_v2", None)])
    irv1 = count_macs(full_models[("inception_resnet_v1", None)])
    v3 = count_macs(keras.applications.InceptionV3(weights=None))
    assert v4 == pytest.approx(12.28e9, rel=0.01)
    assert irv2 == pytest.approx(13.18e9, rel=0.01)
    # Section 3.1: Inception-ResNet-v1 costs about what Inception-v3 costs.
    assert irv1 == pytest.approx(v3, rel=0.15)


def test_count_macs_counts_a_known_layer():
    inputs = keras.Input((10, 12, 3))
    x = keras.layers.Conv2D(8, (3, 5), strides=2, padding="valid")(inputs)
    outputs = keras.layers.Dense(4)(keras.layers.Flatten()(x))
    # conv: 4x4 outputs x 8 channels x 3x5x3 taps; dense: 128 inputs x 4 units.
    assert count_macs(keras.Model(inputs, outputs)) == 4 * 4 * 8 * 3 * 5 * 3 + 128 * 4


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(name="inception_v4", input_shape=(74, 299, 3)), "at least 75"),
        (dict(name="inception_v4", input_shape=(299, 60, 3)), "at least 75"),
        (dict(name="inception_v5"), "inception_v4, inception_resnet_v1, inception_resnet_v2"),
        (dict(name="inception_resnet_v2", variant="drawn"), "release, paper"),
        (dict(name="inception_v4", variant="release"), "allowed: paper"),
        (dict(name="inception_resnet_v1", width_multiplier=0), "positive"),
        (dict(name="inception_resnet_v1", width_multiplier=-1.0), "positive"),
        (dict(name="inception_v4", include_top=False, pooling="sum"), "'avg', 'max' or None"),
        (dict(name="inception_v4", include_top=False, aux_logits=True), "include_top"),
        (dict(name="inception_v4", residual_scales=(0.1, 0.2)), "three numbers"),
        (dict(name="inception_v4", repeats=(1, 2)), "three positive integers"),
        (dict(name="inception_v4", repeats=(1, 0, 1)), "three positive integers"),
    ],
)
def test_bad_options_raise_a_value_error_that_says_what_is_allowed(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        models.build(**kwargs)


def test_published_weights_need_the_papers_block_counts_before_anything_is_read():
    from inception import weights

    # "imagenet" is never fetched: the counts are refused first.
    with pytest.raises(ValueError, match=re.escape("need the paper's block counts (4, 7, 3)")):
        weights.build("inception_v4", "imagenet", repeats=(1, 1, 1))


def test_repeats_change_only_how_many_blocks_each_stage_has():
    """A shallower network of the same design (the training tests' ``--repeats=1,1,1``): the
    blocks it keeps are the full network's, configured alike, and its weights are the full
    network's less the blocks left out."""
    options = dict(input_shape=(75, 75, 3), width_multiplier=0.125, num_classes=10, aux_logits=True)
    full = models.build("inception_resnet_v2", **options)
    shallow = models.build("inception_resnet_v2", repeats=(1, 2, 1), **options)
    assert models.block_names(shallow) == [
        "stem",
        "inception_resnet_a_1",
        "reduction_a",
        "inception_resnet_b_1",
        "inception_resnet_b_2",
        "reduction_b",
        "inception_resnet_c_1",
        "inception_resnet_c_2",
        "conv_7b",
    ]  # the released network's linear C block and 1x1 convolution stay
    assert models.layout_block_names(
        "inception_resnet_v2", repeats=(1, 2, 1)
    ) == models.block_names(shallow)
    # The linear C block is the last C block: the full network's tenth.
    counterpart = {"inception_resnet_c_2": "inception_resnet_c_10"}
    for name in models.block_names(shallow) + ["aux_logits", "predictions"]:
        mine = dict(shallow.get_layer(name).get_config(), name=None)
        theirs = dict(full.get_layer(counterpart.get(name, name)).get_config(), name=None)
        assert mine == theirs, name
    kept = {counterpart.get(n, n) for n in models.block_names(shallow)}
    left_out = set(models.block_names(full)) - kept
    assert len(left_out) == 9 + 18 + 8
    removed = sum(full.get_layer(n).count_params() for n in left_out)
    assert shallow.count_params() == full.count_params() - removed


@pytest.mark.parametrize("name", ["inception_v4", "inception_resnet_v2"])
def test_aux_head_output_shapes(full_models, name):
    # At 299x299, on the full network's 17x17 grid (the block models.build attaches it to;
    # tests/test_networks.py checks that attachment for every network).
    spec = networks.spec(name)
    head = blocks.AuxHead(1001, name="aux_logits")
    aux = head(full_models[(name, None)].get_layer(spec.aux_block).output)
    assert tuple(aux.shape) == (None, 1001)
    # Released code: 5x5/3 pooling of the 17x17 grid leaves 5x5, which a 5x5 valid conv reduces to 1x1.
    assert head.input.shape[1:3] == (17, 17)
    assert head.conv.conv.kernel.shape == (5, 5, 128, 768)
    small = models.build(
        name, aux_logits=True, input_shape=(75, 75, 3), width_multiplier=0.25, num_classes=5
    )
    outs = small(np.zeros((1, 75, 75, 3), "float32"), training=False)
    assert [tuple(o.shape) for o in outs] == [(1, 5), (1, 5)]


def test_width_multiplier_quarter_shrinks_parameters_about_16x(full_models):
    release = full_models[("inception_resnet_v2", None)]
    full = _count(release.weights) - _count(release.get_layer("predictions").weights)
    quarter = _count(
        models.build("inception_resnet_v2", include_top=False, width_multiplier=0.25).weights
    )
    assert 14 < full / quarter < 18


def test_include_top_false_and_pooling():
    """Without the top: the feature map, or its average or maximum over the grid (the 8x8x1536
    map at 299x299 is checked on every network above)."""
    small = dict(input_shape=(107, 107, 3), width_multiplier=0.25)
    features = models.build("inception_v4", include_top=False, **small)
    assert features.output is features.get_layer("features").output and tuple(
        features.output.shape
    ) == (None, 2, 2, 384)
    x = np.random.default_rng(5).uniform(-1, 1, (2, 107, 107, 3)).astype("float32")
    grid = np.asarray(features(x, training=False))
    for pooling, reduce in (("avg", np.mean), ("max", np.max)):
        model = models.build("inception_v4", include_top=False, pooling=pooling, **small)
        assert tuple(model.output.shape) == (None, 384)
        model.set_weights(features.get_weights())
        np.testing.assert_allclose(
            np.asarray(model(x, training=False)), reduce(grid, axis=(1, 2)), atol=1e-5
        )


def test_residual_scale_zero_is_identity_then_relu():
    block = blocks.InceptionResNetA(scale=0.0)
    x = np.random.default_rng(1).normal(size=(2, 9, 9, 40)).astype("float32")
    np.testing.assert_array_equal(np.asarray(block(x)), np.maximum(x, 0))


def test_residual_scale_multiplies_the_residual():
    x = np.random.default_rng(2).normal(size=(2, 9, 9, 24)).astype("float32")
    linear = [
        blocks.InceptionResNetB(scale=s, activation=None, width_multiplier=0.1) for s in (1.0, 0.3)
    ]
    linear[0](x)
    linear[1](x)
    linear[1].set_weights(linear[0].get_weights())
    r_full = np.asarray(linear[0](x)) - x
    r_scaled = np.asarray(linear[1](x)) - x
    assert np.abs(r_full).max() > 1e-3
    np.testing.assert_allclose(r_scaled, 0.3 * r_full, atol=1e-5)


def test_model_passes_residual_scales_to_every_block():
    model = models.build(
        "inception_resnet_v1",
        residual_scales=(0.3, 0.2, 0.1),
        input_shape=(75, 75, 3),
        width_multiplier=0.1,
    )
    scales = {
        layer.name.rsplit("_", 1)[0]: layer.scale
        for layer in model.layers
        if layer.name.startswith("inception_resnet_")
    }
    assert scales == {
        "inception_resnet_a": 0.3,
        "inception_resnet_b": 0.2,
        "inception_resnet_c": 0.1,
    }
    release = models.build("inception_resnet_v2", input_shape=(75, 75, 3), width_multiplier=0.1)
    last = release.get_layer("inception_resnet_c_10")
    assert (last.scale, last.activation) == (1.0, None)
    # One model's scales do not leak into the next model built with the defaults.
    defaults = {
        layer.name.rsplit("_", 1)[0]: layer.scale
        for layer in release.layers
        if layer.name.startswith("inception_resnet_") and layer.name != "inception_resnet_c_10"
    }
    assert defaults == {
        "inception_resnet_a": 0.17,
        "inception_resnet_b": 0.10,
        "inception_resnet_c": 0.20,
    }


def test_weight_decay_adds_slim_convention_l2_losses():
    model = models.build(
        "inception_resnet_v2", input_shape=(75, 75, 3), width_multiplier=0.1, weight_decay=4e-5
    )
    model(np.zeros((1, 75, 75, 3), "float32"))
    # IRv2's released arg scope decays biases too (tests/test_recipe.py covers each network).
    kernels = [w for w in model.trainable_weights if w.path.endswith(("kernel", "bias"))]
    expected = sum(2e-5 * float(np.sum(np.square(w.numpy()))) for w in kernels)
    assert len(model.losses) == len(kernels)
    assert float(sum(np.asarray(penalty) for penalty in model.losses)) == pytest.approx(
        expected, rel=1e-4
    )


@pytest.mark.parametrize(
    "name,variant,aux",
    [
        ("inception_v4", None, True),
        ("inception_resnet_v1", None, False),
        ("inception_resnet_v2", "release", True),
        ("inception_resnet_v2", "paper", False),
    ],
)
def test_smallest_input_runs_and_the_keras_file_round_trips_with_safe_mode(
    tmp_path, name, variant, aux
):
    model = models.build(
        name,
        variant=variant,
        aux_logits=aux,
        input_shape=(75, 75, 3),
        width_multiplier=0.2,
        num_classes=6,
        weight_decay=4e-5,
        bn_momentum=0.9,
    )
    rng = np.random.default_rng(3)
    # Move BatchNorm statistics off their initial values so a lost variable would show.
    for w in model.non_trainable_weights:
        w.assign(rng.uniform(0.5, 1.5, w.shape).astype("float32"))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = rng.uniform(-1, 1, (2, 75, 75, 3)).astype("float32")
    outputs = keras.tree.flatten(model(x, training=False))
    # The smallest input every network takes runs to one softmax per image (and the aux head's).
    assert [tuple(o.shape) for o in outputs] == [(2, 6)] * (2 if aux else 1)
    np.testing.assert_allclose(np.asarray(outputs[0]).sum(axis=1), 1.0, rtol=1e-5)
    for a, b in zip(outputs, keras.tree.flatten(loaded(x, training=False))):
        np.testing.assert_array_equal(a, b)
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]
    assert loaded.get_layer("stem").options.bn_momentum == 0.9


def test_model_code_is_pure_keras():
    import pathlib

    root = pathlib.Path(models.__file__).parent
    for name in ("layers.py", "blocks.py", "models.py", "compute.py"):
        source = (root / name).read_text()
        assert not re.search(r"^\s*(import|from)\s+tensorflow", source, re.M), name


BACKEND_SCRIPT = """
import sys
import keras
import numpy as np
import inception.models  # registers the block classes for deserialisation
assert keras.backend.backend() == sys.argv[1], keras.backend.backend()
model = keras.saving.load_model(sys.argv[2], safe_mode=True)
x = np.load(sys.argv[3])
np.save(sys.argv[4], np.asarray(model(x, training=False)[0]))
"""


def test_same_network_runs_on_another_keras_backend(tmp_path):
    """A .keras file saved under TensorFlow gives the same outputs under Keras' numpy backend,
    which shows the model code needs nothing but Keras (the GPU machines run JAX)."""
    import pathlib
    import subprocess
    import sys

    model = models.build(
        "inception_resnet_v2",
        input_shape=(75, 75, 3),
        width_multiplier=0.1,
        num_classes=5,
        aux_logits=True,
    )
    rng = np.random.default_rng(4)
    for w in model.non_trainable_weights:
        w.assign(rng.uniform(0.5, 1.5, w.shape).astype("float32"))
    x = rng.uniform(-1, 1, (2, 75, 75, 3)).astype("float32")
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", x)
    env = {**__import__("os").environ, "KERAS_BACKEND": "numpy"}
    subprocess.run(
        [
            sys.executable,
            "-c",
            BACKEND_SCRIPT,
            "numpy",
            str(tmp_path / "m.keras"),
            str(tmp_path / "x.npy"),
            str(tmp_path / "y.npy"),
        ],
        check=True,
        env=env,
        timeout=300,
        cwd=pathlib.Path(models.__file__).parents[1],
    )
    expected = np.asarray(model(x, training=False)[0])
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, atol=1e-5)


def test_inference_folds_batchnorm_into_the_convolution():
    """ConvBN's inference path (BatchNorm folded into the kernel and a shift) computes what
    Conv2D -> BatchNormalization(training=False) -> ReLU computes, up to float32 round-off, with
    non-trivial moving statistics; the training path still normalises by the batch."""
    from inception.layers import ConvBN

    rng = np.random.default_rng(5)
    layer = ConvBN(8, (3, 1), strides=2, padding="V")
    x = rng.normal(size=(4, 9, 7, 3)).astype("float32")
    layer(x)
    layer.bn.moving_mean.assign(rng.normal(size=8).astype("float32"))
    layer.bn.moving_variance.assign(rng.uniform(0.1, 3.0, 8).astype("float32"))
    layer.bn.beta.assign(rng.normal(size=8).astype("float32"))
    plain = keras.ops.relu(layer.bn(layer.conv(x), training=False))
    folded = layer(x, training=False)
    np.testing.assert_allclose(np.asarray(folded), np.asarray(plain), rtol=1e-5, atol=1e-5)
    assert float(np.max(np.abs(np.asarray(plain)))) > 1.0  # not a trivially small output
    trained = layer(x, training=True)  # batch statistics (and a moving-average update)
    assert float(np.max(np.abs(np.asarray(trained) - np.asarray(plain)))) > 0.1
    layer.bn.trainable = False  # a frozen BatchNorm (--bn_inference) uses the moving statistics
    plain = keras.ops.relu(layer.bn(layer.conv(x), training=False))
    np.testing.assert_allclose(
        np.asarray(layer(x, training=True)), np.asarray(plain), rtol=1e-5, atol=1e-5
    )
