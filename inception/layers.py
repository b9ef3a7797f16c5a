"""The one building brick of every network in the paper: convolution -> BatchNorm -> ReLU, and
``ConvOptions``, the settings all the convolutions of a network share (TF-slim's arg scope).

Pure Keras 3 (no TensorFlow import) so the networks run on any Keras backend.
"""

import dataclasses

import keras

from inception import networks
from inception.networks import BN_EPSILON, BN_MOMENTUM

# The paper's figures mark valid-padded convolutions with "V"; everything else is "same".
_PADDINGS = {"V": "valid", "valid": "valid", "same": "same"}


def scaled(filters, width_multiplier):
    """A filter count scaled by the width multiplier (never below 1)."""
    return max(1, int(round(filters * width_multiplier)))


# The convolution initialisers of the released nets (TF-slim). Inception-v4's arg scope uses
# slim's variance_scaling_initializer() (He et al.: factor 2, fan-in), which draws from a normal
# of stddev sqrt(1.3 * 2 / fan_in) truncated at two of those stddevs. Keras' VarianceScaling
# "truncated_normal" draws with stddev sqrt(scale / fan_in) / 0.87962566 (0.8796... is the
# standard deviation of a unit normal truncated at +-2), so scale = 2.6 * 0.87962566**2 gives
# exactly slim's distribution (plain He normal would be 0.3% narrower). The Inception-ResNet
# arg scope sets no initialiser, so slim's conv2d default applies: Xavier, i.e. Glorot uniform.
TRUNCATED_NORMAL_STDDEV = 0.87962566103423978
SLIM_VARIANCE_SCALING = {
    "class_name": "VarianceScaling",
    "config": {
        "scale": 2.0 * 1.3 * TRUNCATED_NORMAL_STDDEV**2,
        "mode": "fan_in",
        "distribution": "truncated_normal",
        "seed": None,
    },
}
XAVIER = "glorot_uniform"
# The initializers a NetworkSpec names (networks.SLIM_HE, networks.XAVIER).
RELEASED_INITIALIZERS = {networks.SLIM_HE: SLIM_VARIANCE_SCALING, networks.XAVIER: XAVIER}


def initializer_config(identifier):
    """A Keras initializer identifier (name, config dict or instance) as a serialisable config.

    Layers keep the config and build a fresh initializer from it for every kernel: one unseeded
    Keras initializer instance fixes its seed when it is created, so sharing an instance would
    give every same-shaped kernel the same values.
    """
    initializer = keras.initializers.get(identifier)
    if initializer is None:
        raise ValueError(f"conv_initializer must be a Keras initializer, got {identifier!r}")
    return keras.initializers.serialize(initializer)


def kernel_regularizer(weight_decay):
    """L2 penalty in the released code's convention.

    TF-slim adds ``weight_decay * sum(w**2) / 2``; Keras' ``L2(l2)`` adds ``l2 * sum(w**2)``,
    so slim's 4e-5 is Keras' 2e-5.
    """
    return keras.regularizers.L2(weight_decay / 2.0) if weight_decay else None


def bias_regularizer(weight_decay, decay_biases):
    """The same penalty on a bias when ``decay_biases`` (the released Inception-ResNet-v2 arg
    scope regularises conv and fully-connected biases too; Inception-v4's does not)."""
    return kernel_regularizer(weight_decay) if decay_biases else None


def channel_axis(data_format):
    """The channel axis of a 4-D batch in ``data_format`` (BatchNorm's axis, concatenations)."""
    return 1 if data_format == "channels_first" else -1


