"""Functional builders for the paper's three networks: read them next to Figures 9 and 15.

    model = build("inception_resnet_v2", num_classes=1000)

Every block is one layer with a stable name (``stem``, ``inception_a_1``, ``reduction_a`` ...);
the last feature map before global pooling is the output of the layer named ``features``.
Pure Keras 3: no TensorFlow import.
"""

import keras

from inception import blocks
from inception.layers import (
    BN_EPSILON,
    BN_MOMENTUM,
    SLIM_VARIANCE_SCALING,
    XAVIER,
    ConvBN,
    bias_regularizer,
    kernel_regularizer,
    scaled,
)
from inception.weights import labeled  # noqa: F401  (registers the classifier of imported models)

from inception.networks import (  # noqa: E402,F401  (re-exported)
    DEFAULT_VARIANT,
    NAMES,
    RESIDUAL_SCALES,
    VARIANTS,
)
from inception.networks import MIN_IMAGE_SIZE as MIN_SIZE  # noqa: E402

# Inception-ResNet layouts as data: stem, block counts, Table 1's k,l,m,n, branch widths.
RESNET_LAYOUTS = {
    ("inception_resnet_v1", "paper"): dict(
        stem=blocks.StemResNetV1,
        repeats=(5, 10, 5),
        reduction_a=(192, 192, 256, 384),
        a=blocks.InceptionResNetA.V1,
        b=blocks.InceptionResNetB.V1,
        c=blocks.InceptionResNetC.V1,
        reduction_b=blocks.InceptionResNetReductionB.V1,
        final_linear_block=False,
        final_conv=None,
    ),
    ("inception_resnet_v2", "paper"): dict(
        stem=blocks.Stem,
        repeats=(5, 10, 5),
        reduction_a=(256, 256, 384, 384),
        a=blocks.InceptionResNetA.V2,
        b=blocks.InceptionResNetB.V2,
        c=blocks.InceptionResNetC.V2,
        reduction_b=blocks.InceptionResNetReductionB.V2,
        final_linear_block=False,
        final_conv=None,
    ),
    # The released network: a different stem, twice the blocks, and after the last C block
    # (scale 1.0, no ReLU) a 1x1 1536 convolution.
    ("inception_resnet_v2", "release"): dict(
        stem=blocks.StemResNetV2Release,
        repeats=(10, 20, 9),
        reduction_a=(256, 256, 384, 384),
        a=blocks.InceptionResNetA.V2,
        b=blocks.InceptionResNetB.V2,
        c=blocks.InceptionResNetC.V2,
        reduction_b=blocks.InceptionResNetReductionB.V2,
        final_linear_block=True,
        final_conv=1536,
    ),
}
# The released arg scopes (BUILD_NOTES "Optimizer, initialisation, weight decay and precision as
# released"): Inception-v4's (inception_utils.inception_arg_scope) initialises convolutions with
# slim's variance scaling and decays kernels only; Inception-ResNet-v2's leaves slim's Xavier
# default and decays biases too. Inception-ResNet-v1 has no released code; it takes its family's
# (IRv2's) scope. Fully connected layers are Xavier (Glorot uniform) everywhere.
CONV_INITIALIZERS = {
    "inception_v4": SLIM_VARIANCE_SCALING,
    "inception_resnet_v1": XAVIER,
    "inception_resnet_v2": XAVIER,
}
DECAY_BIASES = {"inception_v4": False, "inception_resnet_v1": True, "inception_resnet_v2": True}
V4_REPEATS = (4, 7, 3)
V4_REDUCTION_A = (192, 224, 256, 384)


