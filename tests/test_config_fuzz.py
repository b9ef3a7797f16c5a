"""Every config field and path flag with bad values (issue 27, items 4): each is refused before
TensorFlow does any work, with the field's flag in the message.

The fields are read from the dataclasses (TrainConfig's four sections, ExportConfig,
EvaluateConfig), so a new field is fuzzed without a change here; the values come from its type.
A field where an empty or negative value means something (a default) is listed below and must be
accepted: a new field has to be put in one class or the other. Runs with ``tensorflow`` and
``keras`` blocked in ``sys.modules``: a check that imported either fails here with ImportError.
"""

import dataclasses
import functools
import math
import os
import subprocess
import sys

import pytest

from inception import paths
from inception.evaluation.config import EvaluateConfig
from inception.export.config import ExportConfig
from inception.runfiles import RUN_FILES
from inception.train import config

# Empty means "the default" (variant, init_weights, ...; a job's dataset: the run's); a negative
# number means "the dataset's default" (min_object_covered). Every other field refuses both.
TRAIN_EMPTY_OK = {
    "variant",
    "data_dir",
    "manual_dir",
    "init_weights",
    "freeze_up_to",
    "tpu",
    "residual_scales",
    "repeats",
    "area_range",
}
JOB_EMPTY_OK = {
    "keras_model",
    "labels",
    "dataset",
    "data_dir",
    "manual_dir",
    "tpu",
    "save_probabilities",
}
NEGATIVE_OK = {"min_object_covered"}


@pytest.fixture()
def no_tensorflow(monkeypatch):
    for name in ("tensorflow", "keras"):
        monkeypatch.setitem(sys.modules, name, None)  # importing it now raises ImportError


def _train_fields():
    flat = {
        config._FLAT_NAME.get(f.name, f.name): f
        for section in config._SECTIONS.values()
        for f in dataclasses.fields(section)
    }
    assert set(flat) == set(config.TrainConfig().to_flat())
    return flat


def _bad_values(name, annotation, empty_ok, strings_ok=True):
    """(kind, value) pairs that must be refused for a field of this annotation."""
    plain = next(a for a in getattr(annotation, "__args__", (annotation,)) if a is not type(None))
    wrong = {
        int: ["7", 7.5, True, [7], b"7"],
        float: ["0.5", True, [0.5], b"1"],
        bool: ["true", 1, 0.0],
        str: [7, 1.5, b"bytes", ["a"], True],
        tuple: [7, 0.5, {"a": 1}, [[1], 2, 3], [None, 1, 1], [True, 1, 1]],
    }[plain]
    cases = [("wrong type", v) for v in wrong]
    if plain is annotation and plain is not tuple:
        cases.append(("wrong type", None))  # no default of None
    if plain is tuple and not strings_ok:
        cases += [("wrong type", "a,b"), ("wrong type", None)]
    if plain in (int, float):
        cases += [("huge", 10**30), ("huge", -(10**30))]
        if name not in NEGATIVE_OK:
            cases.append(("out of range", -(10**6)))
    if plain is float:
        cases += [("out of range", math.nan), ("huge", math.inf), ("huge", -1e300)]
    if plain is str:
        cases.append(("huge", "x" * 100_000))
        if name not in empty_ok:
            cases += [("empty", ""), ("empty", "   ")]
    if plain is tuple:
        cases.append(("huge", ["1"] * 100_000))
        if name not in empty_ok:
            cases.append(("empty", ()))
    return cases


def _expect_refused(make, name, kind, value):
    with pytest.raises(ValueError) as raised:
        make()
    assert f"--{name}" in str(raised.value), (name, kind, repr(value)[:40], str(raised.value))


def test_every_training_field_refuses_bad_values_by_name(no_tensorflow):
    count = 0
    for name, field in _train_fields().items():
        for kind, value in _bad_values(name, field.type, TRAIN_EMPTY_OK):
            make = functools.partial(config.TrainConfig.from_flat, {name: value})
            _expect_refused(make, name, kind, value)
            count += 1
    assert count > 400, count


def test_empty_and_negative_defaults_are_accepted_where_they_mean_default(no_tensorflow):
    flat = _train_fields()
    for name in sorted(TRAIN_EMPTY_OK):
        empty = () if flat[name].type is tuple else ""
        config.TrainConfig.from_flat({name: empty})
    config.TrainConfig.from_flat({"min_object_covered": -1e6})


