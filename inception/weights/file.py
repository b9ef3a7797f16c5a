"""What every reader of a weights file produces: the file's tensors keyed by our variable paths.

A reader (slim.py, timm.py, keras_h5.py, keras_model.py) names the network the file holds, gives
each tensor it maps the path of our variable it fills (already in our layout: conv HWIO, dense
[in, out]) and lists every other tensor of the file with the reason it is not copied (a unit
BatchNorm gamma it checked, a step counter) or as unknown. assign.py then matches these against a
model, so that every tensor of the file is accounted for exactly once.
"""

import dataclasses
import hashlib
import os

import numpy as np

FORMAT_SLIM = "tf-slim checkpoint"
FORMAT_TIMM = "timm safetensors"
FORMAT_KERAS_H5 = "keras-applications legacy HDF5"
FORMAT_KERAS_MODEL = "Keras model (.keras) of this project"
FORMATS_HELP = (
    "a TF-slim checkpoint (the released .tar.gz archive, its extracted V1 .ckpt file, or a V2 "
    "checkpoint given by its prefix or its .index file), a timm model.safetensors file, the "
    "keras-applications Inception-ResNet-v2 legacy .h5 file, or a .keras model saved by this project"
)


class WeightsError(ValueError):
    """A weights file that is not what the model needs; the message says what is wrong."""


@dataclasses.dataclass
class Entry:
    key: str  # the tensor's name in the file
    shape: tuple  # shape in our layout
    load: object  # () -> float32 numpy array in our layout
    expected: str = None  # for messages: what the file calls it


@dataclasses.dataclass
class WeightsFile:
    format: str
    path: str
    network: str  # the model name it fits (models.build's model.name)
    title: str  # the network for messages, e.g. "Inception-v4"
    detail: str  # e.g. "V1 checkpoint inception_v4.ckpt inside the archive"
    entries: dict  # our variable path -> Entry
    checked: list = dataclasses.field(default_factory=list)  # (key, what was verified)
    ignored: list = dataclasses.field(default_factory=list)  # (key, why it holds nothing to copy)
    unknown: list = dataclasses.field(default_factory=list)  # keys that map to nothing
    expected_key: object = None  # our path -> the name this format uses, for "missing" messages
    files: list = dataclasses.field(default_factory=list)
    background: bool = False  # a 1001-class classifier whose class 0 is "background"
    # A .keras file's model (keras_model.py), whose classifier carries its class names
    # (pretrained.load_weights copies them); None for the other formats.
    model: object = None
    # The open file the entries read lazily (keras_h5.py: the HDF5 file), closed by ``close``
    # once the tensors are copied (detect.open_source); None when nothing stays open.
    open_file: object = None

    @property
    def num_keys(self):
        return len(self.entries) + len(self.checked) + len(self.ignored) + len(self.unknown)

    def classes(self):
        entry = self.entries.get("predictions/bias")
        return None if entry is None else int(entry.shape[0])

    def has_aux(self):
        return any(p.startswith("aux_logits/") for p in self.entries)

    def close(self):
        """Closes ``open_file``, if any; the entries cannot be loaded afterwards."""
        if self.open_file is not None:
            self.open_file.close()


def check_unit_gamma(key, value):
    """BatchNorm scale: our layers (like slim's) have none, so only a gamma of exactly 1 fits."""
    value = np.asarray(value)
    if value.size and not np.all(value == 1.0):
        raise WeightsError(
            f"{key} is a BatchNorm gamma (scale) with values in [{value.min():.6g}, {value.max():.6g}]; "
            "our BatchNorm layers have no gamma (scale=False, as in the released networks), so only a "
            "gamma of exactly 1.0 can be imported"
        )
    return "BatchNorm gamma, checked equal to 1.0 (our BatchNorm has no scale)"


def digest(path, algorithm="sha256", chunk=1 << 22):
    """The file's hex digest (``hashlib`` algorithm name), read in 4 MiB blocks."""
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            hasher.update(block)
    return hasher.hexdigest()


def sha256(path):
    return digest(path, "sha256")


def file_checksums(files):
    return {os.path.basename(f): sha256(f) for f in files}
