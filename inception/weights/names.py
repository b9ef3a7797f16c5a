"""The name map: each variable of our Inception-v4 / Inception-ResNet-v2 <-> the published files.

Written out block by block so it can be read next to the TF-slim definitions (``Mixed_5b``,
``Repeat/block35_1``, ...) and timm's modules (``features.6``, ``repeat.0``, ...). Each row of a
block table is ``(our op, slim scope inside the block, timm module inside the block)``; our ops
are named by blocks.py (``b{branch}_{index}``, ``s{stage}_b{branch}_{index}``, forks ``...a``/``...b``).

``slots(network)`` expands the tables into one ``Slot`` per variable of our model; the block
names and counts are read from the network's NetworkSpec (inception/networks.py). The tests check
the expansion against the variable lists of the released networks (every slim checkpoint key and
every timm state_dict key used exactly once, shapes equal), so the tables cannot silently drift.
Pure Python: no TensorFlow, no Keras.
"""

import dataclasses

from inception import networks

# ---------------------------------------------------------------------------------------------
# Inception-v4 (slim scope "InceptionV4", timm "inception_v4")

V4_STEM = (  # Figure 3; slim Conv2d_1a..Mixed_5a, timm features.0-5
    ("s0_b0_0", "Conv2d_1a_3x3", "features.0"),
    ("s0_b0_1", "Conv2d_2a_3x3", "features.1"),
    ("s0_b0_2", "Conv2d_2b_3x3", "features.2"),
    ("s1_b1_0", "Mixed_3a/Branch_1/Conv2d_0a_3x3", "features.3.conv"),
    ("s2_b0_0", "Mixed_4a/Branch_0/Conv2d_0a_1x1", "features.4.branch0.0"),
    ("s2_b0_1", "Mixed_4a/Branch_0/Conv2d_1a_3x3", "features.4.branch0.1"),
    ("s2_b1_0", "Mixed_4a/Branch_1/Conv2d_0a_1x1", "features.4.branch1.0"),
    ("s2_b1_1", "Mixed_4a/Branch_1/Conv2d_0b_1x7", "features.4.branch1.1"),
    ("s2_b1_2", "Mixed_4a/Branch_1/Conv2d_0c_7x1", "features.4.branch1.2"),
    ("s2_b1_3", "Mixed_4a/Branch_1/Conv2d_1a_3x3", "features.4.branch1.3"),
    ("s3_b0_0", "Mixed_5a/Branch_0/Conv2d_1a_3x3", "features.5.conv"),
)
V4_INCEPTION_A = (  # Figure 4
    ("b0_0", "Branch_0/Conv2d_0a_1x1", "branch0"),
    ("b1_0", "Branch_1/Conv2d_0a_1x1", "branch1.0"),
    ("b1_1", "Branch_1/Conv2d_0b_3x3", "branch1.1"),
    ("b2_0", "Branch_2/Conv2d_0a_1x1", "branch2.0"),
    ("b2_1", "Branch_2/Conv2d_0b_3x3", "branch2.1"),
    ("b2_2", "Branch_2/Conv2d_0c_3x3", "branch2.2"),
    ("b3_1", "Branch_3/Conv2d_0b_1x1", "branch3.1"),  # b3_0 is the average pool
)
REDUCTION_A = (  # Figure 7 (both networks)
    ("b0_0", "Branch_0/Conv2d_1a_3x3", "branch0"),
    ("b1_0", "Branch_1/Conv2d_0a_1x1", "branch1.0"),
    ("b1_1", "Branch_1/Conv2d_0b_3x3", "branch1.1"),
    ("b1_2", "Branch_1/Conv2d_1a_3x3", "branch1.2"),
)
V4_INCEPTION_B = (  # Figure 5
    ("b0_0", "Branch_0/Conv2d_0a_1x1", "branch0"),
    ("b1_0", "Branch_1/Conv2d_0a_1x1", "branch1.0"),
    ("b1_1", "Branch_1/Conv2d_0b_1x7", "branch1.1"),
    ("b1_2", "Branch_1/Conv2d_0c_7x1", "branch1.2"),
    ("b2_0", "Branch_2/Conv2d_0a_1x1", "branch2.0"),
    ("b2_1", "Branch_2/Conv2d_0b_7x1", "branch2.1"),
    ("b2_2", "Branch_2/Conv2d_0c_1x7", "branch2.2"),
    ("b2_3", "Branch_2/Conv2d_0d_7x1", "branch2.3"),
    ("b2_4", "Branch_2/Conv2d_0e_1x7", "branch2.4"),
    ("b3_1", "Branch_3/Conv2d_0b_1x1", "branch3.1"),
)
V4_REDUCTION_B = (  # Figure 8
    ("b0_0", "Branch_0/Conv2d_0a_1x1", "branch0.0"),
    ("b0_1", "Branch_0/Conv2d_1a_3x3", "branch0.1"),
    ("b1_0", "Branch_1/Conv2d_0a_1x1", "branch1.0"),
    ("b1_1", "Branch_1/Conv2d_0b_1x7", "branch1.1"),
    ("b1_2", "Branch_1/Conv2d_0c_7x1", "branch1.2"),
    ("b1_3", "Branch_1/Conv2d_1a_3x3", "branch1.3"),
)
V4_INCEPTION_C = (  # Figure 6; the forks are b1_1a/b and b2_3a/b
    ("b0_0", "Branch_0/Conv2d_0a_1x1", "branch0"),
    ("b1_0", "Branch_1/Conv2d_0a_1x1", "branch1_0"),
    ("b1_1a", "Branch_1/Conv2d_0b_1x3", "branch1_1a"),
    ("b1_1b", "Branch_1/Conv2d_0c_3x1", "branch1_1b"),
    ("b2_0", "Branch_2/Conv2d_0a_1x1", "branch2_0"),
    ("b2_1", "Branch_2/Conv2d_0b_3x1", "branch2_1"),
    ("b2_2", "Branch_2/Conv2d_0c_1x3", "branch2_2"),
    ("b2_3a", "Branch_2/Conv2d_0d_1x3", "branch2_3a"),
    ("b2_3b", "Branch_2/Conv2d_0e_3x1", "branch2_3b"),
    ("b3_1", "Branch_3/Conv2d_0b_1x1", "branch3.1"),
)