def _job_base(tmp_path):
    (tmp_path / "run").mkdir(exist_ok=True)
    for name in RUN_FILES:
        (tmp_path / "run" / name).write_text("{}")
    return {
        ExportConfig: dict(export_dir=str(tmp_path / "out"), model_dir=str(tmp_path / "run")),
        EvaluateConfig: dict(models=(str(tmp_path / "run"),), output=str(tmp_path / "eval.json")),
    }


def test_every_export_and_evaluation_field_refuses_bad_values_by_name(tmp_path, no_tensorflow):
    count = 0
    for kind_class, base in _job_base(tmp_path).items():
        kind_class(**base)  # the base itself is valid
        for field in dataclasses.fields(kind_class):
            name = field.name
            for kind, value in _bad_values(name, field.type, JOB_EMPTY_OK, strings_ok=False):
                if value is None and name in ("model_dir", "keras_model"):
                    continue  # one of the two is None by design
                flag = getattr(kind_class, "FLAG_NAMES", {}).get(name, name)
                make = functools.partial(kind_class, **dict(base, **{name: value}))
                _expect_refused(make, flag, kind, value)
                count += 1
        for name in sorted(JOB_EMPTY_OK & {f.name for f in dataclasses.fields(kind_class)}):
            kind_class(**dict(base, **{name: ""}))  # empty: the default
    assert count > 200, count


def test_evaluation_device_fields_are_checked_once_by_the_training_checks(tmp_path, no_tensorflow):
    """strategy, tpu and num_cpu_devices have one check each, the training run section's: both
    commands refuse a bad value in the same words."""
    base = _job_base(tmp_path)[EvaluateConfig]
    for values in (
        dict(strategy="bogus"),
        dict(strategy="tpu"),
        dict(num_cpu_devices=-1),
        dict(num_cpu_devices=2, strategy="one_device"),
    ):
        with pytest.raises(ValueError) as from_training:
            config.TrainConfig.from_flat(values)
        with pytest.raises(ValueError) as from_evaluation:
            EvaluateConfig(**dict(base, **values))
        assert str(from_evaluation.value) == str(from_training.value), values


def _chmod_read_only(directory, monkeypatch):
    """A directory that cannot be written: chmod for a normal user; root writes anyway, so
    there os.access is told so (the check asks os.access, as a non-root user would get)."""
    os.chmod(directory, 0o555)
    if os.geteuid() == 0:
        real = os.access
        monkeypatch.setattr(
            paths.os,
            "access",
            lambda p, mode: (
                False
                if os.path.realpath(p) == os.path.realpath(directory) and mode & os.W_OK
                else real(p, mode)
            ),
        )


