"""Which reader a weights path needs, decided from the file's content (not only its name)."""

import contextlib
import os
import tarfile
import zipfile

from inception.weights.file import FORMATS_HELP, WeightsError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# TensorFlow's table format (V1 checkpoints and V2 .index files) ends with this magic number.
TF_TABLE_MAGIC = bytes.fromhex("57fb808b247547db")


def _is_safetensors(path):
    """8-byte little-endian header length, then a JSON object."""
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    return 2 <= int.from_bytes(head[:8], "little") <= os.path.getsize(path) - 8


def _is_tf_table(path):
    if os.path.getsize(path) < 48:
        return False
    with open(path, "rb") as f:
        f.seek(-8, os.SEEK_END)
        return f.read(8) == TF_TABLE_MAGIC


def kind(path):
    """'slim-archive', 'slim-checkpoint', 'timm', 'keras-h5' or 'keras-model', plus the path to read."""
    path = os.fspath(path)
    if os.path.isdir(path):
        index = sorted(f for f in os.listdir(path) if f.endswith(".index"))
        if len(index) == 1:
            return "slim-checkpoint", os.path.join(path, index[0][: -len(".index")])
        raise WeightsError(f"{path} is a directory; give the weights file itself ({FORMATS_HELP})")
    if not os.path.exists(path):
        if os.path.isfile(path + ".index"):
            return "slim-checkpoint", path
        raise FileNotFoundError(f"no weights file at {path}")
    with open(path, "rb") as f:
        head = f.read(8)
    if head == HDF5_MAGIC:
        return "keras-h5", path
    if _is_safetensors(path):
        return "timm", path
    if zipfile.is_zipfile(path):
        return "keras-model", path
    if tarfile.is_tarfile(path):
        return "slim-archive", path
    if path.endswith(".index") and _is_tf_table(path):
        return "slim-checkpoint", path[: -len(".index")]
    if ".data-" in os.path.basename(path):
        prefix = path[: path.rindex(".data-")]
        if os.path.isfile(prefix + ".index"):
            return "slim-checkpoint", prefix
    if _is_tf_table(path):
        return "slim-checkpoint", path  # a V1 checkpoint (one file)
    raise WeightsError(f"{path}: unrecognized weights file; expected {FORMATS_HELP}")


@contextlib.contextmanager
def open_source(path):
    """Yields the WeightsFile of any supported file; temporary files are removed afterwards. A file
    its reader cannot parse (truncated, corrupt) is a WeightsError naming it."""
    what, target = kind(path)
    with contextlib.ExitStack() as stack:
        with _named(path, what):
            if what == "slim-archive":
                from inception.weights import slim

                source = stack.enter_context(slim.open_archive(target))
            else:
                source = _open(what, target, path)
            stack.callback(source.close)
        yield source


@contextlib.contextmanager
def _named(path, what):
    """Errors of a reader's library while it parses the file -> WeightsError naming the file."""
    try:
        yield
    except WeightsError as err:
        if os.fspath(path) in str(err):
            raise
        # e.g. check_unit_gamma's message names the tensor only (found by the fuzz)
        raise WeightsError(f"{os.fspath(path)}: {err}") from None
    except FileNotFoundError:
        raise
    except Exception as err:  # h5py, safetensors, TensorFlow and zipfile each raise their own
        raise WeightsError(
            f"{os.fspath(path)}: cannot read this {what} file "
            f"({type(err).__name__}: {str(err)[:300]}); is it truncated or "
            "damaged?"
        ) from err


def _open(what, target, path):
    if what == "slim-checkpoint":
        from inception.weights import slim

        return slim.from_checkpoint(
            target,
            display_path=os.fspath(path),
            detail=("V2 checkpoint" if os.path.isfile(target + ".index") else "V1 checkpoint"),
            files=slim.checkpoint_files(target),
        )
    if what == "timm":
        from inception.weights import timm

        return timm.from_safetensors(target)
    if what == "keras-h5":
        from inception.weights import keras_h5

        return keras_h5.from_h5(target)
    from inception.weights import keras_model

    return keras_model.from_keras_file(target)
