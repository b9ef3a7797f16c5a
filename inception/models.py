"""Functional builders for the paper's three networks: read them next to Figures 9 and 15.

    model = build("inception_resnet_v2", num_classes=1000)

``build`` reads the network's NetworkSpec (inception/networks.py) and hands one ConvOptions
(inception/layers.py) to every block; ``layout`` lists the blocks in the order the figures draw
them (the weight-name map reads it too). One model, one head: ``backbone`` applies the blocks to
any input tensor, and ``inception/heads.py`` puts the classifier (or a pooling) on its feature
map; ``build`` and ``inception.applications`` both assemble their models so.

Every block is one layer with a stable name (``stem``, ``inception_a_1``, ``reduction_a`` ...);
the last feature map before global pooling is the output of the layer named ``features``.
Pure Keras 3: no TensorFlow import.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any, TypeAlias

import keras

from inception import blocks, heads, networks
from inception.layers import RELEASED_INITIALIZERS, ConvOptions
from inception.networks import BN_EPSILON, BN_MOMENTUM

# A Keras initializer: its name, its config or an instance.
Initializer: TypeAlias = str | dict[str, Any] | keras.initializers.Initializer
# One entry of ``layout``: (layer name, block class (None: a ConvBN), its widths, its other
# arguments).
LayoutEntry: TypeAlias = tuple[
    str, type[keras.layers.Layer] | None, tuple[Any, ...], dict[str, Any]
]

# The stem each NetworkSpec names: Figure 3, Figure 14, or the released Inception-ResNet-v2's.
STEMS = {
    networks.STEM_FIGURE_3: blocks.Stem,
    networks.STEM_FIGURE_14: blocks.StemResNetV1,
    networks.STEM_RELEASED: blocks.StemResNetV2Release,
}


def build(
    name: str,
    *,
    num_classes: int = 1000,
    include_top: bool = True,
    pooling: str | None = None,
    input_shape: Sequence[int | None] = (299, 299, 3),
    variant: str | None = None,
    aux_logits: bool = False,
    dropout_rate: float = 0.2,
    residual_scales: Sequence[float] | None = None,
    width_multiplier: float = 1.0,
    repeats: Sequence[int] | None = None,
    bn_momentum: float = BN_MOMENTUM,
    bn_epsilon: float = BN_EPSILON,
    weight_decay: float = 0.0,
    bn_synchronized: bool = False,
    classifier_activation: heads.Activation = "softmax",
    conv_initializer: Initializer | None = None,
    decay_biases: bool | None = None,
) -> keras.Model:
    """Builds one of the paper's networks as a ``keras.Model``, randomly initialised (published
    weights: ``inception.weights.build``, which takes these arguments too).

    Args:
        name: "inception_v4", "inception_resnet_v1" or "inception_resnet_v2".
        num_classes: classifier width (the released checkpoints use 1001, TFDS ImageNet 1000).
        include_top: add global average pool -> dropout -> fully connected.
        pooling: without the top, "avg", "max" or None (the 4-D feature map).
        input_shape: (height, width, channels), both sides at least 75 (None allowed);
            (channels, height, width) when ``keras.config.image_data_format()`` is
            "channels_first" (builds everywhere, runs on a GPU only: TensorFlow's CPU kernels
            have no channels-first convolution).
        variant: for Inception-ResNet-v2, "release" (default: the authors' released code, as in
            keras.applications and timm) or "paper" (Figure 15 as drawn). The other networks have
            one variant, "paper".
        aux_logits: add the auxiliary classifier on the 17x17 grid; the model then has two
            outputs, [main, aux]. Needs include_top.
        dropout_rate: dropout before the classifier (the paper keeps 0.8, i.e. drops 0.2).
        residual_scales: (a, b, c) scales of the Inception-ResNet blocks; None: the spec's
            (the released code's 0.17, 0.10, 0.20).
        width_multiplier: scales every filter count (1.0 is the paper).
        repeats: (a, b, c) numbers of A, B and C blocks; None: the paper's (``NetworkSpec.repeats``,
            e.g. 5, 10, 5 for Inception-ResNet-v1). Fewer blocks make a shallower network of the
            same design for quick experiments; published weights need the paper's counts.
        bn_momentum, bn_epsilon: BatchNorm moving-average decay and epsilon.
        weight_decay: slim-convention L2 decay on every kernel (4e-5 in the paper's recipe), and on
            the biases with ``decay_biases``.
        bn_synchronized: BatchNorm statistics over the global batch under tf.distribute.
        classifier_activation: "softmax" or None for logits. The classifier (and the aux head's)
            computes in float32 under a mixed-precision policy.
        conv_initializer: initializer of every convolution kernel (a Keras initializer name,
            config or instance); None: the released code's for this network
            (``NetworkSpec.conv_initializer``: slim's truncated He for Inception-v4, Glorot
            uniform for the Inception-ResNets). Dense layers are always Glorot uniform, as in
            the released code.
        decay_biases: apply ``weight_decay`` to the biases too (residual expansions and dense
            layers); None: the released code's (``NetworkSpec.decay_biases``: the
            Inception-ResNets only).
    """
    paper = networks.spec(name, variant)
    _check_arguments(
        input_shape,
        width_multiplier,
        pooling,
        include_top,
        num_classes,
        aux_logits,
        dropout_rate,
        residual_scales,
    )
    spec = with_repeats(paper, repeats)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    body = backbone(
        name,
        inputs,
        variant=variant,
        residual_scales=residual_scales,
        width_multiplier=width_multiplier,
        repeats=repeats,
        bn_momentum=bn_momentum,
        bn_epsilon=bn_epsilon,
        weight_decay=weight_decay,
        bn_synchronized=bn_synchronized,
        conv_initializer=conv_initializer,
        decay_biases=decay_biases,
    )
    if include_top:
        outputs = heads.head(
            body.features,
            num_classes,
            classifier_activation,
            dropout_rate,
            body.options,
            data_format=body.options.data_format,
        )
        if aux_logits:
            aux = blocks.AuxHead(
                num_classes, classifier_activation, options=body.options, name="aux_logits"
            )
            outputs = [outputs, aux(body.ends[spec.aux_block])]
    else:
        outputs = heads.pooled(body.features, pooling, data_format=body.options.data_format)
    return keras.Model(inputs, outputs, name=spec.model_name)


def backbone(
    name: str,
    inputs: keras.KerasTensor,
    *,
    variant: str | None = None,
    residual_scales: Sequence[float] | None = None,
    width_multiplier: float = 1.0,
    repeats: Sequence[int] | None = None,
    bn_momentum: float = BN_MOMENTUM,
    bn_epsilon: float = BN_EPSILON,
    weight_decay: float = 0.0,
    bn_synchronized: bool = False,
    conv_initializer: Initializer | None = None,
    decay_biases: bool | None = None,
) -> Backbone:
    """The network ``name`` from ``inputs`` (any Keras tensor) to its last feature map.

    Returns a ``Backbone``. The arguments mean what they mean in ``build``; the model around it
    (``keras.Model(inputs or their source, a head on the features)``) is the caller's.
    """
    spec = with_repeats(networks.spec(name, variant), repeats)
    options = ConvOptions(
        width_multiplier=width_multiplier,
        bn_momentum=bn_momentum,
        bn_epsilon=bn_epsilon,
        weight_decay=weight_decay,
        bn_synchronized=bn_synchronized,
        conv_initializer=RELEASED_INITIALIZERS[spec.conv_initializer]
        if conv_initializer is None
        else conv_initializer,
        decay_biases=spec.decay_biases if decay_biases is None else bool(decay_biases),
        data_format=keras.config.image_data_format(),
    )
    ends = _chain(inputs, _blocks(spec, residual_scales, options))
    features = keras.layers.Identity(name="features")(ends[spec.block_names[-1]])
    return Backbone(features, ends, spec, options)


@dataclasses.dataclass(frozen=True)
class Backbone:
    """The network up to its feature map, as ``backbone`` applied it to an input tensor."""

    features: keras.KerasTensor
    """The last feature map (the output of the layer ``features``), where a head goes."""
    ends: dict[str, keras.KerasTensor]
    """Every block's output by layer name (``stem`` ... ``conv_7b``)."""
    spec: networks.NetworkSpec
    """The network's spec, with the block counts used."""
    options: ConvOptions
    """The settings every convolution shares (a head takes its weight decay from them)."""


def with_repeats(spec: networks.NetworkSpec, repeats: Sequence[int] | None) -> networks.NetworkSpec:
    """``spec`` with ``repeats`` A, B and C blocks (None: unchanged); ValueError unless three
    positive integers."""
    if repeats is None:
        return spec
    repeats = tuple(repeats)
    if len(repeats) != 3 or not all(isinstance(n, int) and n >= 1 for n in repeats):
        raise ValueError(
            f"repeats must be three positive integers (A, B, C blocks), got {repeats!r}"
        )
    return dataclasses.replace(spec, repeats=repeats)


def _check_arguments(
    input_shape,
    width_multiplier,
    pooling,
    include_top,
    num_classes,
    aux_logits,
    dropout_rate,
    residual_scales,
):
    """The same clear ValueError for every argument ``build`` cannot honour."""
    if not width_multiplier > 0:
        raise ValueError(f"width_multiplier must be a positive number, got {width_multiplier!r}")
    first = keras.config.image_data_format() == "channels_first"
    if len(input_shape) != 3:
        order = "(channels, height, width)" if first else "(height, width, channels)"
        raise ValueError(f"input_shape must be {order}, got {input_shape!r}")
    for side in input_shape[1:] if first else input_shape[:2]:
        if side is not None and side < networks.MIN_IMAGE_SIZE:
            raise ValueError(
                f"input_shape {tuple(input_shape)} is too small: height and width must be at least "
                f"{networks.MIN_IMAGE_SIZE} (the stem and two reductions need it)"
            )
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be 'avg', 'max' or None, got {pooling!r}")
    if include_top and (not isinstance(num_classes, int) or num_classes < 1):
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if aux_logits and not include_top:
        raise ValueError("aux_logits=True needs include_top=True")
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate!r}")
    if residual_scales is not None and len(tuple(residual_scales)) != 3:
        raise ValueError(
            f"residual_scales must be three numbers (A, B, C), got {residual_scales!r}"
        )


