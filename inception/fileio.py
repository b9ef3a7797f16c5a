"""Files written whole or not at all, on any TensorFlow file system (local paths, ``gs://``, and
whatever ``tf.io.gfile`` supports). Every writer of the project goes through here.

The one durability rule: the new content is written under a temporary name beside the target,
flushed (and, on a local disk, fsync'ed), then renamed over the target; on a local disk the
directory is fsync'ed after the rename. A reader therefore sees the old file or the whole new
one, never a torn one, and once the call returns the new file survives a crash or power loss.

Object stores have no atomic rename: ``tf.io.gfile.rename`` on ``gs://`` copies then deletes.
There the final object is still created in one request (an object is never visible half
written), so readers see the old object or the whole new one as well; what is lost is only the
atomicity of replacing a directory (``publish_dir``): a crash during its copy leaves a partial
directory under the final name, and ``publish_dir`` therefore writes a ``COMPLETE`` marker last
where the file system is not local.
"""

import contextlib
import json
import os
import shutil
import tempfile
import uuid

COMPLETE = "COMPLETE"  # last file of a directory published on a non-local file system


def is_local(path):
    """True for paths of the local file system (no ``scheme://`` prefix, or ``file://``)."""
    path = os.fspath(path)
    return "://" not in path or path.startswith("file://")


def _local(path):
    path = os.fspath(path)
    return path[len("file://") :] if path.startswith("file://") else path


def _gfile():
    import tensorflow as tf  # only for non-local paths: the local ones need no TensorFlow

    return tf.io.gfile


def join(*parts):
    """``os.path.join`` that keeps a ``scheme://`` prefix intact."""
    return os.path.join(*[os.fspath(p) for p in parts])


def exists(path):
    return os.path.exists(_local(path)) if is_local(path) else _gfile().exists(path)


def isdir(path):
    return os.path.isdir(_local(path)) if is_local(path) else _gfile().isdir(path)


def makedirs(path):
    if is_local(path):
        os.makedirs(_local(path), exist_ok=True)
    else:
        _gfile().makedirs(path)


def listdir(path):
    return os.listdir(_local(path)) if is_local(path) else _gfile().listdir(path)


def _open_for_reading(path):
    return open(_local(path), "rb") if is_local(path) else _gfile().GFile(path, "rb")


def read_bytes(path):
    with _open_for_reading(path) as f:
        return f.read()


def read_text(path):
    return read_bytes(path).decode("utf-8")


def read_json(path):
    return json.loads(read_text(path))


def _fsync_dir(directory):
    fd = os.open(directory or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temporary_name(path):
    directory, name = os.path.split(os.fspath(path))
    return os.path.join(directory, f".tmp-{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def write_bytes(path, data):
    """``path`` <- ``data`` (bytes), atomically and durably (the module's rule)."""
    return write_chunks(path, [data])


def write_chunks(path, chunks):
    """``path`` <- the concatenation of ``chunks`` (an iterable of bytes), atomically and durably;
    only one chunk is in memory at a time (a 1 GB checkpoint copies in 16 MB pieces)."""
    tmp = _temporary_name(path)
    if is_local(path):
        local, tmp = _local(path), _local(tmp)
        try:
            with open(tmp, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, local)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        _fsync_dir(os.path.dirname(local))
        return path
    gfile = _gfile()
    try:
        with gfile.GFile(tmp, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        gfile.rename(tmp, path, overwrite=True)
    finally:
        if gfile.exists(tmp):
            gfile.remove(tmp)
    return path


CHUNK_BYTES = 16 << 20


def read_chunks(path, size=None):
    """The bytes of ``path`` (any file system) in pieces of at most ``size`` (``CHUNK_BYTES``)."""
    size = size or CHUNK_BYTES
    with _open_for_reading(path) as f:
        while True:
            chunk = f.read(size)
            if not chunk:
                return
            yield chunk


def write_text(path, text):
    return write_bytes(path, text.encode("utf-8"))


def write_json(path, payload):
    """``path`` <- ``payload`` as indented, key-sorted JSON, atomically."""
    return write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def copy_file(source, target):
    """Copies a file (any file systems) to ``target`` atomically, streaming it."""
    return write_chunks(target, read_chunks(source))


@contextlib.contextmanager
def local_scratch(suffix=""):
    """A temporary local directory, removed afterwards (for writers that need a local path)."""
    directory = tempfile.mkdtemp(suffix=suffix)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def save_keras(model, path):
    """``model.save`` to ``path`` (a ``.keras`` file on any file system), atomically."""
    with local_scratch() as scratch:
        local = os.path.join(scratch, os.path.basename(os.fspath(path)))
        model.save(local)
        return copy_file(local, path)


def publish_dir(final, write_fn):
    """Runs ``write_fn(tmp_dir)``, then moves ``tmp_dir`` to ``final`` (which must not exist);
    returns ``final``. On any error or interruption nothing is left under ``final``.

    Local: ``tmp_dir`` is a sibling of ``final`` (``.tmp-<name>-<pid>-<id>``), every file in it is
    fsync'ed, then one rename publishes it. Elsewhere: ``write_fn`` writes a local scratch
    directory, which is copied file by file under ``final`` with ``COMPLETE`` last."""
    if exists(final):
        raise FileExistsError(f"{final} already exists")
    if is_local(final):
        local = _local(final)
        os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
        tmp = _temporary_name(local)
        os.makedirs(tmp)
        try:
            write_fn(tmp)
            _fsync_tree(tmp)
            os.rename(tmp, local)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        _fsync_dir(os.path.dirname(local))
        return final
    with local_scratch() as scratch:
        write_fn(scratch)
        _copy_tree(scratch, final)
    return final


def _fsync_tree(root):
    for directory, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _copy_tree(local_root, remote_root):
    gfile = _gfile()
    for directory, _, files in os.walk(local_root):
        relative = os.path.relpath(directory, local_root)
        target_dir = remote_root if relative == "." else join(remote_root, relative)
        gfile.makedirs(target_dir)
        for name in files:
            gfile.copy(os.path.join(directory, name), join(target_dir, name), overwrite=True)
    write_text(join(remote_root, COMPLETE), "")


def is_published(directory):
    """Whether a directory written by ``publish_dir`` is complete (always, on a local disk)."""
    return exists(directory) and (is_local(directory) or exists(join(directory, COMPLETE)))
