"""`python -m inception.experiments` at the test suite's tiny scale: every run, figure and the
report are produced, the report's numbers are the run directories' numbers, and a rerun skips
the finished runs."""

import csv
import itertools
import json
import os
import subprocess
import sys

import pytest

# About 450 s on 2 cores (TensorFlow traces three networks once per run): `make test-slow`.
pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIGURES = (
    "claim1_error_vs_epoch.png",
    "claim1_error_vs_time.png",
    "claim2_died.png",
    "claim3_cost_vs_speed.png",
)


def _run(args, tmp):
    env = dict(
        os.environ,
        TF_CPP_MIN_LOG_LEVEL="2",
        KERAS_BACKEND="tensorflow",
        PYTHONPATH=REPO,
        CUDA_VISIBLE_DEVICES="",
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "inception.experiments",
            "--scale=tiny",
            f"--runs_dir={tmp}/runs",
            f"--out_dir={tmp}/report",
            f"--data_dir={tmp}/data",
        ]
        + args,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("experiments")
    return tmp, _run([], tmp)


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_every_run_figure_and_the_report_exist(experiment):
    tmp, _out = experiment
    report = tmp / "report"
    for name in FIGURES:
        assert (report / name).stat().st_size > 10_000, name
    text = (report / "README.md").read_text()
    for name in FIGURES:
        assert f"]({name})" in text
    assert text.count("**Verdict: ") == 3
    for verdict in json.loads((report / "results.json").read_text())["verdicts"].values():
        assert verdict[0] in ("reproduced", "not reproduced at this scale", "inconclusive")
    runs = tmp / "runs" / "tiny" / "runs"
    assert sorted(os.listdir(runs / "speed")) == [
        "inception_resnet_v1-clip2.0-seed0",
        "inception_resnet_v1-seed0",
        "inception_resnet_v2-clip2.0-seed0",
        "inception_resnet_v2-seed0",
        "inception_v4-clip2.0-seed0",
        "inception_v4-seed0",
    ]
    for group in ("speed", "died"):
        for run in os.listdir(runs / group):
            assert (runs / group / run / "metrics.csv").exists()
            assert (runs / group / run / "tensorboard" / "train").is_dir()


def test_report_numbers_are_the_run_directories_numbers(experiment):
    tmp, _ = experiment
    runs = tmp / "runs" / "tiny" / "runs"
    text = (tmp / "report" / "README.md").read_text()
    names = {
        "inception_v4": "Inception-v4",
        "inception_resnet_v1": "Inception-ResNet-v1",
        "inception_resnet_v2": "Inception-ResNet-v2",
    }
    for (key, label), (setting, suffix) in itertools.product(
        names.items(), (("recipe", ""), ("clip2.0", "-clip2.0"))
    ):
        rows = _csv(runs / "speed" / f"{key}{suffix}-seed0" / "metrics.csv")
        errors = [1 - float(r["val_top1"]) for r in rows]
        top1, top5 = errors[-1], 1 - float(rows[-1]["val_top5"])
        # Each run stops at the first evaluation at or below the target (0.9 at this scale).
        reached = next((i + 1 for i, e in enumerate(errors) if e <= 0.9), None)
        assert reached is None or reached == len(rows)
        assert (
            f"| {label} | {setting} | 0 | {'not reached' if reached is None else reached} | "
            in text
        )
        assert f"| {min(errors):.4f} | {top1:.4f} | {top5:.4f} | {len(rows)} |" in text
    for run in os.listdir(runs / "died"):
        rows = _csv(runs / "died" / run / "metrics.csv")
        peak = max(float(r["died_fraction"]) for r in rows)
        line = next(row for row in text.splitlines() if row.startswith(f"| died/{run} |"))
        assert f"| {peak:.4f} | {float(rows[-1]['died_fraction']):.4f} |" in line
    cost = json.loads((tmp / "runs" / "tiny" / "cost_vs_speed.json").read_text())
    reported = json.loads((tmp / "report" / "results.json").read_text())["cost"]
    assert reported == cost
    ratio = cost["inception_v4"]["train_ratio"]
    assert f"training images/s {ratio:.3f}" in text


def test_rerun_skips_finished_runs_and_rewrites_the_same_numbers(experiment):
    tmp, _ = experiment
    before = json.loads((tmp / "report" / "results.json").read_text())
    out = _run([], tmp)
    assert out.count("earlier, skipped") == 8
    assert "training (" not in out and "measured earlier, reused" in out
    after = json.loads((tmp / "report" / "results.json").read_text())
    assert after["speed"] == before["speed"] and after["died"] == before["died"]


def test_bad_scale_is_refused_before_any_work(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "inception.experiments", "--scale=huge"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 2 and "invalid choice: 'huge'" in proc.stderr


def test_mixed_precision_runs_in_bfloat16_and_says_so(tmp_path):
    """--mixed_precision: every run trains in bfloat16 in its own directory, and the report
    names the precision."""
    out = _run(["--mixed_precision"], tmp_path)
    assert "report:" in out
    configs = list((tmp_path / "runs" / "tiny-bf16").rglob("run_config.json"))
    assert len(configs) == 8
    assert all(json.loads(p.read_text())["precision"] == "mixed_bfloat16" for p in configs)
    assert not (tmp_path / "runs" / "tiny").exists()
    report = (tmp_path / "report" / "README.md").read_text()
    assert "Training precision: `mixed_bfloat16`" in report and "--mixed_precision" in report
    assert (
        json.loads((tmp_path / "report" / "results.json").read_text())["precision"]
        == "mixed_bfloat16"
    )