# ---------------------------------------------------------------------------------------------
# Inception-ResNet-v2, released variant (slim scope "InceptionResnetV2", timm "inception_resnet_v2")

IRV2_STEM = (  # the released stem: slim Conv2d_1a..Conv2d_4a + Mixed_5b
    ("s0_b0_0", "Conv2d_1a_3x3", "conv2d_1a"),
    ("s0_b0_1", "Conv2d_2a_3x3", "conv2d_2a"),
    ("s0_b0_2", "Conv2d_2b_3x3", "conv2d_2b"),
    ("s0_b0_4", "Conv2d_3b_1x1", "conv2d_3b"),  # s0_b0_3 and s0_b0_6 are max pools
    ("s0_b0_5", "Conv2d_4a_3x3", "conv2d_4a"),
    ("s1_b0_0", "Mixed_5b/Branch_0/Conv2d_1x1", "mixed_5b.branch0"),
    ("s1_b1_0", "Mixed_5b/Branch_1/Conv2d_0a_1x1", "mixed_5b.branch1.0"),
    ("s1_b1_1", "Mixed_5b/Branch_1/Conv2d_0b_5x5", "mixed_5b.branch1.1"),
    ("s1_b2_0", "Mixed_5b/Branch_2/Conv2d_0a_1x1", "mixed_5b.branch2.0"),
    ("s1_b2_1", "Mixed_5b/Branch_2/Conv2d_0b_3x3", "mixed_5b.branch2.1"),
    ("s1_b2_2", "Mixed_5b/Branch_2/Conv2d_0c_3x3", "mixed_5b.branch2.2"),
    ("s1_b3_1", "Mixed_5b/Branch_3/Conv2d_0b_1x1", "mixed_5b.branch3.1"),
)
IRV2_BLOCK35 = (  # Figure 16, Inception-ResNet-A
    ("b0_0", "Branch_0/Conv2d_1x1", "branch0"),
    ("b1_0", "Branch_1/Conv2d_0a_1x1", "branch1.0"),
    ("b1_1", "Branch_1/Conv2d_0b_3x3", "branch1.1"),
    ("b2_0", "Branch_2/Conv2d_0a_1x1", "branch2.0"),
    ("b2_1", "Branch_2/Conv2d_0b_3x3", "branch2.1"),
    ("b2_2", "Branch_2/Conv2d_0c_3x3", "branch2.2"),
)
IRV2_BLOCK17 = (  # Figure 17, Inception-ResNet-B
    ("b0_0", "Branch_0/Conv2d_1x1", "branch0"),
    ("b1_0", "Branch_1/Conv2d_0a_1x1", "branch1.0"),
    ("b1_1", "Branch_1/Conv2d_0b_1x7", "branch1.1"),
    ("b1_2", "Branch_1/Conv2d_0c_7x1", "branch1.2"),
)
IRV2_BLOCK8 = (  # Figure 19, Inception-ResNet-C
    ("b0_0", "Branch_0/Conv2d_1x1", "branch0"),
    ("b1_0", "Branch_1/Conv2d_0a_1x1", "branch1.0"),
    ("b1_1", "Branch_1/Conv2d_0b_1x3", "branch1.1"),
    ("b1_2", "Branch_1/Conv2d_0c_3x1", "branch1.2"),
)
IRV2_REDUCTION_B = (  # Figure 18
    ("b0_0", "Branch_0/Conv2d_0a_1x1", "branch0.0"),
    ("b0_1", "Branch_0/Conv2d_1a_3x3", "branch0.1"),
    ("b1_0", "Branch_1/Conv2d_0a_1x1", "branch1.0"),
    ("b1_1", "Branch_1/Conv2d_1a_3x3", "branch1.1"),
    ("b2_0", "Branch_2/Conv2d_0a_1x1", "branch2.0"),
    ("b2_1", "Branch_2/Conv2d_0b_3x3", "branch2.1"),
    ("b2_2", "Branch_2/Conv2d_1a_3x3", "branch2.2"),
)
# The residual up-projection of every Inception-ResNet block: our "expand", slim "Conv2d_1x1"
# (weights + biases, no BatchNorm), timm "conv2d".
RESIDUAL_EXPAND = ("expand", "Conv2d_1x1", "conv2d")