def _chain(x, layers):
    """Applies ``layers`` one after another; every output by layer name.

    ``layers`` is a generator: each layer is made only after the one before it has been applied,
    the order in which layers draw their initializer seeds (when made and when built), so a seed
    keeps giving the same weights.
    """
    ends = {}
    for layer in layers:
        x = ends[layer.name] = layer(x)
    return ends


def _blocks(spec, residual_scales, options):
    """The layers of ``layout``, each made when the one before it has been applied (``_chain``)."""
    for name, block, widths, settings in layout(spec, residual_scales):
        if block is None:
            yield options.conv(*widths, 1, name=name)
        else:
            yield block(*widths, **settings, options=options, name=name)


def layout(
    spec: networks.NetworkSpec, residual_scales: Sequence[float] | None = None
) -> Iterator[LayoutEntry]:
    """Every block of the network ``spec`` in order: (layer name, block class, its widths (the
    arguments its ``table()`` reads), its other arguments). The released Inception-ResNet-v2's
    final 1x1 convolution is (``conv_7b``, None, (filters,), {}), a ConvBN of its own.
    ``residual_scales`` None: the spec's."""
    yield "stem", STEMS[spec.stem], (), {}
    if spec.family == networks.INCEPTION:
        yield from _inception_v4(spec)
    else:
        yield from _inception_resnet(
            spec, spec.residual_scales if residual_scales is None else tuple(residual_scales)
        )


