"""``weights="imagenet"``: the official files, from a local cache or downloaded once.

Downloads use Keras' own fetcher (``keras.utils.get_file``) into a temporary directory inside the
cache; a file is written into the cache (``inception.fileio``: atomically and durably) only after
it passed its checksum (where one is known) and was read completely as the expected network's
weights, so a partial or corrupt download is never cached. The cache is
``$INCEPTION_WEIGHTS_DIR``, else ``<KERAS_HOME or ~/.keras>/models/inception``.

Checksums: keras-applications' file has the md5 Keras itself checks. The sha256 of the TF-slim
archives and of timm's files could not be obtained offline when this table was written, so they
are None; for them the structure check stands in, and ``file_hash=`` (or the converter's
``--sha256``) pins a hash you trust.
"""

import dataclasses
import os
import shutil
import tempfile

from inception import fileio
from inception.weights import names
from inception.weights.file import WeightsError, digest

ENV_CACHE = "INCEPTION_WEIGHTS_DIR"


@dataclasses.dataclass(frozen=True)
class Official:
    network: str
    source: str
    url: str
    filename: str
    file_hash: str = None  # md5 or sha256 hex digest, None where not known
    note: str = ""


_SLIM = "https://download.tensorflow.org/models/"
_HUB = "https://huggingface.co/timm/{}/resolve/main/model.safetensors"
_KERAS = (
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_resnet_v2/"
    "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5"
)

OFFICIAL = {
    ("inception_v4", "slim"): Official(
        "inception_v4",
        "slim",
        _SLIM + "inception_v4_2016_09_09.tar.gz",
        "inception_v4_2016_09_09.tar.gz",
        note="TF-slim release, 80.2 / 95.2 top-1 / top-5",
    ),
    ("inception_resnet_v2", "slim"): Official(
        "inception_resnet_v2",
        "slim",
        _SLIM + "inception_resnet_v2_2016_08_30.tar.gz",
        "inception_resnet_v2_2016_08_30.tar.gz",
        note="TF-slim release, 80.4 / 95.3 top-1 / top-5",
    ),
    ("inception_v4", "timm_tf_in1k"): Official(
        "inception_v4",
        "timm_tf_in1k",
        _HUB.format("inception_v4.tf_in1k"),
        "inception_v4.tf_in1k.safetensors",
        note="timm port of the slim release",
    ),
    ("inception_resnet_v2", "timm_tf_in1k"): Official(
        "inception_resnet_v2",
        "timm_tf_in1k",
        _HUB.format("inception_resnet_v2.tf_in1k"),
        "inception_resnet_v2.tf_in1k.safetensors",
        note="timm port of the slim release",
    ),
    ("inception_resnet_v2", "timm_tf_ens_adv_in1k"): Official(
        "inception_resnet_v2",
        "timm_tf_ens_adv_in1k",
        _HUB.format("inception_resnet_v2.tf_ens_adv_in1k"),
        "inception_resnet_v2.tf_ens_adv_in1k.safetensors",
        note="ensemble adversarial training (Tramer et al.)",
    ),
    ("inception_resnet_v2", "keras"): Official(
        "inception_resnet_v2",
        "keras",
        _KERAS,
        "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5",
        file_hash="e693bd0210a403b3192acc6073ad2e96",
        note="keras.applications (md5 from Keras' source)",
    ),
}
DEFAULT_SOURCE = "slim"


def cache_directory(cache_dir=None):
    if cache_dir:
        return os.path.expanduser(cache_dir)
    if os.environ.get(ENV_CACHE):
        return os.path.expanduser(os.environ[ENV_CACHE])
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models", "inception")


def official(network, source=DEFAULT_SOURCE):
    entry = OFFICIAL.get((network, source))
    if entry is None:
        choices = "; ".join(f"{n}/{s} ({e.note})" for (n, s), e in OFFICIAL.items())
        raise WeightsError(f"no official {source!r} weights for {network}; available: {choices}")
    return entry


def official_file(
    network, source=DEFAULT_SOURCE, *, cache_dir=None, file_hash=None, url=None, log=print
):
    """Path of the official file, downloaded (and verified) into the cache if it is not there.

    ``url`` replaces the official address (a mirror); ``file_hash`` (md5 or sha256) replaces or
    adds the expected checksum.
    """
    from keras.utils import get_file

    entry = official(network, source)
    expected = file_hash or entry.file_hash
    cache = cache_directory(cache_dir)
    target = os.path.join(cache, entry.filename)
    if os.path.isfile(target):
        if expected is None or matches(target, expected):
            return target
        log(f"{target} does not match its checksum; downloading it again")
        os.remove(target)
    os.makedirs(cache, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".download-", dir=cache)
    try:
        try:
            downloaded = get_file(
                entry.filename,
                url or entry.url,
                file_hash=expected,
                cache_dir=staging,
                cache_subdir="",
            )
        except Exception as err:  # noqa: BLE001 -- get_file: plain Exception on network errors
            raise WeightsError(f"downloading {url or entry.url} failed: {err}") from None
        verify_structure(downloaded, entry.network)
        fileio.copy_file(downloaded, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def matches(path, expected):
    """Whether the file's md5 (32 hex digits) or sha256 (64) is ``expected``."""
    return digest(path, "md5" if len(expected) == 32 else "sha256") == expected.lower()


def verify_structure(path, network):
    """Reads every tensor of the file and checks it holds ``network``'s body; raises WeightsError."""
    from inception.weights import detect

    net = names.NETWORKS[network]
    body = {s.path for s in names.slots(network) if s.part == names.BODY}
    try:
        with detect.open_source(path) as source:
            if source.network != net.model_name:
                raise WeightsError(f"{path} holds {source.title}, expected {net.title}")
            if source.unknown:
                raise WeightsError(f"{path}: unexpected variables {source.unknown[:5]}")
            lacking = sorted(body - set(source.entries))
            if lacking:
                raise WeightsError(
                    f"{path}: incomplete, {len(lacking)} variables missing (e.g. {lacking[0]})"
                )
            for entry in source.entries.values():
                if tuple(entry.load().shape) != tuple(entry.shape):
                    raise WeightsError(f"{path}: {entry.key} cannot be read in full")
    except Exception as err:  # noqa: BLE001 -- a truncated file fails anywhere in the readers
        raise WeightsError(
            f"the downloaded file is damaged or incomplete ({type(err).__name__}: {err})"
        ) from None