@keras.saving.register_keras_serializable(package="inception")
class ConvBN(keras.layers.Layer):
    """Conv2D (no bias) -> BatchNormalization (no gamma) -> activation.

    Args:
        filters: output channels.
        kernel_size: int or (rows, cols); ``(1, 7)`` is the paper's "1x7".
        strides: int or pair.
        padding: ``"V"`` (the paper's valid) or ``"same"``; ``"valid"`` is accepted too.
        activation: name of a Keras activation, or None for a linear output.
        bn_momentum, bn_epsilon: BatchNorm moving-average decay and epsilon.
        weight_decay: slim-convention L2 weight decay on the kernel (0 disables it).
        bn_synchronized: compute batch statistics across all replicas of a tf.distribute
            strategy (large global batches split into small per-replica ones need it).
        conv_initializer: initializer of the convolution kernel (name, config or instance);
            ``models.build`` chooses the released one per network (``RELEASED_INITIALIZERS``);
            the layer default is Keras' (Glorot uniform, equal to XAVIER).
        data_format: "channels_last" or "channels_first"; None: ``keras.config.image_data_format()``
            when the layer is made (then saved in its config).
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="same",
        activation="relu",
        bn_momentum=BN_MOMENTUM,
        bn_epsilon=BN_EPSILON,
        weight_decay=0.0,
        bn_synchronized=False,
        conv_initializer=XAVIER,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if padding not in _PADDINGS:
            raise ValueError(f"padding must be 'V' (valid) or 'same', got {padding!r}")
        self.filters = int(filters)
        self.kernel_size = kernel_size
        self.strides = strides
        self.padding = padding
        self.activation = activation
        self.bn_momentum = bn_momentum
        self.bn_epsilon = bn_epsilon
        self.weight_decay = weight_decay
        self.bn_synchronized = bn_synchronized
        self.conv_initializer = initializer_config(conv_initializer)
        self.data_format = data_format or keras.config.image_data_format()
        self.conv = keras.layers.Conv2D(
            self.filters,
            kernel_size,
            strides=strides,
            padding=_PADDINGS[padding],
            use_bias=False,
            kernel_initializer=self.conv_initializer,
            kernel_regularizer=kernel_regularizer(weight_decay),
            data_format=self.data_format,
            name="conv",
        )
        # scale=False: ReLU follows, so a learned gamma is redundant (released code).
        self.bn = keras.layers.BatchNormalization(
            momentum=bn_momentum,
            epsilon=bn_epsilon,
            scale=False,
            synchronized=bn_synchronized,
            axis=channel_axis(self.data_format),
            name="bn",
        )
        self.act = keras.layers.Activation(activation, name="act") if activation else None

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.bn.build(self.conv.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        if training and self.bn.trainable:
            x = self.bn(self.conv(inputs), training=training)
        else:
            x = self._folded(inputs)
        return self.act(x) if self.act is not None else x

    def _folded(self, inputs):
        """Inference (and frozen BatchNorm): the BatchNorm folded into the convolution,
        conv(x, W * s) + (beta - mean * s) with s = 1 / sqrt(variance + epsilon), computed in
        float32 from the float32 variables and cast to the compute dtype. Equal to BatchNorm's
        own inference up to round-off, and faster: Keras' BatchNormalization casts a bfloat16
        input to float32 and back (measured on full-size Inception-ResNet-v2, 299x299, batch 32,
        this 2-core AVX512_BF16 CPU: bfloat16 inference 1.13x, float32 1.02x; BUILD_NOTES
        "Folding BatchNorm")."""
        bn, conv = self.bn, self.conv
        scale = keras.ops.rsqrt(keras.ops.convert_to_tensor(bn.moving_variance) + bn.epsilon)
        kernel = keras.ops.convert_to_tensor(conv.kernel) * scale
        shift = (
            keras.ops.convert_to_tensor(bn.beta)
            - keras.ops.convert_to_tensor(bn.moving_mean) * scale
        )
        x = keras.ops.conv(
            inputs,
            keras.ops.cast(kernel, self.compute_dtype),
            strides=conv.strides,
            padding=conv.padding,
            data_format=conv.data_format,
            dilation_rate=conv.dilation_rate,
        )
        if conv.data_format == "channels_first":
            shift = keras.ops.reshape(shift, (-1, 1, 1))
        return x + keras.ops.cast(shift, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            activation=self.activation,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
            weight_decay=self.weight_decay,
            bn_synchronized=self.bn_synchronized,
            conv_initializer=self.conv_initializer,
            data_format=self.data_format,
        )
        return config


@dataclasses.dataclass(frozen=True)
class ConvOptions:
    """The settings every convolution of a network shares, bound once and handed to each block.

    ``conv(filters, kernel, ...)`` makes a ConvBN with them; ``models.build`` makes one per
    network from its spec and its own arguments.
    """

    width_multiplier: float = 1.0
    """Scales every filter count (1.0 is the paper)."""
    bn_momentum: float = BN_MOMENTUM
    """BatchNorm moving-average decay."""
    bn_epsilon: float = BN_EPSILON
    """BatchNorm epsilon."""
    weight_decay: float = 0.0
    """slim-convention L2 decay on every kernel (0 disables it)."""
    bn_synchronized: bool = False
    """BatchNorm statistics over the global batch under tf.distribute."""
    conv_initializer: object = XAVIER
    """Initializer of every convolution kernel: a Keras name, config or instance."""
    decay_biases: bool = False
    """Apply ``weight_decay`` to biases too (residual expansions, fully connected layers)."""
    data_format: str = None
    """"channels_last" or "channels_first"; None: ``keras.config.image_data_format()`` (``of``
    fixes it when a block is made, so a saved block keeps its format)."""

    @classmethod
    def of(cls, options=None, **shorthand):
        """``options`` (ConvOptions, its config or None) with ``shorthand`` fields laid over it.

        The fields as keyword arguments are the form blocks took before this class existed (and
        the form their saved configs have). The initializer comes back as a config, which layers
        store and rebuild a fresh initializer from (see ``initializer_config``).
        """
        unknown = sorted(set(shorthand) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TypeError(f"unknown conv options {unknown}. Received: {shorthand!r}")
        if options is None:
            options = cls()
        elif isinstance(options, dict):
            options = cls.from_config(options)
        elif not isinstance(options, cls):
            raise TypeError(
                f"options must be a ConvOptions or its config. Received: options={options!r}"
            )
        options = dataclasses.replace(options, **shorthand)
        return dataclasses.replace(
            options,
            conv_initializer=initializer_config(options.conv_initializer),
            decay_biases=bool(options.decay_biases),
            data_format=options.data_format or keras.config.image_data_format(),
        )

    def get_config(self):
        config = dataclasses.asdict(self)
        if isinstance(self.conv_initializer, keras.initializers.Initializer):
            config["conv_initializer"] = keras.initializers.serialize(self.conv_initializer)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def scaled(self, filters):
        """A filter count of the paper at this width."""
        return scaled(filters, self.width_multiplier)

    def kernel_regularizer(self):
        return kernel_regularizer(self.weight_decay)

    def bias_regularizer(self):
        return bias_regularizer(self.weight_decay, self.decay_biases)

    def conv(self, filters, kernel_size, strides=1, padding="same", activation="relu", name=None):
        """A ConvBN of ``filters`` (the paper's count, scaled here) with these settings."""
        return ConvBN(
            self.scaled(filters),
            kernel_size,
            strides=strides,
            padding=padding,
            activation=activation,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
            weight_decay=self.weight_decay,
            bn_synchronized=self.bn_synchronized,
            conv_initializer=self.conv_initializer,
            data_format=self.data_format,
            name=name,
        )
