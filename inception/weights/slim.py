"""Reader for the authors' TF-slim checkpoints (inception_v4_2016_09_09, inception_resnet_v2_2016_08_30).

The released archives hold one old single-file (V1) checkpoint; newer slim training writes V2
checkpoints (``.index`` + ``.data-*``). TensorFlow's checkpoint reader opens both. Variables are
named by slim scopes (``InceptionV4/Mixed_5b/Branch_1/Conv2d_0b_3x3/weights``); names.py maps them
to ours. Slim's layouts (conv HWIO, dense [in, out]) are ours, so values are copied as they are.
"""

import contextlib
import os
import shutil
import tarfile

import numpy as np

from inception import fileio
from inception.weights import names
from inception.weights.file import FORMAT_SLIM, Entry, WeightsError, WeightsFile, check_unit_gamma

# Variables a slim training run leaves next to the model's that hold nothing to import.
_IGNORED = {"global_step": "training step counter"}


def from_checkpoint(prefix, display_path=None, detail="", files=()):
    """WeightsFile for a checkpoint prefix (V2) or file (V1)."""
    import tensorflow as tf  # only slim checkpoints need TensorFlow

    display_path = display_path or prefix
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as err:
        raise WeightsError(
            f"{display_path}: TensorFlow cannot read it as a checkpoint ({err})"
        ) from None
    shapes = reader.get_variable_to_shape_map()
    scopes = sorted({k.split("/")[0] for k in shapes if "/" in k})
    known = [s for s in scopes if s in names.SLIM_SCOPES]
    if len(known) != 1:
        raise WeightsError(
            f"{display_path}: a checkpoint whose variables are under {', '.join(map(repr, scopes[:6])) or 'no scope'}; "
            f"published weights are supported for {', '.join(names.SLIM_SCOPES)} only"
        )
    net = names.NETWORKS[names.SLIM_SCOPES[known[0]]]
    by_slim = {slot.slim: slot for slot in names.slots(net.name)}
    slim_of = {slot.path: slot.slim for slot in by_slim.values()}
    gammas = {f"{cb.slim}/BatchNorm/gamma" for cb in names.conv_bns(net.name)}

    def loader(key):
        return lambda: np.asarray(reader.get_tensor(key), dtype=np.float32)

    source = WeightsFile(
        FORMAT_SLIM,
        display_path,
        net.model_name,
        net.title,
        detail or "checkpoint",
        {},
        files=list(files),
        expected_key=lambda path: slim_of.get(path, path),
    )
    for key in sorted(shapes):
        slot = by_slim.get(key)
        if slot is not None:
            source.entries[slot.path] = Entry(key, tuple(shapes[key]), loader(key))
        elif key in gammas:
            source.checked.append((key, check_unit_gamma(key, reader.get_tensor(key))))
        elif key in _IGNORED:
            source.ignored.append((key, _IGNORED[key]))
        else:
            source.unknown.append(key)
    classes = source.classes()
    source.background = classes == 1001
    return source


def checkpoint_files(prefix):
    """The files of a checkpoint: the V1 file, or the V2 .index and .data-* files."""
    if os.path.isfile(prefix) and not os.path.isfile(prefix + ".index"):
        return [prefix]
    directory, base = os.path.split(prefix)
    data = sorted(f for f in os.listdir(directory or ".") if f.startswith(base + ".data-"))
    return [prefix + ".index"] + [os.path.join(directory, f) for f in data]


@contextlib.contextmanager
def open_archive(path):
    """Extracts the checkpoint of a slim release archive (.tar.gz) to a temporary directory.

    Only regular files are extracted, under their base names (no path from the archive is used).
    """
    try:
        archive = tarfile.open(path, "r:*")  # noqa: SIM115 (closed by `with archive` below)
    except tarfile.TarError as err:
        raise WeightsError(f"{path}: not a readable tar archive ({err})") from None
    with fileio.local_scratch(suffix="-inception-weights") as scratch:
        with archive:
            members = [m for m in archive.getmembers() if m.isfile()]
            v2 = [m for m in members if m.name.endswith(".index")]
            v1 = [m for m in members if m.name.endswith(".ckpt")]
            if len(v2) + len(v1) != 1:
                listing = ", ".join(m.name for m in members[:8]) or "nothing"
                raise WeightsError(
                    f"{path}: expected one checkpoint (a .ckpt file, or a .index with its .data-* files) in "
                    f"the archive; it holds {listing}"
                )
            if v2:
                stem = v2[0].name[: -len(".index")]
                wanted = [
                    m for m in members if m.name == v2[0].name or m.name.startswith(stem + ".data-")
                ]
                prefix = os.path.join(scratch, os.path.basename(stem))
                kind = f"V2 checkpoint {os.path.basename(stem)} inside the archive"
            else:
                wanted = v1
                prefix = os.path.join(scratch, os.path.basename(v1[0].name))
                kind = f"V1 checkpoint {os.path.basename(v1[0].name)} inside the archive"
            for member in wanted:
                with (
                    archive.extractfile(member) as src,
                    open(os.path.join(scratch, os.path.basename(member.name)), "wb") as dst,
                ):
                    shutil.copyfileobj(src, dst, 1 << 22)
        yield from_checkpoint(prefix, display_path=path, detail=kind, files=[path])
