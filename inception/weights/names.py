"""The name map: each variable of our Inception-v4 / Inception-ResNet-v2 <-> the published files.

Inside a block our layers are named by place (blocks.op_name: ``b{branch}_{position}``, forks
``...a``/``...b``), and the block's table (blocks.py) says what each one is. TF-slim names a
block's convolution by its branch, its place and its kernel (``Branch_1/Conv2d_0b_1x7``), timm by
its branch and position (``branch1.1``), so both names follow from the table by a rule
(``block_rows``); the released code's two exceptions are stated there. Only the stems are listed
row by row: slim numbers their layers by grid stage (``Conv2d_2b_3x3``, ``Mixed_4a``), not by
place. Each row is ``(our op, slim scope inside the block, timm module inside the block)``.

``slots(network)`` expands the rows into one ``Slot`` per variable of our model; the blocks, their
tables and counts are read from ``models.layout`` and the network's NetworkSpec. The tests check
the expansion against the variable lists of the released networks (every slim checkpoint key and
every timm state_dict key used exactly once, shapes equal), so the rule cannot silently drift.
No TensorFlow; Keras only through the block classes, whose tables are read without making a layer.
"""

import dataclasses

from inception import blocks, models, networks

# ---------------------------------------------------------------------------------------------
# The stems (slim names them by grid stage)

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
# The residual up-projection of every Inception-ResNet block: our "expand", slim "Conv2d_1x1"
# (weights + biases, no BatchNorm), timm "conv2d".
RESIDUAL_EXPAND = ("expand", "Conv2d_1x1", "conv2d")


# ---------------------------------------------------------------------------------------------
# Every other block, by rule


def block_rows(table, lone_conv_index):
    """The rows of a one-stage block from its table.

    slim: ``Branch_{b}/Conv2d_{index}_{rows}x{cols}``; the index is ``0a``, ``0b`` ... by place in
    the branch (pools and a fork's convolutions take their letters too), except the valid-padded
    convolution that reduces the grid, ``1a``, and a branch's lone same-padded convolution, which
    the released Inception-ResNet-v2 leaves unindexed (``Conv2d_1x1``; ``lone_conv_index`` False)
    and Inception-v4 calls ``0a``. timm: ``branch{b}`` for a one-op branch, ``branch{b}.{place}``
    otherwise, and ``branch{b}_{place}`` with the fork's ``a``/``b`` in a branch that forks (its
    Inception-C is written out rather than a Sequential).
    """
    if len(table) != 1:
        raise ValueError("the rule names one-stage blocks; list a stem's rows")
    rows = []
    for name, _, b, place, fork, op in blocks.ops_of(table):
        if op[0] != "conv":
            continue  # pools hold no variables
        branch = table[0][b]
        lone = len(branch) == 1
        _, _, kernel, _, padding = op
        rows_cols = "x".join(
            str(k) for k in (kernel if isinstance(kernel, tuple) else (kernel, kernel))
        )
        if padding == "V":
            index = "1a_"
        elif lone and not lone_conv_index:
            index = ""
        else:
            index = f"0{chr(ord('a') + place + (fork or 0))}_"
        if any(o[0] == "fork" for o in branch):
            timm = f"branch{b}_{place}" + ("" if fork is None else chr(ord("a") + fork))
        else:
            timm = f"branch{b}" if lone else f"branch{b}.{place}"
        rows.append((name, f"Branch_{b}/Conv2d_{index}{rows_cols}", timm))
    return tuple(rows)


@dataclasses.dataclass(frozen=True)
class Network:
    spec: networks.NetworkSpec  # our network and variant
    slim_scope: str  # top-level slim scope
    timm_name: str  # timm model name
    blocks: tuple  # (our block, its rows, slim scope, timm module, residual)
    classifier: tuple  # (slim scope, timm module)
    aux: tuple  # (slim proj scope, slim conv scope, slim fc scope)

    name = property(lambda self: self.spec.name, doc="our builder name")
    variant = property(lambda self: self.spec.variant, doc="our variant")
    title = property(lambda self: self.spec.title, doc="for messages")
    model_name = property(
        lambda self: self.spec.model_name, doc="the name of models.build's keras.Model"
    )


def _tables(spec):
    """{block name: its table} of every block of ``spec`` (None for the lone ``conv_7b``)."""
    return {
        name: block.table(*widths) if block else None
        for name, block, widths, _ in models.layout(spec)
    }


def _v4_blocks(spec):
    """slim names the blocks of a grid Mixed_5b, Mixed_5c ... (its reduction is Mixed_6a); timm
    numbers every module after the six of the stem: features.6, features.7 ..."""
    tables = _tables(spec)
    timm = {name: f"features.{5 + i}" for i, name in enumerate(spec.block_names)}

    def block(name, slim_scope):
        return (name, block_rows(tables[name], lone_conv_index=True), slim_scope, timm[name], False)

    def stage(letter, grid):
        return [
            block(n, f"Mixed_{grid}{chr(ord('b') + i)}")
            for i, n in enumerate(spec.stage_names(letter))
        ]

    return tuple(
        [("stem", V4_STEM, "", "", False)]
        + stage("a", 5)
        + [block("reduction_a", "Mixed_6a")]
        + stage("b", 6)
        + [block("reduction_b", "Mixed_7a")]
        + stage("c", 7)
    )


