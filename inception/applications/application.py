"""What InceptionV4, InceptionResNetV1 and InceptionResNetV2 share: keras.applications' rules.

Every argument is checked here, with keras.applications' kind of message, before any layer is
made or any file fetched; then ``models.backbone`` and a head of ``inception/heads.py`` make the
model, and the weights are loaded (``inception.weights``, which reads every published format).
"""

import os
from typing import TypeAlias

import keras

from inception import heads, models, networks
from inception.applications.imagenet_utils import DATA_FORMATS, NUM_CLASSES, WITH_BACKGROUND

# What ``weights`` takes: None, "imagenet", a Keras ``.weights.h5`` or the path of a weights file.
Weights: TypeAlias = str | os.PathLike[str] | None

IMAGENET = "imagenet"
DEFAULT_SIZE = networks.IMAGE_SIZE
MIN_SIZE = networks.MIN_IMAGE_SIZE
# The networks with published ImageNet weights (inception/weights/fetch.py), and who published them.
RELEASED = {"inception_v4": "TF-slim", "inception_resnet_v2": "TF-slim"}
# Options of models.backbone that change the variables, so published weights need their defaults.
SHAPING = ("width_multiplier", "repeats")


# The part of the docstring the three networks share (keras.applications builds its docstrings
# the same way); ``{weights}`` is the network's own ``weights`` entry.
ARGUMENTS = """Call ``preprocess_input`` of this module on images in [0, 255] (it scales them to
    [-1, 1]), and ``decode_predictions`` on the outputs of an ImageNet classifier.

    Args:
        include_top: whether to include the classifier (global average pool, dropout, the fully
            connected layer ``predictions``, the model's last layer).
        weights: {weights}
        input_tensor: optional Keras tensor (e.g. the output of ``keras.Input()`` or of layers
            after it) to use as the image input; the model's inputs are then its source inputs.
        input_shape: optional shape tuple: (299, 299, 3) with the top ((3, 299, 299) with
            "channels_first"), else any height and width of at least 75 (None allowed), and any
            number of channels with ``weights=None``.
        pooling: without the top: None (the 4-D feature map), "avg" or "max" (2-D).
        classes: number of classes, with the top; 1000 (or 1001, the released checkpoints'
            background class first) with ImageNet weights.
        classifier_activation: a ``str`` or callable, the classifier's activation; None returns
            logits. Only None or "softmax" with pretrained weights.
        name: the model's name (default: the name ``inception.models.build`` gives this network,
            which the weight importers recognise).
        **options: the network's options of ``inception.models.build`` (``width_multiplier``,
            ``repeats``, ``dropout_rate``, ``weight_decay``, ...); not part of keras.applications,
            and published weights need the paper's width and block counts.

    Both image data formats build and give the right shapes. TensorFlow's CPU kernels cannot run
    "channels_first" convolutions and pooling: such a model runs on a GPU only, with TensorFlow.

    Returns:
        A ``keras.Model``."""
WEIGHTS_RELEASED = """None (random initialization), "imagenet" (the authors' released TF-slim
            checkpoint, from the local cache or downloaded once) or the path of a weights file:
            a Keras ``.weights.h5``, or any file ``inception.weights`` reads (README
            "Pretrained weights")."""


def document(function, weights):
    """``function``'s docstring with its ``{arguments}`` filled in from ARGUMENTS."""
    return function.__doc__.replace("{arguments}", ARGUMENTS.format(weights=weights))


def application(
    network,
    *,
    include_top,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    name,
    dropout_rate=0.2,
    **options,
):
    """The keras.applications model of ``network`` (see inception_v4.InceptionV4 for the
    arguments); ``options`` go to ``models.backbone`` (e.g. width_multiplier, repeats)."""
    spec = networks.spec(network)
    _check_weights(spec, weights, include_top, classes, options)
    _check_head(include_top, pooling, classes, classifier_activation, weights)
    data_format = _data_format()
    if input_tensor is not None:
        tensor_shape = _tensor_shape(input_tensor)
        input_shape = tensor_shape if input_shape is None else input_shape
    input_shape = input_shape_of(
        input_shape, data_format, require_static=include_top, weights=weights
    )
    image = _image_input(input_tensor, input_shape)
    body = models.backbone(network, image, **options)
    if include_top:
        outputs = heads.head(
            body.features,
            classes,
            classifier_activation,
            dropout_rate,
            body.options,
            data_format=data_format,
        )
    else:
        outputs = heads.pooled(body.features, pooling, data_format=data_format)
    inputs = keras.utils.get_source_inputs(input_tensor) if input_tensor is not None else [image]
    inputs = inputs[0] if len(inputs) == 1 else inputs
    # Built under our model name, which the weight importers recognise, then renamed.
    model = _load(keras.Model(inputs, outputs, name=spec.model_name), weights)
    return model if model.name == name else keras.Model(inputs, model.outputs[0], name=name)


