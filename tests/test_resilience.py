"""Training survives preemption, a lost worker and cloud storage (issue 20): SIGTERM saves and
stops every worker at the same step and the rerun resumes there (bit-exact with
--deterministic, as after kill -9); a lost worker stops the others with a short message; the run
directory may be on a file system that is not a local path; fractional --epochs work through a
run's whole life.

Subprocesses run ``tests/faulty_main.py --test_no_grappler`` (main.py with Grappler off, which
saves ~15 s of each process's first step here; every run compared shares it). Loopback only;
every wait is bounded.
"""

import json
import os
import signal
import time

import numpy as np
import pytest

from training_runs import (
    SMALL,
    checkpoint_steps,
    fingerprints,
    finish,
    free_ports,
    model_weights,
    no_grappler,
    run,
    small_config,
    start,
)

FAST = ["--test_no_grappler"]


@pytest.fixture(scope="module")
def data_dir(digits_dir):
    return digits_dir


def _wait_for(condition, proc, timeout=300):
    """Polls ``condition()`` while ``proc`` runs; True once it holds."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _stopped_line(text):
    return [line for line in text.splitlines() if "stopped after step" in line]


# ------------------------------------------------------------------------- one device --------
def test_sigterm_and_kill_9_then_resume_equal_an_uninterrupted_run(tmp_path, data_dir):
    """SIGTERM mid-epoch: a checkpoint at the next step, one line saying where and how to
    resume, exit status 75. The rerun resumes there; kill -9 of that rerun after a mid-epoch
    checkpoint, and a third run finishes: with --deterministic the weights equal an
    uninterrupted run's, bit for bit."""
    common = (
        SMALL
        + FAST
        + [
            f"--data_dir={data_dir}",
            "--mode=train",
            "--batch_size=8",
            "--steps_per_epoch=4",
            "--epochs=3",
            "--keep_checkpoints=10",
            "--deterministic",
            "--seed=7",
        ]
    )
    ref_dir, dir_ = tmp_path / "uninterrupted", tmp_path / "interrupted"
    ref = start(common + [f"--model_dir={ref_dir}"], tmp_path / "ref.log")
    # Checkpoints only at epoch ends (every 100 steps never comes): any other is the signal's.
    victim = start(
        common + [f"--model_dir={dir_}", "--checkpoint_every_steps=100"], tmp_path / "victim.log"
    )
    assert _wait_for(lambda: 4 in checkpoint_steps(dir_), victim), "no checkpoint of epoch 1"
    victim.send_signal(signal.SIGTERM)
    rc, out = finish(victim, tmp_path / "victim.log")
    assert rc == 75, out[-3000:]
    stopped = max(checkpoint_steps(dir_))
    assert 4 < stopped < 8 and checkpoint_steps(dir_) == [4, stopped], out[-3000:]
    line = _stopped_line(out)
    assert len(line) == 1 and f"stopped after step {stopped} (epoch 2," in line[0], out[-3000:]
    assert "SIGTERM received" in line[0] and f"ckpt-{stopped}" in line[0]
    assert "rerun the same command to resume" in line[0] and "Traceback" not in out
    # The rerun resumes there; kill -9 once it wrote a checkpoint inside epoch 3 (steps 9-11).
    again = start(
        common + [f"--model_dir={dir_}", "--checkpoint_every_steps=1"], tmp_path / "again.log"
    )
    assert _wait_for(lambda: any(9 <= s < 12 for s in checkpoint_steps(dir_)), again)
    again.send_signal(signal.SIGKILL)
    again.wait()
    assert f"Resuming from step {stopped}" in open(tmp_path / "again.log").read()
    killed_at = max(checkpoint_steps(dir_))
    rc, out = run(common + [f"--model_dir={dir_}", "--verbose"], tmp_path / "resume.log")
    assert rc == 0, out[-3000:]
    assert f"Resuming from step {killed_at}" in out
    assert "skipping the" in out or killed_at % 4 == 0
    rc_ref, out_ref = finish(ref, tmp_path / "ref.log")
    assert rc_ref == 0, out_ref[-3000:]
    resumed = json.load(open(dir_ / "summary.json"))
    assert resumed["steps"] == 12 and resumed["resumed_from"].endswith(f"ckpt-{killed_at}")
    assert fingerprints(out) == fingerprints(out_ref) and len(fingerprints(out)) == 1
    a, b = model_weights(ref_dir), model_weights(dir_)
    assert a.keys() == b.keys() and len(a) > 50
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_signals_request_a_stop_and_a_second_ctrl_c_quits_at_once():
    from inception.train import errors
    from inception.train.signals import StopSignals

    before = signal.getsignal(signal.SIGINT)
    with StopSignals() as signals:
        assert not signals.requested()
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # a second SIGTERM changes nothing
        assert signals.requested() and signals.describe() == "SIGTERM received"
        assert signal.getsignal(signal.SIGINT) is not signal.SIG_DFL
        os.kill(os.getpid(), signal.SIGINT)
        # The first Ctrl-C gave SIGINT back to the system: a second one ends the process at once.
        assert signal.getsignal(signal.SIGINT) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is before
    # main.py's exit statuses: each stop its own (1 is also absl's for a bad flag).
    assert errors.EXIT_ERROR == 1
    assert len({errors.EXIT_ERROR, errors.EXIT_INTERRUPTED, errors.EXIT_WORKER_LOST, 0}) == 4