def _irv2_blocks(spec):
    tables = _tables(spec)

    def block(name, slim_scope, timm_module, residual=False):
        return (
            name,
            block_rows(tables[name], lone_conv_index=False),
            slim_scope,
            timm_module,
            residual,
        )

    a, b, c = (spec.stage_names(stage) for stage in "abc")
    *c, last_c = c  # the released network's last C block (scale 1, no ReLU)
    out = [("stem", IRV2_STEM, "", "", False)]
    out += [block(n, f"Repeat/block35_{i + 1}", f"repeat.{i}", True) for i, n in enumerate(a)]
    out += [block("reduction_a", "Mixed_6a", "mixed_6a")]
    out += [block(n, f"Repeat_1/block17_{i + 1}", f"repeat_1.{i}", True) for i, n in enumerate(b)]
    out += [block("reduction_b", "Mixed_7a", "mixed_7a")]
    out += [block(n, f"Repeat_2/block8_{i + 1}", f"repeat_2.{i}", True) for i, n in enumerate(c)]
    # The last C block is slim's lone "Block8", timm's "block8".
    out += [block(last_c, "Block8", "block8", True)]
    # The final 1x1 1536 convolution is a ConvBN layer of its own.
    out += [("conv_7b", (("", "Conv2d_7b_1x1", "conv2d_7b"),), "", "", False)]
    return tuple(out)


_V4, _IRV2 = networks.spec("inception_v4"), networks.spec("inception_resnet_v2", "release")
NETWORKS = {
    "inception_v4": Network(
        _V4,
        "InceptionV4",
        "inception_v4",
        _v4_blocks(_V4),
        ("Logits/Logits", "last_linear"),
        ("AuxLogits/Conv2d_1b_1x1", "AuxLogits/Conv2d_2a", "AuxLogits/Aux_logits"),
    ),
    "inception_resnet_v2": Network(
        _IRV2,
        "InceptionResnetV2",
        "inception_resnet_v2",
        _irv2_blocks(_IRV2),
        ("Logits/Logits", "classif"),
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

    path: str  # our Keras variable path, e.g. "inception_a_1/b1_1/conv/kernel"
    slim: str  # slim variable, e.g. "InceptionV4/Mixed_5c/Branch_1/Conv2d_0b_3x3/weights"
    timm: str  # timm state_dict key, or None (timm has no auxiliary head)
    role: str  # kernel, bias, beta, moving_mean, moving_variance (as in the slim names)
    part: str  # BODY, CLASSIFIER, AUX or AUX_CLASSIFIER


@dataclasses.dataclass(frozen=True)
class ConvBNNames:
    """The names of one convolution + BatchNorm, for readers that also meet gamma and counters."""

    path: str  # our ConvBN layer path, e.g. "stem/s0_b0_0"
    slim: str  # slim scope of the conv, e.g. "InceptionV4/Conv2d_1a_3x3"
    timm: str  # timm module of the conv+bn pair, or None
    part: str


def _join(*parts, sep="/"):
    return sep.join(p for p in parts if p)


def conv_bns(network):
    """Every ConvBN of the full network (with top and aux head), in slim's creation order."""
    net = NETWORKS[network]
    out = []
    for block, table, slim_scope, timm_module, _ in net.blocks:
        for op, slim_sub, timm_sub in table:
            out.append(
                ConvBNNames(
                    _join(block, op),
                    _join(net.slim_scope, slim_scope, slim_sub),
                    _join(timm_module, timm_sub, sep="."),
                    BODY,
                )
            )
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
            out.extend(
                _dense_like_slots(
                    _join(block, ours),
                    _join(net.slim_scope, slim_scope, slim_sub),
                    _join(timm_module, timm_sub, sep="."),
                    BODY,
                )
            )
    slim_cls, timm_cls = net.classifier
    out.extend(
        _dense_like_slots("predictions", _join(net.slim_scope, slim_cls), timm_cls, CLASSIFIER)
    )
    for cb in conv_bns(network):
        if cb.path.startswith("aux_logits/"):
            out.extend(_conv_bn_slots(cb))
    out.extend(
        _dense_like_slots("aux_logits/fc", _join(net.slim_scope, net.aux[2]), None, AUX_CLASSIFIER)
    )
    return out


def _conv_bn_slots(cb):
    t = (lambda s: f"{cb.timm}.{s}") if cb.timm else (lambda s: None)
    return [
        Slot(f"{cb.path}/conv/kernel", f"{cb.slim}/weights", t("conv.weight"), "kernel", cb.part),
        Slot(f"{cb.path}/bn/beta", f"{cb.slim}/BatchNorm/beta", t("bn.bias"), "beta", cb.part),
        Slot(
            f"{cb.path}/bn/moving_mean",
            f"{cb.slim}/BatchNorm/moving_mean",
            t("bn.running_mean"),
            "moving_mean",
            cb.part,
        ),
        Slot(
            f"{cb.path}/bn/moving_variance",
            f"{cb.slim}/BatchNorm/moving_variance",
            t("bn.running_var"),
            "moving_variance",
            cb.part,
        ),
    ]


def _dense_like_slots(path, slim, timm, part):
    return [
        Slot(
            f"{path}/kernel", f"{slim}/weights", f"{timm}.weight" if timm else None, "kernel", part
        ),
        Slot(f"{path}/bias", f"{slim}/biases", f"{timm}.bias" if timm else None, "bias", part),
    ]


def network_of_model(model):
    """(our network name, Network) of a model built by inception.models, from its name."""
    for net in NETWORKS.values():
        if model.name == net.model_name:
            return net
    from inception.weights.file import WeightsError

    raise WeightsError(
        f"published weights exist for Inception-v4 and the released Inception-ResNet-v2 only; this "
        f"model is {model.name!r} (build 'inception_v4', or 'inception_resnet_v2' with variant='release')"
    )


def network_of_name(model_name):
    """The Network whose models.build model is called ``model_name``, or None."""
    for net in NETWORKS.values():
        if net.model_name == model_name:
            return net
    return None
