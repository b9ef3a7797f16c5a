"""Reader for timm's ports as the Hugging Face hub serves them (``model.safetensors``).

``inception_v4.tf_in1k``, ``inception_resnet_v2.tf_in1k`` and ``inception_resnet_v2.tf_ens_adv_in1k``
are the TF-slim releases converted to PyTorch: 1000 classes (slim's background row dropped),
conv weights OIHW, Linear weights [out, in], BatchNorm weight (gamma) fixed at 1. They are read
with the ``safetensors`` package's numpy API, so no PyTorch is needed.
"""

import numpy as np

from inception.weights import names
from inception.weights.file import FORMAT_TIMM, Entry, WeightsError, WeightsFile, check_unit_gamma

# A key that only one of the two timm networks has tells them apart.
_MARKERS = {
    "features.0.conv.weight": "inception_v4",
    "conv2d_1a.conv.weight": "inception_resnet_v2",
}


def to_ours(array):
    """PyTorch layout -> ours: conv OIHW -> HWIO, Linear [out, in] -> [in, out]."""
    if array.ndim == 4:
        return np.ascontiguousarray(array.transpose(2, 3, 1, 0))
    if array.ndim == 2:
        return np.ascontiguousarray(array.T)
    return array


def _our_shape(shape):
    shape = tuple(int(d) for d in shape)
    if len(shape) == 4:
        o, i, h, w = shape
        return (h, w, i, o)
    if len(shape) == 2:
        return shape[::-1]
    return shape


def _open(path):
    """(the file's handle, its keys, the network it holds); WeightsError for anything else."""
    try:
        from safetensors import SafetensorError, safe_open
    except ImportError:  # pragma: no cover - the [weights] extra, and requirements.txt
        raise WeightsError(
            "reading timm .safetensors files needs the 'safetensors' package: "
            "pip install 'inception[weights]'"
        ) from None
    try:
        handle = safe_open(path, framework="numpy")
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsError(f"{path}: not a readable safetensors file ({err})") from None
    keys = list(handle.keys())
    found = {net for key, net in _MARKERS.items() if key in keys}
    if len(found) != 1:
        raise WeightsError(
            f"{path}: a safetensors file that is not timm's inception_v4 or inception_resnet_v2 "
            f"(it has neither {' nor '.join(_MARKERS)}; first keys: {', '.join(keys[:5])})"
        )
    return handle, keys, names.NETWORKS[found.pop()]


def from_safetensors(path):
    """timm's model.safetensors -> a ``WeightsFile`` keyed by our variable paths (values read
    when assigned)."""
    handle, keys, net = _open(path)
    by_timm = {slot.timm: slot for slot in names.slots(net.name) if slot.timm}
    timm_of = {slot.path: slot.timm for slot in by_timm.values()}
    gammas, counters = set(), set()
    for cb in names.conv_bns(net.name):
        if cb.timm:
            gammas.add(f"{cb.timm}.bn.weight")
            counters.add(f"{cb.timm}.bn.num_batches_tracked")

    def loader(key):
        def load():
            array = handle.get_tensor(key)
            if not np.issubdtype(array.dtype, np.floating):
                raise WeightsError(
                    f"{path}: {key} has dtype {array.dtype}, expected floating point"
                )
            return to_ours(np.asarray(array, dtype=np.float32))

        return load

    source = WeightsFile(
        FORMAT_TIMM,
        path,
        net.model_name,
        net.title,
        f"timm {net.timm_name} state dict",
        {},
        files=[path],
        expected_key=lambda p: timm_of.get(p, p),
    )
    for key in sorted(keys):
        slot = by_timm.get(key)
        if slot is not None:
            source.entries[slot.path] = Entry(
                key, _our_shape(handle.get_slice(key).get_shape()), loader(key)
            )
        elif key in gammas:
            source.checked.append((key, check_unit_gamma(key, handle.get_tensor(key))))
        elif key in counters:
            source.ignored.append((key, "BatchNorm update counter (num_batches_tracked)"))
        else:
            source.unknown.append(key)
    return source
