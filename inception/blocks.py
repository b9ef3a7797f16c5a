"""One Keras layer per block of the paper, each described by a table of branches.

A block is a list of *stages* applied one after another; a stage is a list of parallel
*branches* whose outputs are concatenated on channels; a branch is a list of *ops*:

    conv(filters, kernel, strides=1, padding="same")   ConvBN; padding "V" is the paper's valid
    AVG                                                 3x3 average pool, stride 1, same padding
    MAX                                                 3x3 max pool, stride 2, "V"
    fork(conv, conv)                                    ops applied to the same input, concatenated

Each op is a layer named by its place (``op_name``): ``b{branch}_{position}``, ``s{stage}_`` in
front in the multi-stage stems, a fork's members ending in ``a``/``b`` (``b1_1`` is the second op
of the second branch). These names are the paths of every variable in .keras files and training
checkpoints; inception/weights/names.py derives the released files' names from the tables.

Filter counts and kernels follow docs/paper.md, which tells where the released code (whose weights
were published) differs from the drawn figures; BUILD_NOTES.md lists each case. The widths that
differ between networks come from their NetworkSpec (inception/networks.py). Every block takes the
shared convolution settings as one ``options`` (layers.ConvOptions); the settings as separate
keyword arguments are still accepted, the form of .keras files saved before ConvOptions existed.
Pure Keras 3: no TensorFlow import.
"""

import dataclasses

import keras
from keras import ops

from inception import networks
from inception.layers import XAVIER, ConvBN, ConvOptions, channel_axis

# Defaults of the Inception-ResNet blocks: Inception-ResNet-v2's widths (both variants share them).
_IRV2 = networks.INCEPTION_RESNET_V2_PAPER
_SCALE_A, _SCALE_B, _SCALE_C = networks.RESIDUAL_SCALES

AVG = ("avgpool",)
MAX = ("maxpool",)


def conv(filters, kernel, strides=1, padding="same"):
    return ("conv", filters, kernel, strides, padding)


def fork(*convs):
    return ("fork", convs)


def op_name(stage, branch, position, fork=None, stages=1):
    """The layer name of an op of a table: ``b{branch}_{position}``, with ``s{stage}_`` in front
    when the table has several stages; a fork's convolutions end in ``a``, ``b``."""
    name = f"s{stage}_b{branch}_{position}" if stages > 1 else f"b{branch}_{position}"
    return name if fork is None else f"{name}{chr(ord('a') + fork)}"


def ops_of(table):
    """(layer name, stage, branch, position, fork index or None, op) of every op of ``table``,
    forks expanded, in the order a block makes its layers."""
    for s, stage in enumerate(table):
        for b, branch in enumerate(stage):
            for j, op in enumerate(branch):
                members = enumerate(op[1]) if op[0] == "fork" else [(None, op)]
                for k, member in members:
                    yield op_name(s, b, j, k, len(table)), s, b, j, k, member


def _pop_shorthand(kwargs):
    """Takes the ConvOptions fields given as keyword arguments (the older form) out of ``kwargs``."""
    return {f.name: kwargs.pop(f.name) for f in dataclasses.fields(ConvOptions) if f.name in kwargs}