def build(
    name,
    *,
    weights=None,
    num_classes=1000,
    include_top=True,
    pooling=None,
    input_shape=(299, 299, 3),
    variant=None,
    aux_logits=False,
    dropout_rate=0.2,
    residual_scales=None,
    width_multiplier=1.0,
    bn_momentum=BN_MOMENTUM,
    bn_epsilon=BN_EPSILON,
    weight_decay=0.0,
    bn_synchronized=False,
    classifier_activation="softmax",
    conv_initializer=None,
    decay_biases=None,
):
    """Builds one of the paper's networks as a ``keras.Model``.

    Args:
        name: "inception_v4", "inception_resnet_v1" or "inception_resnet_v2".
        weights: None (random initialization), "imagenet" (the official released file, from the
            local cache or downloaded) or the path of published weights: a TF-slim checkpoint or
            its .tar.gz, a timm .safetensors, keras-applications' Inception-ResNet-v2 .h5, or a
            .keras of this project (README "Pretrained weights"; inception/weights/).
        num_classes: classifier width (the released checkpoints use 1001, TFDS ImageNet 1000).
        include_top: add global average pool -> dropout -> fully connected.
        pooling: without the top, "avg", "max" or None (the 4-D feature map).
        input_shape: (height, width, channels), both sides at least 75 (None allowed).
        variant: for Inception-ResNet-v2, "release" (default: the authors' released code, as in
            keras.applications and timm) or "paper" (Figure 15 as drawn). The other networks have
            one variant, "paper".
        aux_logits: add the auxiliary classifier on the 17x17 grid; the model then has two
            outputs, [main, aux]. Needs include_top.
        dropout_rate: dropout before the classifier (the paper keeps 0.8, i.e. drops 0.2).
        residual_scales: (a, b, c) scales of the Inception-ResNet blocks; default (0.17, 0.10, 0.20).
        width_multiplier: scales every filter count (1.0 is the paper).
        bn_momentum, bn_epsilon: BatchNorm moving-average decay and epsilon.
        weight_decay: slim-convention L2 decay on every kernel (4e-5 in the paper's recipe), and on
            the biases with ``decay_biases``.
        bn_synchronized: BatchNorm statistics over the global batch under tf.distribute.
        classifier_activation: "softmax" or None for logits. The classifier (and the aux head's)
            computes in float32 under a mixed-precision policy.
        conv_initializer: initializer of every convolution kernel (a Keras initializer name,
            config or instance); None: the released code's for this network
            (``CONV_INITIALIZERS``: slim's truncated He for Inception-v4, Glorot uniform for the
            Inception-ResNets). Dense layers are always Glorot uniform, as in the released code.
        decay_biases: apply ``weight_decay`` to the biases too (residual expansions and dense
            layers); None: the released code's (``DECAY_BIASES``: the Inception-ResNets only).
    """
    if name not in NAMES:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(NAMES)}")
    variant = DEFAULT_VARIANT[name] if variant is None else variant
    if variant not in VARIANTS[name]:
        raise ValueError(f"unknown variant {variant!r} for {name}; allowed: {', '.join(VARIANTS[name])}")
    if not width_multiplier > 0:
        raise ValueError(f"width_multiplier must be a positive number, got {width_multiplier!r}")
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
    for side in input_shape[:2]:
        if side is not None and side < MIN_SIZE:
            raise ValueError(
                f"input_shape {tuple(input_shape)} is too small: height and width must be at least "
                f"{MIN_SIZE} (the stem and two reductions need it)"
            )
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be 'avg', 'max' or None, got {pooling!r}")
    if include_top and (not isinstance(num_classes, int) or num_classes < 1):
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if aux_logits and not include_top:
        raise ValueError("aux_logits=True needs include_top=True")
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate!r}")
    scales = RESIDUAL_SCALES if residual_scales is None else tuple(residual_scales)
    if len(scales) != 3:
        raise ValueError(f"residual_scales must be three numbers (A, B, C), got {residual_scales!r}")

    conv_initializer = CONV_INITIALIZERS[name] if conv_initializer is None else conv_initializer
    decay_biases = DECAY_BIASES[name] if decay_biases is None else bool(decay_biases)

    common = dict(
        width_multiplier=width_multiplier,
        bn_momentum=bn_momentum,
        bn_epsilon=bn_epsilon,
        weight_decay=weight_decay,
        bn_synchronized=bn_synchronized,
        conv_initializer=conv_initializer,
        decay_biases=decay_biases,
    )
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    if name == "inception_v4":
        x, aux_input = _inception_v4(inputs, common)
    else:
        x, aux_input = _inception_resnet(inputs, RESNET_LAYOUTS[(name, variant)], scales, common)
    features = keras.layers.Identity(name="features")(x)

    model_name = name if name != "inception_resnet_v2" else f"{name}_{variant}"
    if not include_top:
        if pooling == "avg":
            features = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features)
        elif pooling == "max":
            features = keras.layers.GlobalMaxPooling2D(name="max_pool")(features)
        return _with_weights(keras.Model(inputs, features, name=model_name), weights)

    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features)
    x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
    # float32 even under mixed precision: logits and softmax in bfloat16 lose the small
    # probabilities the loss and the top-k metrics read.
    outputs = keras.layers.Dense(
        num_classes,
        activation=classifier_activation,
        kernel_initializer=XAVIER,
        kernel_regularizer=kernel_regularizer(weight_decay),
        bias_regularizer=bias_regularizer(weight_decay, decay_biases),
        dtype="float32",
        name="predictions",
    )(x)
    if aux_logits:
        aux = blocks.AuxHead(num_classes, classifier_activation, name="aux_logits", **common)(aux_input)
        outputs = [outputs, aux]
    return _with_weights(keras.Model(inputs, outputs, name=model_name), weights)