def _inception_v4(spec):
    """Figure 9: stem (Figure 3), 4 x Inception-A, Reduction-A, 7 x Inception-B, Reduction-B,
    3 x Inception-C; the counts are ``spec.repeats``, Reduction-A's widths Table 1's."""
    for name in spec.stage_names("a"):
        yield name, blocks.InceptionA, (), {}
    yield "reduction_a", blocks.ReductionA, spec.reduction_a, {}
    for name in spec.stage_names("b"):
        yield name, blocks.InceptionB, (), {}
    yield "reduction_b", blocks.ReductionB, (), {}
    for name in spec.stage_names("c"):
        yield name, blocks.InceptionC, (), {}


def _inception_resnet(spec, scales):
    """Figure 15: stem, Inception-ResNet-A blocks, Reduction-A, -B blocks, Reduction-B, -C blocks,
    with the spec's widths; the released Inception-ResNet-v2 ends with a linear C block and a 1x1
    convolution."""
    for name in spec.stage_names("a"):
        yield name, blocks.InceptionResNetA, (spec.block_a,), {"scale": scales[0]}
    yield "reduction_a", blocks.ReductionA, spec.reduction_a, {}
    for name in spec.stage_names("b"):
        yield name, blocks.InceptionResNetB, (spec.block_b,), {"scale": scales[1]}
    yield "reduction_b", blocks.InceptionResNetReductionB, (spec.reduction_b,), {}
    c_names = spec.stage_names("c")
    for name in c_names[: spec.repeats[2]]:
        yield name, blocks.InceptionResNetC, (spec.block_c,), {"scale": scales[2]}
    if spec.final_linear_block:
        # Released code (slim's "Block8"): unscaled and without ReLU.
        yield (
            c_names[-1],
            blocks.InceptionResNetC,
            (spec.block_c,),
            {"scale": 1.0, "activation": None},
        )
    if spec.final_conv:
        yield "conv_7b", None, (spec.final_conv,), {}


def layout_block_names(
    name: str, variant: str | None = None, repeats: Sequence[int] | None = None
) -> list[str]:
    """``block_names`` of the network ``name`` / ``variant`` read from its spec, without building
    it (to check a block name, e.g. a freezing point, before any heavy work)."""
    return list(with_repeats(networks.spec(name, variant), repeats).block_names)


def block_names(model: keras.Model) -> list[str]:
    """Names of the blocks in order (stem ... last C block, conv_7b), for endpoint models."""
    prefixes = ("stem", "inception_", "reduction_", "conv_7b")
    return [layer.name for layer in model.layers if layer.name.startswith(prefixes)]


def endpoints(model: keras.Model) -> keras.Model:
    """A model mapping the input to a dict of every block's output (TF-slim's end_points)."""
    names = block_names(model) + ["features"]
    return keras.Model(model.input, {n: model.get_layer(n).output for n in names})
