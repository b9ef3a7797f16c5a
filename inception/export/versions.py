"""Version directories: ``OUT/<name>/<version>`` (TF Serving polls ``OUT/<name>`` and serves the
highest integer) and ``OUT/<name>-artifacts/<version>``. The one place that picks the next
version, refuses one that exists, removes what interrupted exports left, and publishes a version
whole.

A version is written under a temporary sibling and renamed into place only when complete
(``inception.fileio.publish_dir``), so a server polling ``OUT/<name>`` never sees a half-written
version: it ignores names that are not integers.
"""

import os
import re
import shutil

from inception import fileio

# publish_dir's temporary sibling of OUT/<name>/<version>: .tmp-<version>-<pid>-<id>.
_TEMPORARY = re.compile(r"^\.tmp-(\d+)-(\d+)-[0-9a-f]+$")


def existing(base_dir):
    """Integer version directories under ``base_dir``, ascending."""
    if not fileio.isdir(base_dir):
        return []
    names = [n.rstrip("/") for n in fileio.listdir(base_dir)]  # object stores end folders in /
    return sorted(int(n) for n in names if n.isdigit() and fileio.isdir(fileio.join(base_dir, n)))


def next_version(*base_dirs):
    """One more than the highest version present in any of ``base_dirs`` (1 when none)."""
    return max([0] + [v for d in base_dirs for v in existing(d)]) + 1


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(base_dir):
    """Deletes the temporaries of exports that died (their pid is gone); returns their names.

    Only local directories have them: elsewhere ``publish_dir`` writes a local scratch directory."""
    if not fileio.is_local(base_dir) or not os.path.isdir(base_dir):
        return []
    removed = []
    for name in sorted(os.listdir(base_dir)):
        match = _TEMPORARY.match(name)
        if match and not _pid_alive(int(match.group(2))):
            shutil.rmtree(os.path.join(base_dir, name), ignore_errors=True)
            removed.append(name)
    return removed


def _refuse_existing(base_dir, version):
    if fileio.exists(fileio.join(base_dir, str(version))):
        raise FileExistsError(
            f"version {version} already exists in {base_dir}; pick another --version"
        )


def claim(base_dirs, version=None, log=print):
    """The version to write in every one of ``base_dirs``: ``version``, or the next free one.

    Removes stale temporaries first; FileExistsError when ``version`` exists in any of them."""
    for base in base_dirs:
        for stale in remove_stale_temporaries(base):
            log(f"removed {os.path.join(base, stale)} left by an interrupted export")
    version = next_version(*base_dirs) if version is None else int(version)
    for base in base_dirs:
        _refuse_existing(base, version)
    return version


def publish(base_dir, version, write_fn):
    """Runs ``write_fn(directory)`` and publishes that directory as ``base_dir/version``, whole or
    not at all; returns the published path."""
    _refuse_existing(base_dir, version)
    return fileio.publish_dir(fileio.join(base_dir, str(int(version))), write_fn)
