"""Damaged run directories (issue 27, item 3): resume, --mode=eval, export and evaluation either
recover (the newest complete checkpoint, a rebuilt ema_model.keras, metrics.csv's whole rows) or
stop with one paragraph naming the file and what to do; a failed start changes no byte.

Every test copies the session's trained run (conftest ``trained_run``: checkpoints at steps 50
and 60, three epochs of 20 steps) and damages the copy; the entry points run in this process as
the commands run them (``inception_cli.train.run_training`` is main.py's path; export.py and
evaluate.py print the message of the ValueError or OSError their jobs raise, on one line).
"""

import hashlib
import json
import os
import shutil

import pytest

from inception import fileio


def _snapshot(directory):
    """{relative path: sha256} of every file under ``directory``."""
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
    return files


def _cut(path, keep=0.5):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: int(len(data) * keep)])
    return data


def _garbage(path):
    with open(path, "wb") as f:
        f.write(b"\x00\xff not what was here \x81" * 5)


@pytest.fixture()
def run_copy(trained_run, tmp_path):
    """(config of a copy of the trained run, its strategy, the copy's directory)."""
    config, strategy, _ = trained_run
    directory = str(tmp_path / "run")
    shutil.copytree(config.run.model_dir, directory)
    assert sorted(os.listdir(os.path.join(directory, "checkpoints"))) == [
        "checkpoint",
        "ckpt-50.data-00000-of-00001",
        "ckpt-50.index",
        "ckpt-60.data-00000-of-00001",
        "ckpt-60.index",
    ]
    return config.replace(model_dir=directory), strategy, directory


def _train_command(config, capsys):
    """main.py's path in this process: (exit status, stdout, stderr)."""
    from inception_cli import train as train_cli

    capsys.readouterr()
    status = train_cli.run_training(config)
    out = capsys.readouterr()
    return status, out.out, out.err


def _export_and_evaluate_errors(directory, tmp_path, data_dir):
    """The messages export.py and evaluate.py print for ``directory`` (None: it loaded)."""
    from inception.evaluation import job as evaluation_job
    from inception.evaluation.config import EvaluateConfig
    from inception.export import job as export_job
    from inception.export.config import ExportConfig

    messages = []
    for attempt in (
        lambda: export_job.load_classifier(
            ExportConfig(
                export_dir=str(tmp_path / "exports"), model_dir=directory, formats=("saved_model",)
            )
        ),
        lambda: evaluation_job.prepare(
            EvaluateConfig(
                models=(directory,),
                protocols=(1,),
                data_dir=data_dir,
                output=str(tmp_path / "eval.json"),
                progress=False,
            )
        ),
    ):
        try:
            attempt()
            messages.append(None)
        except (OSError, ValueError) as err:  # what both commands print as one line
            messages.append(str(err))
    return messages


def test_damaged_run_config_stops_every_entry_point_naming_it(
    run_copy, tmp_path, capsys, digits_dir
):
    config, _, directory = run_copy
    path = os.path.join(directory, "run_config.json")
    for damage in (_cut, _garbage, lambda p: open(p, "w").write("[1, 2]")):
        damage(path)
        before = _snapshot(directory)
        for mode in ("train_and_eval", "eval"):
            status, _, err = _train_command(config.replace(mode=mode), capsys)
            assert status == 1 and f"error: {path} is " in err, err
            assert "move the file aside and rerun training" in err and "Traceback" not in err
        for message in _export_and_evaluate_errors(directory, tmp_path, digits_dir):
            assert message and message.startswith(f"{path} is ") and "identity" in message
        assert _snapshot(directory) == before, "a failed start changed the run directory"
        assert not (tmp_path / "exports").exists() and not (tmp_path / "eval.json").exists()


