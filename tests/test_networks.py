"""The registry of networks (inception.networks) and the options every block shares
(layers.ConvOptions): the specs agree with the paper and with the models built from them, and
blocks saved before ConvOptions existed still load."""

import dataclasses
import pathlib
import re

import keras
import numpy as np
import pytest

from inception import blocks, layers, models, networks

DATA = pathlib.Path(__file__).parent / "data"
KEYS = list(networks.SPECS)

# Table 1: Reduction-A's k, l, m, n.
TABLE_1 = {
    "inception_v4": (192, 224, 256, 384),
    "inception_resnet_v1": (192, 192, 256, 384),
    "inception_resnet_v2": (256, 256, 384, 384),
}


def test_reduction_a_widths_are_table_1():
    for (name, _), spec in networks.SPECS.items():
        assert spec.reduction_a == TABLE_1[name], name


@pytest.mark.parametrize(
    "args,message",
    [
        (("inception_v5",), "Received: name='inception_v5'"),
        (("inception_resnet_v2", "drawn"), "allowed: release, paper. Received: variant='drawn'"),
    ],
)
def test_unknown_name_or_variant_says_what_it_received(args, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        networks.spec(*args)


@pytest.mark.parametrize("key", KEYS, ids=lambda k: f"{k[0]}-{k[1]}")
def test_every_spec_builds_with_its_blocks_and_aux_attachment(key):
    spec = networks.spec(*key)
    model = models.build(
        key[0],
        variant=key[1],
        aux_logits=True,
        input_shape=(75, 75, 3),
        width_multiplier=0.125,
        num_classes=3,
    )
    assert model.name == spec.model_name
    assert models.block_names(model) == list(spec.block_names) == models.layout_block_names(*key)
    assert model.get_layer("aux_logits").input is model.get_layer(spec.aux_block).output
    assert spec.aux_block.startswith(f"{spec.family}_b_")  # the 17x17 grid, as released
    residual = [layer for layer in model.layers if isinstance(layer, blocks.InceptionResNetA)]
    assert len(residual) == (spec.repeats[0] if spec.family == networks.INCEPTION_RESNET else 0)


# --------------------------------------------------------------------------- ConvOptions --


def test_conv_options_round_trip_through_their_config():
    options = layers.ConvOptions.of(
        width_multiplier=0.5,
        bn_momentum=0.9,
        bn_epsilon=0.01,
        weight_decay=4e-5,
        bn_synchronized=True,
        conv_initializer="he_normal",
        decay_biases=True,
    )
    assert options.conv_initializer["class_name"] == "HeNormal"
    again = layers.ConvOptions.from_config(options.get_config())
    assert again == options
    assert layers.ConvOptions.of(options.get_config()) == options
    instance = layers.ConvOptions(conv_initializer=keras.initializers.GlorotNormal())
    assert instance.get_config()["conv_initializer"]["class_name"] == "GlorotNormal"


def test_conv_options_refuse_what_they_do_not_know():
    with pytest.raises(TypeError, match="bn_decay"):
        layers.ConvOptions.of(bn_decay=0.9)
    with pytest.raises(TypeError, match=r"Received: options=0\.9"):
        layers.ConvOptions.of(0.9)


def test_a_block_stores_its_options_once_and_accepts_the_keyword_form():
    options = layers.ConvOptions(
        width_multiplier=0.25, bn_momentum=0.9, weight_decay=4e-5, decay_biases=True
    )
    block = blocks.InceptionResNetB(scale=0.3, options=options, name="b")
    config = block.get_config()
    assert config["options"] == layers.ConvOptions.of(options).get_config()
    assert not {f.name for f in dataclasses.fields(layers.ConvOptions)} & set(config)
    keyword = blocks.InceptionResNetB(
        scale=0.3,
        width_multiplier=0.25,
        bn_momentum=0.9,
        weight_decay=4e-5,
        decay_biases=True,
        name="b",
    )
    assert keyword.get_config() == config
    assert blocks.InceptionResNetB.from_config(config).get_config() == config
    assert block.b1_1.filters == 40 and block.b1_1.bn_momentum == 0.9  # 160 at a quarter width
    # A keyword laid over options wins (the older form's meaning of each keyword).
    assert blocks.InceptionA(options=options, bn_momentum=0.5).options.bn_momentum == 0.5


def test_a_keras_file_saved_with_keyword_form_blocks_still_loads():
    """tests/data/blocks_keyword_form.keras was saved by the blocks as they were before ConvOptions
    (each setting a keyword argument and a key of get_config); tests/data/README.md tells how."""
    model = keras.saving.load_model(DATA / "blocks_keyword_form.keras", safe_mode=True)
    saved = np.load(DATA / "blocks_keyword_form.npz")
    y, y_aux = model(saved["x"], training=False)
    np.testing.assert_allclose(np.asarray(y), saved["y"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(y_aux), saved["y_aux"], rtol=1e-5, atol=1e-5)
    expected = layers.ConvOptions.of(
        width_multiplier=0.125,
        bn_momentum=0.9,
        bn_epsilon=0.002,
        weight_decay=4e-5,
        conv_initializer="he_normal",
        decay_biases=True,
    )
    for name in ("block_a", "reduction_a", "aux", "reduction_b"):
        assert model.get_layer(name).options == expected, name
    assert model.get_layer("reduction_a").get_config()["k"] == 8
    assert model.get_layer("block_a").scale == pytest.approx(0.3)