def test_path_flags_are_checked_for_kind_and_writability(tmp_path, monkeypatch, no_tensorflow):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    _chmod_read_only(read_only, monkeypatch)
    run = tmp_path / "run"
    run.mkdir()
    for name in RUN_FILES:
        (run / name).write_text("{}")
    train = config.TrainConfig.from_flat
    # Keywords given at the call replace these.
    export = functools.partial(ExportConfig, export_dir=str(tmp_path / "out"), model_dir=str(run))
    evaluate = functools.partial(
        EvaluateConfig, models=(str(run),), output=str(tmp_path / "e.json")
    )
    cases = [
        (lambda: train({"model_dir": str(a_file)}).check_paths(), "--model_dir", "is a file"),
        (
            lambda: train({"model_dir": str(a_file / "run")}).check_paths(),
            "--model_dir",
            f"{a_file} is a file",
        ),
        (lambda: train({"model_dir": str(read_only)}).check_paths(), "--model_dir", "not writable"),
        (
            lambda: train({"model_dir": str(read_only / "new")}).check_paths(),
            "--model_dir",
            "not writable",
        ),
        (lambda: train({"model_dir": "n" * 300}).check_paths(), "--model_dir", "too long"),
        (lambda: train({"data_dir": str(a_file)}).check_paths(), "--data_dir", "is a file"),
        (
            lambda: train({"manual_dir": str(a_file / "x")}).check_paths(),
            "--manual_dir",
            "is a file",
        ),
        (lambda: train({"init_weights": str(tmp_path)}), "--init_weights", "is a directory"),
        (lambda: export(export_dir=str(a_file)), "--export_dir", "is a file"),
        (lambda: export(export_dir=str(a_file / "sub")), "--export_dir", "is a file"),
        (lambda: export(export_dir=str(read_only)), "--export_dir", "not writable"),
        (lambda: export(model_dir=str(a_file)), "--model_dir", "is a file"),
        (lambda: export(model_dir=str(tmp_path / "none")), "--model_dir", "no such"),
        (
            lambda: export(model_dir=None, keras_model=str(tmp_path)),
            "--keras_model",
            "is a directory",
        ),
        (
            lambda: export(model_dir=None, keras_model=str(tmp_path / "m.keras")),
            "--keras_model",
            "no such",
        ),
        (lambda: export(labels=str(tmp_path)), "--labels", "is a directory"),
        (lambda: export(data_dir=str(a_file)), "--data_dir", "is a file"),
        (lambda: evaluate(output=str(a_file / "e.json")), "--output", "is a file"),
        (lambda: evaluate(output=str(read_only / "e.json")), "--output", "not writable"),
        (
            lambda: evaluate(save_probabilities=str(read_only / "p.npz")),
            "--save_probabilities",
            "not writable",
        ),
        (lambda: evaluate(data_dir=str(a_file)), "--data_dir", "is a file"),
        (lambda: evaluate(manual_dir=str(a_file)), "--manual_dir", "is a file"),
    ]
    for make, flag, words in cases:
        with pytest.raises(ValueError) as raised:
            make()
        message = str(raised.value)
        assert flag in message and words in message, (flag, words, message)
    # The same paths of the right kind pass; a prepared data directory may be read-only.
    train({"model_dir": str(tmp_path / "new" / "run"), "data_dir": str(read_only)}).check_paths()
    export(export_dir=str(tmp_path / "new_out"), data_dir=str(read_only))
    evaluate(output=str(tmp_path / "sub" / "e.json"), data_dir=str(read_only))
    assert not (tmp_path / "new").exists(), "a check must not create anything"


def test_commands_refuse_bad_paths_and_values_before_tensorflow_loads(tmp_path):
    """export.py --export_dir naming a file (computed the whole reference, then a
    NotADirectoryError traceback), main.py and evaluate.py: one line, exit 1, and TensorFlow
    never imported (``-X importtime`` lists every import)."""
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    run = tmp_path / "run"
    run.mkdir()
    for name in RUN_FILES:
        (run / name).write_text("{}")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commands = [
        (
            ["export.py", f"--model_dir={run}", f"--export_dir={a_file}"],
            f"--export_dir={a_file} is a file, not a directory",
        ),
        (["main.py", f"--model_dir={a_file}/run"], f"{a_file} is a file, not a directory"),
        (["main.py", "--seed=100000000000000000000"], "--seed is out of range"),
        (["evaluate.py", f"--models={run}", f"--output={tmp_path}"], "--output"),
        (
            [
                "-m",
                "inception_cli.convert_weights",
                f"--weights={tmp_path}/missing.ckpt",
                f"--output={tmp_path}/m.keras",
            ],
            f"--weights={tmp_path}/missing.ckpt: no such weights file",
        ),
        (
            ["-m", "inception_cli.convert_weights", f"--weights={a_file}", f"--output={tmp_path}"],
            f"--output={tmp_path} is a directory, not a file",
        ),
        (
            ["-m", "inception_cli.convert_weights", f"--weights={a_file}", f"--preset={a_file}"],
            f"--preset={a_file} is a file, not a directory",
        ),
    ]
    for args, words in commands:
        result = subprocess.run(
            [sys.executable, "-X", "importtime", *args],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, PYTHONPATH=repo),
        )
        assert result.returncode == 1 and words in result.stderr, (args, result.stderr[-1500:])
        imported = [
            line
            for line in result.stderr.splitlines()
            if line.startswith("import time:")
            and line.split("|")[-1].strip() in ("tensorflow", "keras")
        ]
        assert not imported, (args, imported)
        assert "Traceback" not in result.stderr, result.stderr[-1500:]


def test_config_modules_load_no_tensorflow():
    """The commands read their configs before TensorFlow loads, so importing a config module
    imports neither TensorFlow nor Keras (``inception.train`` loads its modules on first use;
    the format registry in ``export.formats`` imports no format module)."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (
        "import sys, inception.train.config, inception.export.config, "
        "inception.evaluation.config, inception.checks, inception.runfiles; "
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=repo),
    )
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr
