"""Checks of the path flags, before any heavy work: is each path of the kind its flag needs
(a file, a directory), does it exist where it must, and can the command write where it will?

Pure Python, no TensorFlow: every entry point calls these right after parsing its flags, so
``export.py --export_dir=`` naming a file is refused at once instead of after the export's work
(BUILD_NOTES "Fuzzing every input surface"). Paths of other file systems (``gs://``, ``ram://``)
are not checked here: asking them costs a TensorFlow import and a round trip, and their
writers report their own errors.
"""

import os

from inception import fileio


class PathError(ValueError):
    """A path flag that cannot be used; the message names the flag, the path and what to do."""


def _checked(path):
    """The local path to check, or None for another file system or an empty flag."""
    if not path or not fileio.is_local(path):
        return None
    return os.path.abspath(os.path.expanduser(fileio._local(path)))


def _too_long(flag, path):
    # An over-long name fails deep inside a writer as "File name too long"; say it now.
    longest = max((len(part.encode()) for part in path.split(os.sep)), default=0)
    if len(path.encode()) >= 4096 or longest > 255:
        raise PathError(
            f"--{flag}: the path is too long ({len(path)} characters, a name of "
            f"{longest} bytes; at most 255 per name): {path[:80]}..."
        )


def _existing_ancestor(path):
    """The nearest part of ``path`` (itself included) that exists."""
    while not os.path.lexists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return path
        path = parent
    return path


def _check_creatable(flag, path, what):
    """``path`` does not exist yet: the directory it would be created in must be a writable
    directory (not a file, not read-only)."""
    ancestor = _existing_ancestor(os.path.dirname(path))
    if not os.path.isdir(ancestor):
        raise PathError(
            f"--{flag}={path}: cannot create this {what}: {ancestor} is a file, not "
            "a directory; choose a path outside it"
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise PathError(
            f"--{flag}={path}: cannot create this {what}: the directory {ancestor} "
            "is not writable; choose a writable location"
        )


def output_dir(flag, path, what="directory"):
    """A directory the command writes into: an existing writable directory, or creatable."""
    path = _checked(path)
    if path is None:
        return
    _too_long(flag, path)
    if not os.path.exists(path):
        return _check_creatable(flag, path, what)
    if not os.path.isdir(path):
        raise PathError(
            f"--{flag}={path} is a file, not a directory: give the path of the "
            f"{what} (it is created if missing)"
        )
    if not os.access(path, os.W_OK | os.X_OK):
        raise PathError(
            f"--{flag}={path}: the {what} is not writable; make it writable or choose another"
        )


def output_file(flag, path, what="file"):
    """A file the command writes (atomically: a new file beside it, then a rename), so its
    directory must be writable; an existing file is replaced, a directory is refused."""
    path = _checked(path)
    if path is None:
        return
    _too_long(flag, path)
    if os.path.isdir(path):
        raise PathError(
            f"--{flag}={path} is a directory, not a file: name the {what} to "
            "write (inside it, if you like)"
        )
    directory = os.path.dirname(path)
    if os.path.isdir(directory):
        if not os.access(directory, os.W_OK | os.X_OK):
            raise PathError(
                f"--{flag}={path}: its directory {directory} is not writable; "
                "choose a writable location"
            )
        return
    _check_creatable(flag, path, what)


def input_file(flag, path, what="file"):
    """A file the command reads: it must exist, be a file and be readable."""
    _readable(flag, path, what, directory=False)


def input_dir(flag, path, what="directory"):
    """A directory the command reads: it must exist, be a directory and be readable."""
    _readable(flag, path, what, directory=True)


def _readable(flag, path, what, directory):
    path = _checked(path)
    if path is None:
        return
    if not os.path.exists(path):
        raise PathError(f"--{flag}={path}: no such {what}")
    if os.path.isdir(path) != directory:
        kinds = ("a directory, not a file", "a file, not a directory")[directory]
        raise PathError(f"--{flag}={path} is {kinds} (the {what})")
    # Listing a directory needs its execute bit as well.
    if not os.access(path, os.R_OK | (os.X_OK if directory else 0)):
        raise PathError(f"--{flag}={path}: the {what} is not readable (permissions)")


def optional_dir(flag, path, what="directory"):
    """A directory that may be read only or created (a TFDS data directory: a prepared, shared
    one may be read-only; a missing one is created): never a file, never under a file."""
    path = _checked(path)
    if path is None:
        return
    _too_long(flag, path)
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise PathError(f"--{flag}={path} is a file, not a directory (the {what})")
        return
    _check_creatable(flag, path, what)