# ------------------------------------------------------------------------- two workers -------
def _workers(args, tmp_path, name):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        procs.append(start(args, tmp_path / f"{name}{i}.log", {"TF_CONFIG": tf_config}))
    return procs


def test_two_workers_sigterm_kill_9_and_restart(tmp_path, data_dir):
    """Two loopback workers. SIGTERM to worker 1: both save the same step and stop (75). The
    restart resumes; kill -9 of worker 1 once worker 0 resumed: worker 0 stops within 60 s with a
    short message (69). The restart finishes: both workers end with the same weights, the chief
    wrote everything, and each worker evaluated its half of the split."""
    d = tmp_path / "mw"
    args = (
        SMALL
        + FAST
        + [
            f"--data_dir={data_dir}",
            f"--model_dir={d}",
            "--mode=train_and_eval",
            "--strategy=multi_worker_mirrored",
            "--batch_size=8",
            "--steps_per_epoch=4",
            "--epochs=2",
            "--checkpoint_every_steps=2",
            "--seed=5",
            "--eval_batch_size=64",
        ]
    )
    procs = _workers(args, tmp_path, "term")
    assert _wait_for(lambda: 2 in checkpoint_steps(d), procs[0]), "no first checkpoint"
    procs[1].send_signal(signal.SIGTERM)
    outs = [finish(p, tmp_path / f"term{i}.log", timeout=120) for i, p in enumerate(procs)]
    assert [rc for rc, _ in outs] == [75, 75], [o[-2000:] for _, o in outs]
    lines = [_stopped_line(out) for _, out in outs]
    stopped = max(checkpoint_steps(d))
    for line in lines:
        assert len(line) == 1 and f"stopped after step {stopped} " in line[0], lines
    assert "SIGTERM received" in lines[1][0] and "another worker" in lines[0][0]

    procs = _workers(args, tmp_path, "kill")
    resumed = f"Resuming from step {stopped}"
    assert _wait_for(lambda: resumed in open(tmp_path / "kill0.log").read(), procs[0])
    procs[1].send_signal(signal.SIGKILL)
    killed = time.time()
    rc, out = finish(procs[0], tmp_path / "kill0.log", timeout=90)
    waited = time.time() - killed
    procs[1].wait()
    last = max(checkpoint_steps(d))
    assert rc == 69 and waited < 60, (rc, waited, out[-3000:])
    print(f"worker 0 stopped {waited:.1f} s after kill -9 of worker 1")
    assert (
        f"worker 1 stopped answering; the last complete checkpoint is "
        f"{os.path.join(d, 'checkpoints', f'ckpt-{last}')} (step {last}). Restart every "
        "worker with the same command"
    ) in out, out[-3000:]
    assert "Traceback" not in out

    outs = [
        finish(p, tmp_path / f"end{i}.log")
        for i, p in enumerate(_workers(args + ["--verbose"], tmp_path, "end"))
    ]
    for rc, out in outs:
        assert rc == 0, out[-3000:]
        assert f"Resuming from step {last}" in out
    prints = [fingerprints(out) for _, out in outs]
    assert len(prints[0]) == 1 and prints[0] == prints[1], prints
    assert "[worker_0]" in outs[0][1] and "[worker_1]" in outs[1][1]
    assert "2 replica(s)" in outs[0][1]
    # The chief (worker 0) wrote the checkpoints and the summary; the other worker nothing there.
    assert max(checkpoint_steps(d)) == 8
    assert sorted(os.listdir(d)) == [
        "checkpoints",
        "ema_model.keras",
        "labels.txt",
        "metrics.csv",
        "run_config.json",
        "summary.json",
        "tensorboard",
    ]
    summary = json.load(open(d / "summary.json"))
    assert summary["num_replicas"] == 2 and summary["steps"] == 8
    # Each worker evaluated its half of the split, padded to the same number of full batches.
    assert summary["num_eval"] == 359
    assert summary["weights_fingerprint"] == prints[0][0]


