"""Reader for keras-applications' Inception-ResNet-v2 weights (the legacy Keras 2 HDF5 file).

``inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5`` stores one HDF5 group per layer,
listed in the ``layer_names`` attribute. keras.applications names only some layers
(``block35_1_conv`` ... ``conv_7b``, ``conv_7b_bn``, ``predictions``); the others are Keras'
automatic ``conv2d_N`` / ``batch_normalization_N``, numbered in creation order, which is the
order of the TF-slim definition (and of names.conv_bns). Its ``conv2d_bn`` is conv (no bias) ->
BatchNorm(scale=False) -> ReLU, as ours. Layouts are Keras': conv HWIO, dense [in, out].
"""

import re

import numpy as np

from inception.weights import names
from inception.weights.file import (
    FORMAT_KERAS_H5,
    Entry,
    WeightsError,
    WeightsFile,
    check_unit_gamma,
)

_AUTO = re.compile(r"^(conv2d|batch_normalization)(?:_(\d+))?$")
_NAMED_EXPAND = re.compile(r"^block(35|17|8)_(\d+)_conv$")
_OUR_BLOCK = {"35": "inception_resnet_a", "17": "inception_resnet_b", "8": "inception_resnet_c"}
_KERNEL = [("kernel", "kernel")]
_KERNEL_AND_BIAS = [("kernel", "kernel"), ("bias", "bias")]
_BATCH_NORM = [(x, x) for x in ("beta", "moving_mean", "moving_variance")]


def _text(value):
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _weights_of(group):
    """{leaf name: dataset} of one layer group ('conv2d_1/kernel:0' -> 'kernel')."""
    out = {}
    for name in group.attrs.get("weight_names", []):
        name = _text(name)
        leaf = name.split("/")[-1].split(":")[0]
        out[leaf] = (name, group[name])
    return out


def from_h5(path):
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise WeightsError(f"{path}: not a readable HDF5 file ({err})") from None
    try:
        return _source(f, path)
    except BaseException:
        f.close()
        raise


def _source(f, path):
    """The WeightsFile of an open file; the file stays open while the source is used
    (``open_file``)."""
    root, layer_names = _layers_of_inception_resnet_v2(f, path)
    net = names.NETWORKS["inception_resnet_v2"]
    source = WeightsFile(
        FORMAT_KERAS_H5,
        path,
        net.model_name,
        net.title,
        "keras.applications InceptionResNetV2",
        {},
        files=[path],
        expected_key=lambda p: f"(the keras-applications layer for our {p})",
    )
    source.open_file = f
    convs, bns, named = _sort_layers(root, layer_names)
    body = [cb for cb in names.conv_bns(net.name) if cb.part == names.BODY and cb.path != "conv_7b"]
    if len(convs) != len(body) or len(bns) != len(body):
        raise WeightsError(
            f"{path}: expected {len(body)} unnamed conv2d and batch_normalization layers (the "
            f"convolutions of Inception-ResNet-v2 in creation order); found {len(convs)} and {len(bns)}"
        )
    for cb, (_, conv_layer, conv_w), (_, bn_layer, bn_w) in zip(body, convs, bns):
        _add(source, f"{cb.path}/conv", conv_layer, conv_w, _KERNEL)
        _add(source, f"{cb.path}/bn", bn_layer, bn_w, _BATCH_NORM)
    for layer, weights in named.items():
        ours, leaves = _named_layer(layer)
        if ours is None:
            source.unknown.extend(f"{layer}/{leaf}" for leaf in weights)
        else:
            _add(source, ours, layer, weights, leaves)
    return source


def _layers_of_inception_resnet_v2(f, path):
    """(the group holding the layers, their names); WeightsError unless it is keras-applications'
    Inception-ResNet-v2."""
    root = f.get("model_weights", f)
    if "layer_names" not in root.attrs:
        raise WeightsError(
            f"{path}: an HDF5 file without Keras' 'layer_names' attribute; the supported HDF5 file is "
            "keras-applications' legacy Inception-ResNet-v2 weights (a Keras 3 .weights.h5 is not)"
        )
    layer_names = [_text(n) for n in root.attrs["layer_names"]]
    if "block35_1_conv" not in layer_names or "conv_7b" not in layer_names:
        raise WeightsError(
            f"{path}: a Keras weights file that is not keras-applications' Inception-ResNet-v2 (it has "
            f"no 'block35_1_conv' / 'conv_7b' layers; first layers: {', '.join(layer_names[:5])})"
        )
    return root, layer_names


def _sort_layers(root, layer_names):
    """(automatic conv2d layers in creation order, automatic batch_normalization layers in
    creation order, {named layer: weights}); layers without weights are left out."""
    convs, bns, named = [], [], {}
    for layer in layer_names:
        weights = _weights_of(root[layer])
        if not weights:
            continue
        auto = _AUTO.match(layer)
        if auto:
            (convs if auto.group(1) == "conv2d" else bns).append(
                (int(auto.group(2) or -1), layer, weights)
            )
        else:
            named[layer] = weights
    return sorted(convs), sorted(bns), named


def _named_layer(layer):
    """(our layer path, leaves) of a layer keras.applications names, or (None, None)."""
    expand = _NAMED_EXPAND.match(layer)
    if expand:
        return f"{_OUR_BLOCK[expand.group(1)]}_{expand.group(2)}/expand", _KERNEL_AND_BIAS
    return {
        "conv_7b": ("conv_7b/conv", _KERNEL),
        "conv_7b_bn": ("conv_7b/bn", _BATCH_NORM),
        "predictions": ("predictions", _KERNEL_AND_BIAS),
    }.get(layer, (None, None))


def _add(source, our_prefix, layer, weights, leaves):
    """The layer's ``leaves`` ((our name, its name)) as entries of ``source``; a unit gamma is
    checked, any other weight is unknown."""
    for ours, theirs in leaves:
        if theirs not in weights:
            raise WeightsError(
                f"{source.path}: layer {layer} has no '{theirs}' weight "
                f"(it has {', '.join(sorted(weights))})"
            )
        dataset = weights[theirs][1]
        source.entries[f"{our_prefix}/{ours}"] = Entry(
            f"{layer}/{theirs}",
            tuple(dataset.shape),
            (lambda d=dataset: np.asarray(d[()], dtype=np.float32)),
        )
    used = {theirs for _, theirs in leaves}
    for leaf, (_, dataset) in weights.items():
        if leaf == "gamma" and leaf not in used:
            source.checked.append(
                (f"{layer}/gamma", check_unit_gamma(f"{layer}/gamma", dataset[()]))
            )
        elif leaf not in used:
            source.unknown.append(f"{layer}/{leaf}")
