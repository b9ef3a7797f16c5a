"""The paper's networks as data: one ``NetworkSpec`` per network and variant, in ``SPECS``.

``models.build`` reads a spec to assemble the network, ``weights.names`` reads its block counts,
``tools/draw_networks.py`` its titles, and the command-line flags its names and variants. One
place for each constant; docs/paper.md tells where each number comes from.
Pure Python: no Keras, so the flags and docs read it without loading a backend.
"""

import dataclasses

IMAGE_SIZE = 299
# The released code's eval crop: the central 87.5% of each side (also the 1-crop protocol), with
# which every released checkpoint was evaluated. ``data.preprocessing`` applies it; it is here,
# beside the input size, because the configs and flags that default to it load no TensorFlow.
EVAL_CENTRAL_FRACTION = 0.875
# The stem and two reductions (all 'V' padding) need at least 75x75 to leave a 1x1 map.
MIN_IMAGE_SIZE = 75
# BatchNorm defaults of the released code (docs/paper.md "Conventions of all three networks").
BN_MOMENTUM = 0.9997
BN_EPSILON = 0.001
# The released code's residual scales for the A, B and C blocks (paper section 3.3 says 0.1-0.3).
RESIDUAL_SCALES = (0.17, 0.10, 0.20)

# Stems (``stem``): Figure 3 (Inception-v4, the paper's Inception-ResNet-v2), Figure 14
# (Inception-ResNet-v1), and the released Inception-ResNet-v2's own (drawn nowhere).
STEM_FIGURE_3, STEM_FIGURE_14, STEM_RELEASED = "figure_3", "figure_14", "released"
# Initialisers of the released arg scopes (``conv_initializer``); inception/layers.py defines them.
SLIM_HE, XAVIER = "slim_he", "xavier"
# Families (``family``): the block-name prefix and which builder body assembles the network.
INCEPTION, INCEPTION_RESNET = "inception", "inception_resnet"


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
    """Everything ``models.build`` needs to know about one network of the paper."""

    name: str
    """The builder name, e.g. "inception_resnet_v2"."""
    variant: str
    """"paper" (the figures as drawn) or "release" (the authors' released code)."""
    title: str
    """The network's name in the paper, for messages and pictures."""
    source: str
    """Where the layout is drawn: "Figure 9", "Figure 15, stem Figure 14", "released code"."""
    family: str
    """INCEPTION (Figure 9: plain Inception blocks) or INCEPTION_RESNET (Figure 15: residual)."""
    stem: str
    """STEM_FIGURE_3 (Figure 3), STEM_FIGURE_14 (Figure 14) or STEM_RELEASED."""
    repeats: tuple
    """How many A, B and C blocks (Figures 9 and 15)."""
    reduction_a: tuple
    """Table 1's k, l, m, n: the filter counts of Reduction-A (Figure 7)."""
    block_a: tuple = None
    """Branch widths of Inception-ResNet-A (Figures 10, 16); None: Inception-v4's Figure 4."""
    block_b: tuple = None
    """Branch widths of Inception-ResNet-B (Figures 11, 17); None: Inception-v4's Figure 5."""
    block_c: tuple = None
    """Branch widths of Inception-ResNet-C (Figures 13, 19); None: Inception-v4's Figure 6."""
    reduction_b: tuple = None
    """Tower widths of Reduction-B (Figures 12, 18); None: Inception-v4's Figure 8."""
    residual_scales: tuple = None
    """Default scales of the A, B, C residuals (section 3.3); None: no residuals (Inception-v4)."""
    final_linear_block: bool = False
    """Released Inception-ResNet-v2: one more C block, scale 1.0 and no ReLU, after the C blocks."""
    final_conv: int = None
    """Released Inception-ResNet-v2: the 1x1 convolution's width ("conv_7b") before pooling."""
    aux_after: str = "b"
    """The auxiliary head reads the last block of this stage (the 17x17 grid, released code)."""
    conv_initializer: str = XAVIER
    """SLIM_HE (Inception-v4's released arg scope) or XAVIER (slim's default, Inception-ResNet)."""
    decay_biases: bool = False
    """Weight decay on biases too (the released Inception-ResNet-v2 arg scope; v4's decays kernels)."""

    @property
    def model_name(self):
        """The name of the built keras.Model (Inception-ResNet-v2 says which variant it is)."""
        return self.name if len(VARIANTS[self.name]) == 1 else f"{self.name}_{self.variant}"

    def stage_names(self, stage):
        """The block names of stage "a", "b" or "c", in order (``inception_resnet_b_1`` ...)."""
        count = self.repeats["abc".index(stage)]
        if stage == "c" and self.final_linear_block:
            count += 1
        return [f"{self.family}_{stage}_{i + 1}" for i in range(count)]

    @property
    def block_names(self):
        """Every block's layer name in order, stem to the last layer before pooling."""
        return (
            ["stem"]
            + self.stage_names("a")
            + ["reduction_a"]
            + self.stage_names("b")
            + ["reduction_b"]
            + self.stage_names("c")
            + (["conv_7b"] if self.final_conv else [])
        )

    @property
    def aux_block(self):
        """The name of the block whose output feeds the auxiliary head."""
        return self.stage_names(self.aux_after)[-1]