def test_every_checkpoint_damaged_stops_without_starting_over(run_copy, capsys):
    """Starting from step 0 would write over the damaged checkpoints: the run stops instead,
    naming each one."""
    config, _, directory = run_copy
    for step in (50, 60):
        _cut(os.path.join(directory, "checkpoints", f"ckpt-{step}.index"))
    before = _snapshot(directory)
    for mode in ("train_and_eval", "eval"):
        status, out, err = _train_command(config.replace(mode=mode), capsys)
        assert status == 1, out + err
        assert "error: no checkpoint in" in err and "Nothing was changed" in err, err
        assert "ckpt-60 (" in err and "ckpt-50 (" in err and "move" in err
        assert "Traceback" not in err
    assert _snapshot(directory) == before


def test_damaged_ema_model_is_refused_then_rebuilt_by_eval(run_copy, tmp_path, capsys, digits_dir):
    """export.py and evaluate.py name the cut ema_model.keras and send the user to training;
    --mode=eval rebuilds it from the newest complete checkpoint: the state file names ckpt-50
    and a missing ckpt-70, the directory also holds ckpt-60, whose index is cut short, so
    ckpt-60 is found, named as damaged, and ckpt-50 is used. summary.json (garbage) is not
    read."""
    config, _, directory = run_copy
    ema = os.path.join(directory, "ema_model.keras")
    good = _cut(ema, 0.9)
    _cut(os.path.join(directory, "checkpoints", "ckpt-60.index"))
    state = os.path.join(directory, "checkpoints", "checkpoint")
    with open(state, "w") as f:
        f.write(
            'model_checkpoint_path: "ckpt-70"\nall_model_checkpoint_paths: "ckpt-50"\n'
            'all_model_checkpoint_paths: "ckpt-70"\n'
        )
    _garbage(os.path.join(directory, "summary.json"))
    before = _snapshot(directory)
    for message in _export_and_evaluate_errors(directory, tmp_path, digits_dir):
        assert message and message.startswith(f"{ema} is not a complete Keras model"), message
        assert "rerun the run's training command" in message
    assert _snapshot(directory) == before
    # The same file given as a .keras model: named with its flag.
    from inception.evaluation import job as evaluation_job
    from inception.evaluation.config import EvaluateConfig
    from inception.export import job as export_job
    from inception.export.config import ExportConfig

    bare = str(tmp_path / "model.keras")
    shutil.copy(ema, bare)
    with pytest.raises(ValueError, match=f"--keras_model={bare} is not a complete Keras model"):
        export_job.load_classifier(
            ExportConfig(
                export_dir=str(tmp_path / "exports"), keras_model=bare, formats=("saved_model",)
            )
        )
    with pytest.raises(ValueError, match=f"--models={bare} is not a complete Keras model"):
        evaluation_job.prepare(
            EvaluateConfig(
                models=(bare,),
                protocols=(1,),
                dataset="sklearn_digits",
                data_dir=digits_dir,
                output=str(tmp_path / "eval.json"),
            )
        )

    status, out, err = _train_command(config.replace(mode="eval"), capsys)
    assert status == 0, out + err
    assert "ckpt-60 (OpError: " in out and "instead, " in out, out
    assert (
        f"Rebuilt {ema}" in out and "from checkpoint " in out and out.rstrip().count("ckpt-50") >= 2
    ), out
    assert json.load(open(os.path.join(directory, "eval.json")))["step"] == 50
    after = _snapshot(directory)
    # eval.json is written by this evaluation (or rewritten: another test may have evaluated the
    # shared trained run before it was copied); nothing else but the rebuilt model changes.
    changed = sorted(k for k in before if after.get(k) != before[k] and k != "eval.json")
    assert changed == ["ema_model.keras"], changed
    assert set(after) - set(before) <= {"eval.json"} and "eval.json" in after, sorted(after)
    assert _export_and_evaluate_errors(directory, tmp_path, digits_dir) == [None, None]
    assert os.path.getsize(ema) > 0.5 * len(good)