class _Block(keras.layers.Layer):
    """Builds the ops of its table and runs them stage by stage.

    ``table(*widths)`` is a static function of the constructor arguments named in ``WIDTHS``
    (subclasses set them as attributes, then call ``super().__init__``), so the weight-name map
    (inception/weights/names.py) reads a block's structure without making any layer.
    ``options`` (a layers.ConvOptions or its config) are the settings every convolution shares.
    """

    WIDTHS = ()

    def __init__(self, options=None, **kwargs):
        shorthand = _pop_shorthand(kwargs)
        super().__init__(**kwargs)
        # Every block makes its own copy: its initializer config is drawn here, in the order that
        # fixes which weights a seed gives.
        self.options = ConvOptions.of(options, **shorthand)
        self._axis = channel_axis(self.options.data_format)
        # _plan mirrors the table: stages -> branches -> op names (a fork is a list of names).
        table = self.table(*(getattr(self, w) for w in self.WIDTHS))
        self._plan = [[[] for _ in stage] for stage in table]
        for name, s, b, _, fork, op in ops_of(table):
            branch = self._plan[s][b]
            self._add_op(name, op)
            if fork is None:
                branch.append(name)
            elif fork == 0:
                branch.append([name])
            else:
                branch[-1].append(name)

    @staticmethod
    def table():
        raise TypeError("a block must define its table()")

    def _add_op(self, name, op):
        kind = op[0]
        if kind == "conv":
            _, filters, kernel, strides, padding = op
            layer = self.options.conv(filters, kernel, strides=strides, padding=padding, name=name)
        elif kind == "avgpool":
            # Keras' same-padded average excludes the padding from the count, as the paper's does.
            layer = keras.layers.AveragePooling2D(
                3, strides=1, padding="same", data_format=self.options.data_format, name=name
            )
        elif kind == "maxpool":
            layer = keras.layers.MaxPooling2D(
                3, strides=2, padding="valid", data_format=self.options.data_format, name=name
            )
        else:
            raise ValueError(f"unknown op {op!r}")
        setattr(self, name, layer)
        return name

    def build(self, input_shape):
        shape = tuple(input_shape)
        for stage in self._plan:
            outs = [self._build_branch(branch, shape) for branch in stage]
            shape = self._concatenated(outs)
        self._stages_output_shape = shape

    def _build_branch(self, names, shape):
        for name in names:
            if isinstance(name, list):
                outs = [self._build_branch([n], shape) for n in name]
                shape = self._concatenated(outs)
            else:
                layer = getattr(self, name)
                layer.build(shape)
                shape = tuple(layer.compute_output_shape(shape))
        return shape

    def _run_branch(self, names, x, training):
        for name in names:
            if isinstance(name, list):
                x = ops.concatenate(
                    [self._run_branch([n], x, training) for n in name], axis=self._axis
                )
            elif isinstance(getattr(self, name), ConvBN):
                x = getattr(self, name)(x, training=training)
            else:
                x = getattr(self, name)(x)
        return x

    def _run_stages(self, x, training):
        for stage in self._plan:
            outs = [self._run_branch(branch, x, training) for branch in stage]
            x = outs[0] if len(outs) == 1 else ops.concatenate(outs, axis=self._axis)
        return x

    def call(self, inputs, training=None):
        return self._run_stages(inputs, training)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for stage in self._plan:
            outs = [self._branch_shape(branch, shape) for branch in stage]
            shape = self._concatenated(outs)
        return shape

    def _branch_shape(self, names, shape):
        for name in names:
            if isinstance(name, list):
                outs = [self._branch_shape([n], shape) for n in name]
                shape = self._concatenated(outs)
            else:
                shape = tuple(getattr(self, name).compute_output_shape(shape))
        return shape

    def _concatenated(self, shapes):
        """The shape of ``shapes`` concatenated on the channel axis."""
        shape = list(shapes[0])
        shape[self._axis] = sum(s[self._axis] for s in shapes)
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "options": self.options.get_config()}


# ---------------------------------------------------------------------------------------------
# Stems


@keras.saving.register_keras_serializable(package="inception")
class Stem(_Block):
    """Figure 3: the stem of Inception-v4 and of the paper's Inception-ResNet-v2 (35x35x384).

    The released code puts the max pool before the convolution in the first mixed stage and the
    convolution before the pool in the last; the concatenation order follows it.
    """

    @staticmethod
    def table():
        return [
            [[conv(32, 3, 2, "V"), conv(32, 3, 1, "V"), conv(64, 3)]],
            [[MAX], [conv(96, 3, 2, "V")]],
            [
                [conv(64, 1), conv(96, 3, 1, "V")],
                [conv(64, 1), conv(64, (1, 7)), conv(64, (7, 1)), conv(96, 3, 1, "V")],
            ],
            [[conv(192, 3, 2, "V")], [MAX]],
        ]