def _with_weights(model, weights):
    if weights is None:
        return model
    from inception.weights import pretrained  # imported here: reading slim checkpoints needs TensorFlow

    return pretrained.from_build(model, weights)


def _inception_v4(x, common):
    """Figure 9: stem, 4 x Inception-A, Reduction-A, 7 x Inception-B, Reduction-B, 3 x Inception-C."""
    x = blocks.Stem(name="stem", **common)(x)
    for i in range(V4_REPEATS[0]):
        x = blocks.InceptionA(name=f"inception_a_{i + 1}", **common)(x)
    x = blocks.ReductionA(*V4_REDUCTION_A, name="reduction_a", **common)(x)
    for i in range(V4_REPEATS[1]):
        x = blocks.InceptionB(name=f"inception_b_{i + 1}", **common)(x)
    aux_input = x
    x = blocks.ReductionB(name="reduction_b", **common)(x)
    for i in range(V4_REPEATS[2]):
        x = blocks.InceptionC(name=f"inception_c_{i + 1}", **common)(x)
    return x, aux_input


def _inception_resnet(x, layout, scales, common):
    """Figure 15: stem, A blocks, Reduction-A, B blocks, Reduction-B, C blocks."""
    n_a, n_b, n_c = layout["repeats"]
    x = layout["stem"](name="stem", **common)(x)
    for i in range(n_a):
        x = blocks.InceptionResNetA(layout["a"], scales[0], name=f"inception_resnet_a_{i + 1}", **common)(x)
    x = blocks.ReductionA(*layout["reduction_a"], name="reduction_a", **common)(x)
    for i in range(n_b):
        x = blocks.InceptionResNetB(layout["b"], scales[1], name=f"inception_resnet_b_{i + 1}", **common)(x)
    aux_input = x
    x = blocks.InceptionResNetReductionB(layout["reduction_b"], name="reduction_b", **common)(x)
    for i in range(n_c):
        x = blocks.InceptionResNetC(layout["c"], scales[2], name=f"inception_resnet_c_{i + 1}", **common)(x)
    if layout["final_linear_block"]:
        # Released code: one more C block, unscaled and without ReLU, then a 1x1 1536 conv.
        x = blocks.InceptionResNetC(
            layout["c"], 1.0, activation=None, name=f"inception_resnet_c_{n_c + 1}", **common
        )(x)
    if layout["final_conv"]:
        conv_options = {k: v for k, v in common.items() if k not in ("width_multiplier", "decay_biases")}
        x = ConvBN(scaled(layout["final_conv"], common["width_multiplier"]), 1, name="conv_7b", **conv_options)(x)
    return x, aux_input


def layout_block_names(name, variant=None):
    """``block_names`` of the network ``name`` / ``variant`` read from its layout, without
    building it (to check a block name, e.g. a freezing point, before any heavy work)."""
    variant = DEFAULT_VARIANT[name] if variant is None else variant
    if name == "inception_v4":
        (n_a, n_b, n_c), last = V4_REPEATS, []
        a, b, c = "inception_a", "inception_b", "inception_c"
    else:
        layout = RESNET_LAYOUTS[(name, variant)]
        n_a, n_b, n_c = layout["repeats"]
        n_c += 1 if layout["final_linear_block"] else 0
        a, b, c = "inception_resnet_a", "inception_resnet_b", "inception_resnet_c"
        last = ["conv_7b"] if layout["final_conv"] else []
    return (["stem"] + [f"{a}_{i + 1}" for i in range(n_a)] + ["reduction_a"]
            + [f"{b}_{i + 1}" for i in range(n_b)] + ["reduction_b"]
            + [f"{c}_{i + 1}" for i in range(n_c)] + last)


def block_names(model):
    """Names of the blocks in order (stem ... last C block, conv_7b), for endpoint models."""
    prefixes = ("stem", "inception_", "reduction_", "conv_7b")
    return [layer.name for layer in model.layers if layer.name.startswith(prefixes)]


def endpoints(model):
    """A model mapping the input to a dict of every block's output (TF-slim's end_points)."""
    names = block_names(model) + ["features"]
    return keras.Model(model.input, {n: model.get_layer(n).output for n in names})