def test_resume_falls_back_to_the_newest_complete_checkpoint(
    run_copy, tmp_path, capsys, digits_dir
):
    """ckpt-60's data shard cut short, the state file garbage, metrics.csv cut inside its last
    row, summary.json and labels.txt garbage (export names the latter), ema_model.keras cut:
    the rerun resumes from ckpt-50 with a warning naming ckpt-60, rebuilds ema_model.keras,
    keeps metrics.csv's bytes aside, trains epoch 3 again and leaves a whole run directory."""
    config, _, directory = run_copy
    checkpoints = os.path.join(directory, "checkpoints")
    _cut(os.path.join(checkpoints, "ckpt-60.data-00000-of-00001"))
    _garbage(os.path.join(checkpoints, "checkpoint"))
    metrics = os.path.join(directory, "metrics.csv")
    original = _cut(metrics, 0.9)
    cut_bytes = open(metrics, "rb").read()
    _garbage(os.path.join(directory, "summary.json"))
    labels = os.path.join(directory, "labels.txt")
    labels_text = open(labels).read()
    _garbage(labels)
    _cut(os.path.join(directory, "ema_model.keras"), 0.5)
    for message in _export_and_evaluate_errors(directory, tmp_path, digits_dir):
        assert message.startswith(f"{labels} is not UTF-8 text"), message

    status, out, err = _train_command(config, capsys)
    assert status == 0, out + err
    assert (
        f"Warning: checkpoint {os.path.join(checkpoints, 'ckpt-60')} (" in out
        and "resuming from the newest complete one instead" in out
    ), out
    assert "Resuming from step 50" in out
    assert f"Rebuilt {os.path.join(directory, 'ema_model.keras')} (" in out, out
    # metrics.csv: the damaged bytes kept beside it, the whole rows kept, epoch 3 written again.
    aside = [n for n in os.listdir(directory) if n.startswith("metrics.csv.damaged-")]
    assert len(aside) == 1 and open(os.path.join(directory, aside[0]), "rb").read() == cut_bytes
    rows = fileio.read_text(metrics).splitlines()
    assert rows[0] == original.decode().splitlines()[0]
    assert [r.split(",")[:2] for r in rows[1:]] == [["1", "20"], ["2", "40"], ["3", "60"]]
    assert rows[1:3] == original.decode().splitlines()[1:3]
    # The checkpoint of step 60 and the state file are whole again; summary.json rewritten.
    import tensorflow as tf

    assert tf.train.latest_checkpoint(checkpoints).endswith("ckpt-60")
    assert (
        len(
            tf.train.load_checkpoint(
                os.path.join(checkpoints, "ckpt-60")
            ).get_variable_to_shape_map()
        )
        > 50
    )
    summary = json.load(open(os.path.join(directory, "summary.json")))
    assert summary["steps"] == 60 and summary["resumed_from"].endswith("ckpt-50")
    assert open(labels).read() == labels_text  # written again from the dataset at the start
    assert _export_and_evaluate_errors(directory, tmp_path, digits_dir) == [None, None]


def test_metrics_rows_are_read_whole_or_left_out(trained_run):
    """metrics.csv's reader (training's own, ``observe.parse_rows``) on the session run's file:
    whole, cut anywhere, garbage, text of another kind."""
    from inception.train.observe import parse_rows

    config = trained_run[0]
    data = open(os.path.join(config.run.model_dir, "metrics.csv"), "rb").read()
    rows, whole = parse_rows(data)
    assert whole and [r["epoch"] for r in rows] == ["1", "2", "3"]
    lines = data.split(b"\r\n")
    for cut in range(len(lines[0]) + 3, len(data) - 1):
        if data[:cut].endswith(b"\r\n"):
            continue  # a file of fewer whole rows
        rows, whole = parse_rows(data[:cut])
        assert not whole and len(rows) == data[:cut].count(b"\r\n") - 1, cut
        assert all(r["epoch"] and None not in r.values() for r in rows)
    assert parse_rows(b"\x00\xff\x81 garbage") == ([], False)
    assert parse_rows(b"hello\nworld\n") == ([], False)
    assert parse_rows(b"") == ([], True)