@keras.saving.register_keras_serializable(package="inception")
class StemResNetV1(_Block):
    """Figure 14: the stem of Inception-ResNet-v1 (35x35x256)."""

    @staticmethod
    def table():
        return [
            [
                [
                    conv(32, 3, 2, "V"),
                    conv(32, 3, 1, "V"),
                    conv(64, 3),
                    MAX,
                    conv(80, 1),
                    conv(192, 3, 1, "V"),
                    conv(256, 3, 2, "V"),
                ]
            ],
        ]


@keras.saving.register_keras_serializable(package="inception")
class StemResNetV2Release(_Block):
    """The released Inception-ResNet-v2 stem (not drawn in the paper): 35x35x320.

    Figure 14's layers up to the second max pool (with 1x1 80 valid), then a mixed block
    (TF-slim's ``Mixed_5b``) of 1x1 / 5x5 / double 3x3 / pool branches.
    """

    @staticmethod
    def table():
        return [
            [
                [
                    conv(32, 3, 2, "V"),
                    conv(32, 3, 1, "V"),
                    conv(64, 3),
                    MAX,
                    conv(80, 1, 1, "V"),
                    conv(192, 3, 1, "V"),
                    MAX,
                ]
            ],
            [
                [conv(96, 1)],
                [conv(48, 1), conv(64, 5)],
                [conv(64, 1), conv(96, 3), conv(96, 3)],
                [AVG, conv(64, 1)],
            ],
        ]


# ---------------------------------------------------------------------------------------------
# Inception-v4 blocks


@keras.saving.register_keras_serializable(package="inception")
class InceptionA(_Block):
    """Figure 4: the 35x35 Inception-A block of Inception-v4 (384 channels out)."""

    @staticmethod
    def table():
        return [
            [
                [conv(96, 1)],
                [conv(64, 1), conv(96, 3)],
                [conv(64, 1), conv(96, 3), conv(96, 3)],
                [AVG, conv(96, 1)],
            ]
        ]


@keras.saving.register_keras_serializable(package="inception")
class InceptionB(_Block):
    """Figure 5: the 17x17 Inception-B block of Inception-v4 (1024 channels out).

    Kernel orientations are the released code's: 1x7 then 7x1 in the second branch, and
    7x1, 1x7, 7x1, 1x7 in the third.
    """

    @staticmethod
    def table():
        return [
            [
                [conv(384, 1)],
                [conv(192, 1), conv(224, (1, 7)), conv(256, (7, 1))],
                [
                    conv(192, 1),
                    conv(192, (7, 1)),
                    conv(224, (1, 7)),
                    conv(224, (7, 1)),
                    conv(256, (1, 7)),
                ],
                [AVG, conv(128, 1)],
            ]
        ]


@keras.saving.register_keras_serializable(package="inception")
class InceptionC(_Block):
    """Figure 6: the 8x8 Inception-C block of Inception-v4 (1536 channels out)."""

    @staticmethod
    def table():
        return [
            [
                [conv(256, 1)],
                [conv(384, 1), fork(conv(256, (1, 3)), conv(256, (3, 1)))],
                [
                    conv(384, 1),
                    conv(448, (3, 1)),
                    conv(512, (1, 3)),
                    fork(conv(256, (1, 3)), conv(256, (3, 1))),
                ],
                [AVG, conv(256, 1)],
            ]
        ]


@keras.saving.register_keras_serializable(package="inception")
class ReductionA(_Block):
    """Figure 7: 35x35 -> 17x17 reduction, with Table 1's filter counts k, l, m, n (each
    network's are its ``NetworkSpec.reduction_a``)."""

    WIDTHS = ("k", "l", "m", "n")

    def __init__(self, k, l, m, n, **kwargs):  # noqa: E741 (the paper's names)
        self.k, self.l, self.m, self.n = k, l, m, n
        super().__init__(**kwargs)

    @staticmethod
    def table(k, l, m, n):  # noqa: E741
        return [
            [
                [conv(n, 3, 2, "V")],
                [conv(k, 1), conv(l, 3), conv(m, 3, 2, "V")],
                [MAX],
            ]
        ]

    def get_config(self):
        return {**super().get_config(), "k": self.k, "l": self.l, "m": self.m, "n": self.n}