# ------------------------------------------------------ another file system, fractional epochs -
def test_run_directory_on_ram_fs_with_fractional_epochs(tmp_path, data_dir, capsys, monkeypatch):
    """The run directory on TensorFlow's in-memory ``ram://`` file system (it lives in this
    process; no GCS emulator can be reached by TensorFlow's gs:// client, BUILD_NOTES
    "Training"): --epochs=1.5, then 2 (a resume mid-epoch after a fractional end), then 3 (a
    resume at an epoch boundary); export.py and evaluate.py read the run from there. Nothing is
    written to the working directory."""
    import tensorflow as tf

    from inception import fileio, train
    from inception.evaluation import job as evaluation_job
    from inception.evaluation.config import EvaluateConfig
    from inception.export import job as export_job
    from inception.export.config import ExportConfig

    monkeypatch.chdir(tmp_path)
    model_dir = "ram://resilience/run"
    config = small_config(
        data_dir,
        model_dir,
        mode="train",
        batch_size=8,
        steps_per_epoch=4,
        learning_rate=0.02,
        checkpoint_every_steps=100,
        log_every_steps=1,
        seed=2,
    )
    strategy = train.setup(config)
    capsys.readouterr()
    with no_grappler():
        summaries = {
            epochs: train.run(config.replace(epochs=epochs), strategy) for epochs in (1.5, 2, 3)
        }
    out = capsys.readouterr().out
    assert "Resuming from step 6" in out and "Resuming from step 8" in out
    assert [s["steps"] for s in summaries.values()] == [6, 8, 12]
    assert [s["epochs"] for s in summaries.values()] == [1.5, 2.0, 3.0]
    assert summaries[3]["resumed_from"] == f"{model_dir}/checkpoints/ckpt-8"
    assert os.listdir(tmp_path) == [], "nothing may be written to the working directory"
    # Everything the run writes is there.
    names = set(fileio.listdir(model_dir))
    assert {
        "checkpoints",
        "tensorboard",
        "metrics.csv",
        "run_config.json",
        "labels.txt",
        "ema_model.keras",
        "summary.json",
    } <= names, names
    assert fileio.read_json(f"{model_dir}/summary.json")["steps"] == 12
    rows = fileio.read_text(f"{model_dir}/metrics.csv").splitlines()
    assert [r.split(",")[:2] for r in rows[1:]] == [
        ["1", "4"],
        ["1.5", "6"],
        ["2", "8"],
        ["3", "12"],
    ], rows
    assert tf.train.latest_checkpoint(f"{model_dir}/checkpoints").endswith("ckpt-12")
    train_logs = f"{model_dir}/tensorboard/train"
    events = [f"{train_logs}/{name}" for name in fileio.listdir(train_logs)]
    steps = {
        e.step
        for path in events
        for e in tf.compat.v1.train.summary_iterator(path)
        if any(v.tag == "loss" for v in e.summary.value)
    }
    assert steps == set(range(1, 13)), steps
    # --mode=eval, export.py --model_dir and evaluate.py --models read the run from there.
    with no_grappler():
        evaluated = train.run(config.replace(mode="eval", epochs=3), strategy)
        assert evaluated["step"] == 12 and fileio.exists(f"{model_dir}/eval.json")
        report = export_job.run(
            ExportConfig(
                export_dir=str(tmp_path / "exports"),
                model_dir=model_dir,
                formats=("saved_model",),
                eval_images=8,
                latency_repeats=1,
                data_dir=data_dir,
            ),
            log=lambda _: None,
        )
        assert report and os.path.isdir(tmp_path / "exports")
        result = evaluation_job.run(
            EvaluateConfig(
                models=(model_dir,),
                protocols=(1,),
                dataset="sklearn_digits",
                data_dir=data_dir,
                output=str(tmp_path / "eval.json"),
                progress=False,
                num_cpu_devices=0,
            )
        )
    # The 1-crop protocol is the training evaluation of the same EMA weights.
    assert result["members"][0]["path"] == model_dir and result["num_images"] == 359
    one_crop = [r for r in result["results"] if r["crops"] == 1]
    assert len(one_crop) == 1 and one_crop[0]["top1_error"] == pytest.approx(
        evaluated["val_top1_error"], abs=1.5 / 359
    ), (one_crop, evaluated)