@dataclasses.dataclass(frozen=True)
class Network:
    spec: networks.NetworkSpec  # our network and variant
    slim_scope: str    # top-level slim scope
    timm_name: str     # timm model name
    blocks: tuple      # (our block, table, slim scope, timm module, residual)
    classifier: tuple  # (slim scope, timm module)
    aux: tuple         # (slim proj scope, slim conv scope, slim fc scope)

    name = property(lambda self: self.spec.name, doc="our builder name")
    variant = property(lambda self: self.spec.variant, doc="our variant")
    title = property(lambda self: self.spec.title, doc="for messages")
    model_name = property(lambda self: self.spec.model_name, doc="the name of models.build's keras.Model")


def _v4_blocks(spec):
    """slim names the blocks of a grid Mixed_5b, Mixed_5c ... (its reduction is Mixed_6a); timm
    numbers every module after the six of the stem: features.6, features.7 ..."""
    timm = {name: f"features.{5 + i}" for i, name in enumerate(spec.block_names)}

    def stage(letter, table, grid):
        names = spec.stage_names(letter)
        return [(n, table, f"Mixed_{grid}{chr(ord('b') + i)}", timm[n], False) for i, n in enumerate(names)]

    return tuple(
        [("stem", V4_STEM, "", "", False)] + stage("a", V4_INCEPTION_A, 5)
        + [("reduction_a", REDUCTION_A, "Mixed_6a", timm["reduction_a"], False)] + stage("b", V4_INCEPTION_B, 6)
        + [("reduction_b", V4_REDUCTION_B, "Mixed_7a", timm["reduction_b"], False)] + stage("c", V4_INCEPTION_C, 7)
    )