@keras.saving.register_keras_serializable(package="inception")
class ReductionB(_Block):
    """Figure 8: Inception-v4's 17x17 -> 8x8 reduction (1536 channels out)."""

    @staticmethod
    def table():
        return [
            [
                [conv(192, 1), conv(192, 3, 2, "V")],
                [conv(256, 1), conv(256, (1, 7)), conv(320, (7, 1)), conv(320, 3, 2, "V")],
                [MAX],
            ]
        ]


@keras.saving.register_keras_serializable(package="inception")
class InceptionResNetReductionB(_Block):
    """Figures 12 (Inception-ResNet-v1) and 18 (Inception-ResNet-v2): 17x17 -> 8x8 reduction.

    ``branch_filters`` lists the three convolution towers (``NetworkSpec.reduction_b``); each
    ends with a stride-2 valid 3x3. The released Inception-ResNet-v2 concatenates the towers
    first and the max pool last; the same order is used for v1.
    """

    WIDTHS = ("branch_filters",)

    def __init__(self, branch_filters=_IRV2.reduction_b, **kwargs):
        self.branch_filters = tuple(tuple(b) for b in branch_filters)
        super().__init__(**kwargs)

    @staticmethod
    def table(branch_filters):
        branches = []
        for tower in branch_filters:
            *first, last = tower
            branches.append(
                [conv(first[0], 1)] + [conv(f, 3) for f in first[1:]] + [conv(last, 3, 2, "V")]
            )
        return [branches + [[MAX]]]

    def get_config(self):
        return {**super().get_config(), "branch_filters": [list(b) for b in self.branch_filters]}


# ---------------------------------------------------------------------------------------------
# Inception-ResNet blocks


class _Residual(_Block):
    """Branches -> concat -> 1x1 linear expansion (bias, no BN) -> x + scale * r -> activation.

    Section 3.2: no BatchNorm on top of the sum. Section 3.3: the residual is scaled down (0.1-0.3)
    before the add, which is what kept the wide networks from "dying". The expansion's width is
    the block input's, so it is only known in build().
    """

    WIDTHS = ("branch_filters",)

    def __init__(self, branch_filters, scale=1.0, activation="relu", **kwargs):
        self.branch_filters = tuple(tuple(b) for b in branch_filters)
        self.scale = float(scale)
        self.activation = activation
        super().__init__(**kwargs)
        self.expand = None

    def build(self, input_shape):
        super().build(input_shape)
        self.expand = keras.layers.Conv2D(
            int(input_shape[self._axis]),
            1,
            use_bias=True,
            kernel_initializer=self.options.conv_initializer,
            kernel_regularizer=self.options.kernel_regularizer(),
            bias_regularizer=self.options.bias_regularizer(),
            data_format=self.options.data_format,
            name="expand",
        )
        self.expand.build(self._stages_output_shape)
        self.act = keras.layers.Activation(self.activation, name="act") if self.activation else None

    def call(self, inputs, training=None):
        residual = self.expand(self._run_stages(inputs, training))
        x = inputs + residual * self.scale
        return self.act(x) if self.act is not None else x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            branch_filters=[list(b) for b in self.branch_filters],
            scale=self.scale,
            activation=self.activation,
        )
        return config


@keras.saving.register_keras_serializable(package="inception")
class InceptionResNetA(_Residual):
    """Figures 10 (v1) and 16 (v2), 35x35 grid: a 1x1, a 3x3 and a double-3x3 branch.

    ``branch_filters``: ``NetworkSpec.block_a``, e.g. ((32,), (32, 32), (32, 48, 64)) for v2.
    """

    def __init__(self, branch_filters=_IRV2.block_a, scale=_SCALE_A, **kwargs):
        super().__init__(branch_filters, scale=scale, **kwargs)

    @staticmethod
    def table(branch_filters):
        (a,), (b1, b2), (c1, c2, c3) = branch_filters
        return [
            [
                [conv(a, 1)],
                [conv(b1, 1), conv(b2, 3)],
                [conv(c1, 1), conv(c2, 3), conv(c3, 3)],
            ]
        ]