def _check_weights(spec, weights, include_top, classes, options):
    """keras.applications' rules for ``weights``, plus the networks that have none published."""
    if not (weights is None or weights == IMAGENET or _is_file(weights)):
        raise ValueError(
            "The `weights` argument should be either `None` (random initialization), "
            "`imagenet` (pre-training on ImageNet), or the path to the weights file to be "
            f"loaded. Received: weights={weights!r}"
        )
    if weights != IMAGENET:
        return
    if spec.name not in RELEASED:
        raise ValueError(
            f"{spec.title} has no released ImageNet weights (the paper's authors published "
            "Inception-v4 and Inception-ResNet-v2 only); use `weights=None` or the path "
            "of weights you trained"
        )
    if include_top and classes not in (NUM_CLASSES, WITH_BACKGROUND):
        raise ValueError(
            f'If using `weights="imagenet"` with `include_top=True`, `classes` should be '
            f"{NUM_CLASSES} ({WITH_BACKGROUND} keeps the released checkpoints' background "
            f"class). Received classes={classes}"
        )
    paper = {"width_multiplier": 1.0, "repeats": spec.repeats}
    changed = [
        f"{k}={options[k]!r}"
        for k in SHAPING
        if options.get(k) is not None and _as_tuple(options[k]) != _as_tuple(paper[k])
    ]
    if changed:
        raise ValueError(
            f'`weights="imagenet"` needs the paper\'s network; leave out {", ".join(changed)}'
        )


def _is_file(weights):
    """A weights file that exists, or a TF V2 checkpoint given by its prefix."""
    if not isinstance(weights, (str, os.PathLike)):
        return False
    return os.path.exists(weights) or os.path.exists(os.fspath(weights) + ".index")


def _as_tuple(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _check_head(include_top, pooling, classes, classifier_activation, weights):
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"`pooling` should be None, 'avg' or 'max'. Received: pooling={pooling!r}")
    if include_top and (isinstance(classes, bool) or not isinstance(classes, int) or classes < 1):
        raise ValueError(f"`classes` should be a positive integer. Received: classes={classes!r}")
    if include_top and weights is not None:
        activation = keras.activations.get(classifier_activation)
        if activation not in (keras.activations.get("softmax"), keras.activations.get(None)):
            raise ValueError(
                "Only `None` and `softmax` activations are allowed for the "
                "`classifier_activation` argument when using pretrained weights, with "
                f"`include_top=True`; Received: classifier_activation={classifier_activation}"
            )


def input_shape_of(input_shape, data_format, *, require_static, weights):
    """keras.applications' input shape rules (``obtain_input_shape``) for our networks: the
    default 299x299x3 (3x299x299 channels first), which the top with ImageNet weights must have,
    sides at least 75, 3 channels with ImageNet weights, a static shape with the top."""
    first = data_format == "channels_first"
    default = (3, DEFAULT_SIZE, DEFAULT_SIZE) if first else (DEFAULT_SIZE, DEFAULT_SIZE, 3)
    if input_shape is None:
        return default if require_static else ((3, None, None) if first else (None, None, 3))
    input_shape = tuple(input_shape)
    if weights == IMAGENET and require_static and input_shape != default:
        raise ValueError(
            "When setting `include_top=True` and loading `imagenet` weights, `input_shape` "
            f"should be {default}.  Received: input_shape={input_shape}"
        )
    if len(input_shape) != 3:
        raise ValueError(
            f"`input_shape` must be a tuple of three integers. Received: input_shape={input_shape}"
        )
    channels, sides = (
        (input_shape[0], input_shape[1:]) if first else (input_shape[2], input_shape[:2])
    )
    if weights == IMAGENET and channels != 3:
        raise ValueError(f"The input must have 3 channels; Received `input_shape={input_shape}`")
    if any(side is not None and side < MIN_SIZE for side in sides):
        raise ValueError(
            f"Input size must be at least {MIN_SIZE}x{MIN_SIZE}; Received: "
            f"input_shape={input_shape}"
        )
    if require_static and None in input_shape:
        raise ValueError(
            "If `include_top` is True, you should specify a static `input_shape`. "
            f"Received: input_shape={input_shape}"
        )
    return input_shape


def _data_format():
    data_format = keras.config.image_data_format()
    if data_format not in DATA_FORMATS:  # keras.config.set_image_data_format checks it already
        raise ValueError(f"unknown image data format {data_format!r}")
    return data_format


def _tensor_shape(tensor):
    if not keras.backend.is_keras_tensor(tensor):  # Keras 3's Input(tensor=...) takes no other
        raise ValueError(
            "`input_tensor` must be a Keras tensor (e.g. the output of `keras.Input()` or "
            f"of layers applied to it). Received: input_tensor of type {type(tensor).__name__}"
        )
    shape = tuple(tensor.shape)
    if len(shape) != 4:
        raise ValueError(
            f"`input_tensor` must be a batch of images (4 dimensions). Received a tensor of "
            f"shape {shape}"
        )
    return shape[1:]


def _image_input(input_tensor, input_shape):
    """The tensor the network starts from: a new Input, or the given Keras tensor."""
    return keras.Input(shape=input_shape, name="image") if input_tensor is None else input_tensor


def _load(model, weights):
    """``weights`` into ``model``: a Keras ``.weights.h5`` file with Keras' own loader, anything
    else (``"imagenet"``, a published file, a ``.keras`` model) through ``inception.weights``."""
    if weights is None:
        return model
    if str(weights).endswith(".weights.h5"):
        model.load_weights(weights)
        return model
    # Imported here: reading slim checkpoints needs TensorFlow.
    from inception.weights import pretrained

    return pretrained.from_build(model, weights)