def _irv2_blocks(spec):
    a, b, c = (spec.stage_names(stage) for stage in "abc")
    *c, last_c = c  # the released network's last C block (scale 1, no ReLU)
    blocks = [("stem", IRV2_STEM, "", "", False)]
    blocks += [(n, IRV2_BLOCK35, f"Repeat/block35_{i + 1}", f"repeat.{i}", True) for i, n in enumerate(a)]
    blocks += [("reduction_a", REDUCTION_A, "Mixed_6a", "mixed_6a", False)]
    blocks += [(n, IRV2_BLOCK17, f"Repeat_1/block17_{i + 1}", f"repeat_1.{i}", True) for i, n in enumerate(b)]
    blocks += [("reduction_b", IRV2_REDUCTION_B, "Mixed_7a", "mixed_7a", False)]
    blocks += [(n, IRV2_BLOCK8, f"Repeat_2/block8_{i + 1}", f"repeat_2.{i}", True) for i, n in enumerate(c)]
    # The last C block is slim's lone "Block8", timm's "block8".
    blocks += [(last_c, IRV2_BLOCK8, "Block8", "block8", True)]
    # The final 1x1 1536 convolution is a ConvBN layer of its own.
    blocks += [("conv_7b", (("", "Conv2d_7b_1x1", "conv2d_7b"),), "", "", False)]
    return tuple(blocks)


_V4, _IRV2 = networks.spec("inception_v4"), networks.spec("inception_resnet_v2", "release")
NETWORKS = {
    "inception_v4": Network(
        _V4, "InceptionV4", "inception_v4", _v4_blocks(_V4), ("Logits/Logits", "last_linear"),
        ("AuxLogits/Conv2d_1b_1x1", "AuxLogits/Conv2d_2a", "AuxLogits/Aux_logits"),
    ),
    "inception_resnet_v2": Network(
        _IRV2, "InceptionResnetV2", "inception_resnet_v2", _irv2_blocks(_IRV2), ("Logits/Logits", "classif"),
        ("AuxLogits/Conv2d_1b_1x1", "AuxLogits/Conv2d_2a_5x5", "AuxLogits/Logits"),
    ),
}
SLIM_SCOPES = {n.slim_scope: n.name for n in NETWORKS.values()}

# Which part of the model a slot belongs to: importing into a model without the top or without
# the auxiliary head uses only some parts.
BODY, CLASSIFIER, AUX, AUX_CLASSIFIER = "body", "classifier", "aux", "aux_classifier"


@dataclasses.dataclass(frozen=True)
class Slot:
    """One variable of our model and its names in the published files."""

    path: str        # our Keras variable path, e.g. "inception_a_1/b1_1/conv/kernel"
    slim: str        # slim variable, e.g. "InceptionV4/Mixed_5c/Branch_1/Conv2d_0b_3x3/weights"
    timm: str        # timm state_dict key, or None (timm has no auxiliary head)
    role: str        # kernel, bias, beta, moving_mean, moving_variance (as in the slim names)
    part: str        # BODY, CLASSIFIER, AUX or AUX_CLASSIFIER