@keras.saving.register_keras_serializable(package="inception")
class InceptionResNetB(_Residual):
    """Figures 11 (v1) and 17 (v2), 17x17 grid: a 1x1 branch and a 1x1, 1x7, 7x1 branch.

    ``branch_filters``: ``NetworkSpec.block_b``, e.g. ((192,), (128, 160, 192)) for v2.
    """

    def __init__(self, branch_filters=_IRV2.block_b, scale=_SCALE_B, **kwargs):
        super().__init__(branch_filters, scale=scale, **kwargs)

    @staticmethod
    def table(branch_filters):
        (a,), (b1, b2, b3) = branch_filters
        return [[[conv(a, 1)], [conv(b1, 1), conv(b2, (1, 7)), conv(b3, (7, 1))]]]


@keras.saving.register_keras_serializable(package="inception")
class InceptionResNetC(_Residual):
    """Figures 13 (v1) and 19 (v2), 8x8 grid: a 1x1 branch and a 1x1, 1x3, 3x1 branch.

    ``branch_filters``: ``NetworkSpec.block_c``, e.g. ((192,), (192, 224, 256)) for v2.
    """

    def __init__(self, branch_filters=_IRV2.block_c, scale=_SCALE_C, **kwargs):
        super().__init__(branch_filters, scale=scale, **kwargs)

    @staticmethod
    def table(branch_filters):
        (a,), (b1, b2, b3) = branch_filters
        return [[[conv(a, 1)], [conv(b1, 1), conv(b2, (1, 3)), conv(b3, (3, 1))]]]


# ---------------------------------------------------------------------------------------------
# Auxiliary classifier


@keras.saving.register_keras_serializable(package="inception")
class AuxHead(keras.layers.Layer):
    """The released code's auxiliary classifier on the 17x17 grid.

    avgpool 5x5 stride 3 V -> 1x1 128 -> conv 768 V whose kernel covers the whole pooled grid
    (5x5 at 299x299) -> flatten -> fully connected. For inputs smaller than 299 the pool window
    shrinks to the grid so the head still builds. ``options`` are the blocks' (``decay_biases``
    covers the fully connected layer's bias); the fully connected layer computes in float32.
    """

    def __init__(self, num_classes, classifier_activation="softmax", options=None, **kwargs):
        shorthand = _pop_shorthand(kwargs)
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.classifier_activation = classifier_activation
        self.options = ConvOptions.of(options, **shorthand)
        self.proj = self.options.conv(128, 1, name="proj")
        # Flatten reads channels_first maps in channels_last order: the same fc weights in both.
        self.flatten = keras.layers.Flatten(data_format=self.options.data_format, name="flatten")

    def _sides(self, shape):
        return (
            tuple(shape[2:4]) if self.options.data_format == "channels_first" else tuple(shape[1:3])
        )

    def build(self, input_shape):
        h, w = self._sides(input_shape)
        pool = (min(5, h), min(5, w))
        self.pool = keras.layers.AveragePooling2D(
            pool, strides=3, padding="valid", data_format=self.options.data_format, name="pool"
        )
        shape = self.pool.compute_output_shape(input_shape)
        self.proj.build(shape)
        shape = self.proj.compute_output_shape(shape)
        self.conv = self.options.conv(768, self._sides(shape), padding="V", name="conv")
        self.conv.build(shape)
        shape = self.conv.compute_output_shape(shape)
        # float32 under a mixed policy, like the main classifier (models.build); slim's
        # fully_connected default initialiser is Xavier (Glorot uniform) in every network.
        self.fc = keras.layers.Dense(
            self.num_classes,
            activation=self.classifier_activation,
            kernel_initializer=XAVIER,
            kernel_regularizer=self.options.kernel_regularizer(),
            bias_regularizer=self.options.bias_regularizer(),
            dtype="float32",
            name="fc",
        )
        self.fc.build((shape[0], shape[1] * shape[2] * shape[3]))

    def call(self, inputs, training=None):
        x = self.pool(inputs)
        x = self.proj(x, training=training)
        x = self.conv(x, training=training)
        return self.fc(self.flatten(x))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            classifier_activation=self.classifier_activation,
            options=self.options.get_config(),
        )
        return config
