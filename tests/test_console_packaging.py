"""The installable project and the quiet console (issue 10): pyproject's commands import, no
file patches the import path, and an entry point hides TensorFlow's noise unless --verbose."""

import logging
import os
import re
import subprocess
import sys
import warnings

import pytest

from inception import console

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# TensorFlow's C++ log lines ("I0000 00:00:1795465350.779071    3394 port.cc:153] ..."), its note
# about them, the CUDA probe of machines without a GPU.
NOISE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ \S+:\d+\]|absl::InitializeLog|cuInit"
                   r"|cuda drivers", re.M)


def _pyproject():
    tomllib = pytest.importorskip("tomllib")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def test_pyproject_commands_resolve_to_callables():
    scripts = _pyproject()["project"]["scripts"]
    assert {"inception-train", "inception-export", "inception-evaluate",
            "inception-convert-weights", "inception-predict-tflite",
            "inception-experiments"} <= set(scripts)
    # One process per command: the absl entry points define flags of the same names.
    for name, target in scripts.items():
        module, attr = target.split(":")
        check = ("import importlib, inspect; "  # the generated script calls it with no arguments
                 f"inspect.signature(getattr(importlib.import_module({module!r}), {attr!r})).bind()")
        result = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, f"{name} = {target}: {result.stderr[-2000:]}"
        assert "tensorflow" not in result.stderr.lower()


def test_dependencies_are_requirements_txt():
    project = _pyproject()
    assert "dependencies" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["dependencies"] == {"file": ["requirements.txt"]}


def test_no_file_patches_the_import_path():
    patch = re.compile(r"\bsys\.path\s*(\.\s*(insert|append|extend)\b|\+?=[^=]|\[[^\]]*\]\s*=)")
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    assert tracked
    offenders = []
    for path in tracked:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            offenders += [f"{path}:{i}" for i, line in enumerate(f, 1) if patch.search(line)]
    assert not offenders


def _record(pathname, level=logging.INFO, message="Load dataset info from data/x"):
    return logging.LogRecord("absl", level, pathname, 1, message, None, None)


def test_library_info_lines_are_dropped_ours_and_warnings_kept():
    keep = console.LibraryNoise().filter
    tfds = os.path.join(sys.prefix, "lib", "site-packages", "tensorflow_datasets", "core", "x.py")
    ours = os.path.join(ROOT, "inception", "training.py")
    assert not keep(_record(tfds))
    assert keep(_record(tfds, logging.WARNING, "the archive is missing"))
    assert not keep(_record(tfds, logging.WARNING, "foo is deprecated and will be removed"))
    assert keep(_record(ours))
    assert keep(_record(ours, logging.WARNING, "deprecated flag"))


def test_deprecation_notices_of_other_packages_only_are_silenced():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        console.silence_deprecations()
        for module in ("tensorflow.python.util", "keras.src.x", "inception.models", "inception_cli.export"):
            warnings.warn_explicit("old API", DeprecationWarning, "x.py", 1, module=module)
        warnings.warn_explicit("a real warning", UserWarning, "x.py", 1, module="tensorflow.x")
    assert sorted(str(w.message) + " " + w.filename for w in caught) == [
        "a real warning x.py", "old API x.py", "old API x.py"]


def test_verbose_changes_nothing():
    before = (list(warnings.filters), list(sys.meta_path), os.environ.get("TF_CPP_MIN_LOG_LEVEL"),
              list(logging.getLogger("absl").filters))
    console.quiet(verbose=True)
    after = (list(warnings.filters), list(sys.meta_path), os.environ.get("TF_CPP_MIN_LOG_LEVEL"),
             list(logging.getLogger("absl").filters))
    assert after == before


def _export(tmp_path, *flags):
    """export.py on an empty directory: flags pass, TensorFlow loads, then the run is refused."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, "export.py", f"--model_dir={tmp_path}", f"--export_dir={tmp_path}", *flags],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_entry_point_is_quiet_unless_verbose(tmp_path):
    quiet = _export(tmp_path)
    assert quiet.returncode != 0 and "missing ema_model.keras" in quiet.stderr  # our message
    output = quiet.stdout + quiet.stderr
    assert not NOISE.search(output), output[-3000:]
    assert len(output.strip().splitlines()) == 1, output[-3000:]
    verbose = _export(tmp_path, "--verbose")
    assert verbose.returncode != 0 and "missing ema_model.keras" in verbose.stderr
    if not NOISE.search(verbose.stdout + verbose.stderr):
        pytest.skip("this TensorFlow build prints no start-up noise to hide")