INCEPTION_V4 = NetworkSpec(
    "inception_v4",
    "paper",
    "Inception-v4",
    "Figure 9",
    INCEPTION,
    STEM_FIGURE_3,
    repeats=(4, 7, 3),
    reduction_a=(192, 224, 256, 384),
    conv_initializer=SLIM_HE,
)
INCEPTION_RESNET_V1 = NetworkSpec(
    "inception_resnet_v1",
    "paper",
    "Inception-ResNet-v1",
    "Figure 15, stem Figure 14",
    INCEPTION_RESNET,
    STEM_FIGURE_14,
    repeats=(5, 10, 5),
    reduction_a=(192, 192, 256, 384),
    block_a=((32,), (32, 32), (32, 32, 32)),
    block_b=((128,), (128, 128, 128)),
    block_c=((192,), (192, 192, 192)),
    reduction_b=((256, 384), (256, 256), (256, 256, 256)),
    # No released code: it takes its family's (Inception-ResNet-v2's) arg scope.
    residual_scales=RESIDUAL_SCALES,
    conv_initializer=XAVIER,
    decay_biases=True,
)
INCEPTION_RESNET_V2_PAPER = dataclasses.replace(
    INCEPTION_RESNET_V1,
    name="inception_resnet_v2",
    title="Inception-ResNet-v2",
    source="Figure 15 as drawn",
    stem=STEM_FIGURE_3,
    reduction_a=(256, 256, 384, 384),
    block_a=((32,), (32, 32), (32, 48, 64)),
    block_b=((192,), (128, 160, 192)),
    block_c=((192,), (192, 224, 256)),
    reduction_b=((256, 384), (256, 288), (256, 288, 320)),
)
# The released network (also keras.applications' and timm's): its own stem, twice the blocks,
# then a C block with scale 1.0 and no ReLU, and a 1x1 1536 convolution.
INCEPTION_RESNET_V2_RELEASE = dataclasses.replace(
    INCEPTION_RESNET_V2_PAPER,
    variant="release",
    source="released code",
    stem=STEM_RELEASED,
    repeats=(10, 20, 9),
    final_linear_block=True,
    final_conv=1536,
)

# The first variant listed for a network is its default.
SPECS = {
    (s.name, s.variant): s
    for s in (
        INCEPTION_V4,
        INCEPTION_RESNET_V1,
        INCEPTION_RESNET_V2_RELEASE,
        INCEPTION_RESNET_V2_PAPER,
    )
}

NAMES = tuple(dict.fromkeys(name for name, _ in SPECS))
VARIANTS = {name: tuple(v for n, v in SPECS if n == name) for name in NAMES}
DEFAULT_VARIANT = {name: variants[0] for name, variants in VARIANTS.items()}


def spec(name, variant=None):
    """The NetworkSpec of ``name`` / ``variant`` (None: the network's default variant)."""
    if name not in VARIANTS:
        raise ValueError(
            f"unknown model; choose one of {', '.join(NAMES)}. Received: name={name!r}"
        )
    variant = DEFAULT_VARIANT[name] if variant is None else variant
    if variant not in VARIANTS[name]:
        raise ValueError(
            f"unknown variant of {name}; allowed: {', '.join(VARIANTS[name])}. "
            f"Received: variant={variant!r}"
        )
    return SPECS[(name, variant)]