@dataclasses.dataclass(frozen=True)
class ConvBNNames:
    """The names of one convolution + BatchNorm, for readers that also meet gamma and counters."""

    path: str        # our ConvBN layer path, e.g. "stem/s0_b0_0"
    slim: str        # slim scope of the conv, e.g. "InceptionV4/Conv2d_1a_3x3"
    timm: str        # timm module of the conv+bn pair, or None
    part: str


def _join(*parts, sep="/"):
    return sep.join(p for p in parts if p)


def conv_bns(network):
    """Every ConvBN of the full network (with top and aux head), in slim's creation order."""
    net = NETWORKS[network]
    out = []
    for block, table, slim_scope, timm_module, _ in net.blocks:
        for op, slim_sub, timm_sub in table:
            out.append(ConvBNNames(_join(block, op), _join(net.slim_scope, slim_scope, slim_sub),
                                   _join(timm_module, timm_sub, sep="."), BODY))
    proj, conv, _ = net.aux
    out.append(ConvBNNames("aux_logits/proj", _join(net.slim_scope, proj), None, AUX))
    out.append(ConvBNNames("aux_logits/conv", _join(net.slim_scope, conv), None, AUX))
    return out


def slots(network):
    """One Slot per variable of the full network (classifier and aux head included)."""
    net = NETWORKS[network]
    out = []
    for cb in conv_bns(network):
        if cb.path.startswith("aux_logits/"):
            continue
        out.extend(_conv_bn_slots(cb))
    for block, _, slim_scope, timm_module, residual in net.blocks:
        if residual:
            ours, slim_sub, timm_sub = RESIDUAL_EXPAND
            out.extend(_dense_like_slots(_join(block, ours), _join(net.slim_scope, slim_scope, slim_sub),
                                         _join(timm_module, timm_sub, sep="."), BODY))
    slim_cls, timm_cls = net.classifier
    out.extend(_dense_like_slots("predictions", _join(net.slim_scope, slim_cls), timm_cls, CLASSIFIER))
    for cb in conv_bns(network):
        if cb.path.startswith("aux_logits/"):
            out.extend(_conv_bn_slots(cb))
    out.extend(_dense_like_slots("aux_logits/fc", _join(net.slim_scope, net.aux[2]), None, AUX_CLASSIFIER))
    return out


def _conv_bn_slots(cb):
    t = (lambda s: f"{cb.timm}.{s}") if cb.timm else (lambda s: None)
    return [
        Slot(f"{cb.path}/conv/kernel", f"{cb.slim}/weights", t("conv.weight"), "kernel", cb.part),
        Slot(f"{cb.path}/bn/beta", f"{cb.slim}/BatchNorm/beta", t("bn.bias"), "beta", cb.part),
        Slot(f"{cb.path}/bn/moving_mean", f"{cb.slim}/BatchNorm/moving_mean", t("bn.running_mean"),
             "moving_mean", cb.part),
        Slot(f"{cb.path}/bn/moving_variance", f"{cb.slim}/BatchNorm/moving_variance", t("bn.running_var"),
             "moving_variance", cb.part),
    ]


def _dense_like_slots(path, slim, timm, part):
    return [
        Slot(f"{path}/kernel", f"{slim}/weights", f"{timm}.weight" if timm else None, "kernel", part),
        Slot(f"{path}/bias", f"{slim}/biases", f"{timm}.bias" if timm else None, "bias", part),
    ]


def network_of_model(model):
    """(our network name, Network) of a model built by inception.models, from its name."""
    for net in NETWORKS.values():
        if model.name == net.model_name:
            return net
    from inception.weights.source import WeightsError

    raise WeightsError(
        f"published weights exist for Inception-v4 and the released Inception-ResNet-v2 only; this "
        f"model is {model.name!r} (build 'inception_v4', or 'inception_resnet_v2' with variant='release')")


def network_of_name(model_name):
    """The Network whose models.build model is called ``model_name``, or None."""
    for net in NETWORKS.values():
        if net.model_name == model_name:
            return net
    return None
