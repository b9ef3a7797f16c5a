"""Training: learns, resumes after kill -9 (bit-exact with --deterministic), distributes, stops on
NaN, validates flags, and --mode=eval reproduces summary.json.

Small on purpose (2 shared CPU cores): reduced-width networks, 75x75 images, a few dozen steps.
One in-process run is shared by several tests; subprocesses only where a test needs a process of
its own (kill -9, several workers, logical devices, process-global determinism).
"""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(REPO, "main.py")
FAULTY_MAIN = os.path.join(REPO, "tests", "faulty_main.py")  # main.py plus injected faults

# A small but real network: Inception-ResNet-v1 at a tenth of the width, no auxiliary head.
SMALL = ["--dataset=sklearn_digits", "--model=inception_resnet_v1", "--width_multiplier=0.1",
         "--image_size=75", "--noaux_logits", "--bn_momentum=0.9", "--ema_decay=0.9",
         "--progress=false", "--learning_rate=0.02"]


@pytest.fixture(scope="module")
def data_dir(digits_dir):
    return digits_dir


def _env(extra=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow",
               PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    env.update(extra or {})
    return env


def _start(args, log_path, env=None, program=MAIN):
    log = open(log_path, "w")
    return subprocess.Popen([sys.executable, program] + list(args), stdout=log,
                            stderr=subprocess.STDOUT, env=_env(env), cwd=REPO)


def _finish(proc, log_path, timeout=400):
    rc = proc.wait(timeout=timeout)
    with open(log_path) as f:
        return rc, f.read()


def _run(args, log_path, env=None, timeout=400, program=MAIN):
    return _finish(_start(args, log_path, env, program), log_path, timeout)


def _fingerprints(text):
    return [line.rsplit(":", 1)[1].strip() for line in text.splitlines()
            if "] final weights fingerprint:" in line]


def _checkpoint_steps(model_dir):
    import tensorflow as tf

    state = tf.train.get_checkpoint_state(os.path.join(model_dir, "checkpoints"))
    if state is None:
        return []
    return [int(p.rsplit("-", 1)[1]) for p in state.all_model_checkpoint_paths]


def _model_weights(model_dir, step=None):
    """Model weights and BN statistics of a checkpoint (the newest by default), by key."""
    import tensorflow as tf

    directory = os.path.join(model_dir, "checkpoints")
    path = tf.train.latest_checkpoint(directory) if step is None else f"{directory}/ckpt-{step}"
    reader = tf.train.load_checkpoint(path)
    # Trainable weights are reached first through the optimizer, BN statistics through the model.
    keys = [k for k in reader.get_variable_to_shape_map() if k.endswith("VARIABLE_VALUE")
            and k.startswith(("model/", "optimizer/_trainable_variables/"))
            and "seed_generator" not in k]
    return {k: reader.get_tensor(k) for k in keys}


# ------------------------------------------------------------------------------ flags --------
BAD_FLAGS = [
    (["--image_size=64"], "--image_size must be at least 75"),
    (["--batch_size=0"], "--batch_size must be a positive integer"),
    (["--model=inception_v5"], "value should be one of"),
    (["--model=inception_v4", "--variant=release"], "--variant must fit --model"),
    (["--strategy=tpu"], "--strategy=tpu needs --tpu"),
    (["--label_smoothing=1.5"], "--label_smoothing must be in [0.0, 1.0)"),
    (["--residual_scales=0.1,0.2"], "--residual_scales must be three positive numbers"),
    (["--area_range=0.5,0.1"], "--area_range must be 'lo,hi'"),
    (["--no_such_flag=1"], "Unknown command line flag 'no_such_flag'"),
    (["--ema_decay=1.0"], "--ema_decay must be in [0.0, 1.0)"),
]


@pytest.mark.parametrize("args,message", BAD_FLAGS, ids=[a[0] for a, _ in BAD_FLAGS])
def test_bad_flag_fails_before_any_work(args, message, tmp_path):
    proc = subprocess.run([sys.executable, MAIN, f"--model_dir={tmp_path}/run"] + args,
                          capture_output=True, text=True, env=_env(), cwd=REPO, timeout=60)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr[-2000:]
    assert not os.path.exists(tmp_path / "run"), "a bad flag must fail before creating the run"
    assert "tensorflow" not in proc.stderr.lower() or "Traceback" not in proc.stderr


def test_runtime_checks_give_clear_messages(tmp_path, data_dir):
    # ImageNet without its archives: says which files go where.
    rc, out = _run([f"--model_dir={tmp_path}/a", "--dataset=imagenet2012",
                    f"--data_dir={tmp_path}/empty_tfds"], tmp_path / "a.log")
    assert rc == 1 and "ILSVRC2012_img_train.tar" in out and "--manual_dir" in out, out[-3000:]
    # A global batch that does not divide by the replicas (two logical CPU devices).
    rc, out = _run([f"--model_dir={tmp_path}/b", "--dataset=sklearn_digits",
                    f"--data_dir={data_dir}", "--strategy=mirrored", "--num_cpu_devices=2",
                    "--batch_size=7"], tmp_path / "b.log")
    assert rc == 1 and "--batch_size=7 is the GLOBAL batch" in out and "2 replicas" in out, out[-3000:]
    # Evaluating a directory that holds no run.
    rc, out = _run([f"--model_dir={tmp_path}/c", "--dataset=sklearn_digits",
                    f"--data_dir={data_dir}", "--mode=eval"], tmp_path / "c.log")
    assert rc == 1 and "--mode=eval needs a trained run" in out, out[-3000:]


def test_flagfile_and_command_line_override(tmp_path):
    from absl import flags as absl_flags

    from inception_cli import train_flags

    cfg = tmp_path / "x.cfg"
    cfg.write_text("--batch_size=64\n--image_size=99\n")
    values = absl_flags.FlagValues()
    for flag in train_flags.FLAGS.get_flags_for_module(train_flags.__name__):
        values[flag.name] = flag
    values(["prog", f"--flagfile={cfg}", "--image_size=80"])
    try:
        assert values.batch_size == 64 and values.image_size == 80
    finally:
        values.unparse_flags()


# ------------------------------------------------------------------------ recipe units -------
def test_learning_rate_schedule_and_scaling():
    from inception.train import state as train_state

    assert train_state.scaled_learning_rate(0.045, 256, 32, "linear") == pytest.approx(0.36)
    assert train_state.scaled_learning_rate(0.045, 128, 32, "sqrt") == pytest.approx(0.09)
    assert train_state.scaled_learning_rate(0.045, 128, 32, "none") == pytest.approx(0.045)
    sched = train_state.WarmupStaircaseDecay(0.36, decay_steps=10, decay_rate=0.94, warmup_steps=5)
    values = [float(sched(s)) for s in (0, 4, 5, 9, 10, 25)]
    assert values[0] == pytest.approx(0.36 / 5) and values[1] == pytest.approx(0.36)
    assert values[2] == pytest.approx(0.36) and values[3] == pytest.approx(0.36)
    assert values[4] == pytest.approx(0.36 * 0.94) and values[5] == pytest.approx(0.36 * 0.94**2)


def test_weight_average_follows_the_released_decay_rule():
    import keras
    import tensorflow as tf

    from inception.train import state as train_state

    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        var = keras.Variable(np.zeros(3, "float32"))
        ema = train_state.WeightAverage([var], decay=0.9999)
    expected = np.zeros(3)
    for step in (1, 2, 3):
        var.assign(np.full(3, float(step), "float32"))
        tf.function(lambda s: ema.update(strategy, s))(tf.constant(step))
        decay = min(0.9999, (1 + step) / (10 + step))
        expected = decay * expected + (1 - decay) * step
    np.testing.assert_allclose(ema.averages[0].numpy(), expected, rtol=1e-6)


# --------------------------------------------------------------- one shared trained run ------
@pytest.fixture(scope="module")
def trained(trained_run):
    """The session's shared in-process run (tests/conftest.py): IRv1 x0.1 with the aux head,
    3 epochs of 20 steps."""
    return trained_run


def test_short_run_learns(trained):
    _, _, summary = trained
    # Ten classes: chance is 0.1 top-1.
    assert summary["val_top1"] > 0.5, summary
    assert summary["val_top1_error"] == pytest.approx(1 - summary["val_top1"])
    assert summary["val_top5_error"] <= summary["val_top3_error"] <= summary["val_top1_error"]
    assert summary["steps"] == 60 and summary["epochs"] == pytest.approx(3.0)
    assert summary["num_eval"] == 359  # every validation image (one device)
    assert summary["train_images_per_sec"] > 0
    assert 0.0 <= summary["died_fraction"] < 1.0


def test_run_directory_is_complete(trained):
    import keras
    import tensorflow as tf

    config, _, summary = trained
    d = config.run.model_dir
    run_config = json.load(open(os.path.join(d, "run_config.json")))
    assert run_config["model"] == "inception_resnet_v1" and run_config["image_size"] == 75
    assert run_config["num_classes"] == 10 and run_config["build_options"]["aux_logits"] is False
    assert open(os.path.join(d, "labels.txt")).read().split() == [str(i) for i in range(10)]
    with open(os.path.join(d, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["val_top1"]) == pytest.approx(summary["val_top1"])
    assert all(0 <= float(r["died_fraction"]) <= 1 for r in rows)
    # Checkpoints every 25 steps and each epoch, the last 2 kept.
    assert _checkpoint_steps(d) == [50, 60]
    # TensorBoard: train and validation scalars.
    tags = set()
    for sub in ("train", "validation"):
        for name in os.listdir(os.path.join(d, "tensorboard", sub)):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(d, "tensorboard", sub, name)):
                tags.update(f"{sub}/{v.tag}" for v in event.summary.value)
    for tag in ("train/loss", "train/learning_rate", "train/top1_accuracy", "train/top5_accuracy",
                "train/images_per_sec", "train/died_fraction", "validation/top1_accuracy",
                "validation/top3_accuracy", "validation/top5_accuracy"):
        assert tag in tags, sorted(tags)
    # The exported model: one softmax output, EMA weights, loads in safe mode.
    model = keras.saving.load_model(os.path.join(d, "ema_model.keras"), safe_mode=True)
    probs = model.predict(np.zeros((2, 75, 75, 3), "float32"), verbose=0)
    assert probs.shape == (2, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_eval_mode_reproduces_summary(trained):
    from inception import train

    config, strategy, summary = trained
    result = train.run(config.replace(mode="eval"), strategy)
    for k in (1, 3, 5):
        assert result[f"val_top{k}_error"] == pytest.approx(summary[f"val_top{k}_error"], abs=1e-9)
    assert result["num_eval"] == summary["num_eval"] and result["step"] == summary["steps"]


def test_exported_model_matches_evaluation(trained, data_dir):
    """ema_model.keras, run on the validation pipeline, gives summary.json's top-1."""
    import keras

    from inception import data

    config, _, summary = trained
    model = keras.saving.load_model(os.path.join(config.run.model_dir, "ema_model.keras"))
    pipe = data.InputPipeline("sklearn_digits", split="eval", image_size=75, global_batch_size=64,
                              is_training=False, data_dir=data_dir)
    correct = total = 0
    for images, labels in pipe.input_fn(None):
        correct += int(np.sum(np.argmax(model(images, training=False), -1) == labels.numpy()))
        total += int(labels.shape[0])
    assert correct / total == pytest.approx(summary["val_top1"], abs=1.5 / total)


def test_a_different_run_in_the_same_model_dir_is_refused(trained):
    from inception import train

    config, strategy, _ = trained
    other = config.replace(width_multiplier=0.2)
    with pytest.raises(train.TrainingError, match="holds a different run"):
        train.run(other, strategy)
    # Its checkpoints hold averaged BatchNorm statistics: evaluating without them is refused.
    other = config.replace(mode="eval", ema_bn_statistics=False)
    with pytest.raises(train.TrainingError, match="--noema_bn_statistics"):
        train.run(other, strategy)


def test_noema_bn_statistics_evaluates_with_the_raw_statistics(trained, tmp_path):
    """The default averages the BN statistics (tests/test_distributed.py checks the values); the
    flag keeps them out of the EMA and evaluates/exports the raw ones."""
    from inception import train

    config, strategy, _ = trained
    raw = config.replace(model_dir=str(tmp_path / "raw"), ema_bn_statistics=False)
    task = train.Trainer(raw, strategy, train.check_runtime(raw, strategy)).task
    statistics = {id(v) for v in task.moving_statistics}
    assert len(statistics) > 100
    assert len(task.ema.averages) == len(task.model.trainable_variables)
    pairs = [(s, t) for s, t in zip(task.eval_sources, task.eval_targets)
             if not t.trainable]  # the inference model's BN statistics (no aux head)
    assert len(pairs) > 100 and all(id(s) in statistics for s, _ in pairs)


# --------------------------------------------------------------------- subprocess runs -------
def test_kill_9_then_resume_equals_uninterrupted_run(tmp_path, data_dir):
    common = SMALL + [f"--data_dir={data_dir}", "--mode=train", "--batch_size=8",
                      "--steps_per_epoch=4", "--epochs=3", "--checkpoint_every_steps=1",
                      "--keep_checkpoints=10", "--deterministic", "--seed=7"]
    ref_dir, dir_ = tmp_path / "uninterrupted", tmp_path / "interrupted"
    ref = _start(common + [f"--model_dir={ref_dir}"], tmp_path / "ref.log")
    victim = _start(common + [f"--model_dir={dir_}"], tmp_path / "victim.log")
    # Kill -9 as soon as a checkpoint inside the second epoch exists (mid-epoch: steps 5..7).
    deadline = time.time() + 400
    while time.time() < deadline and victim.poll() is None:
        if any(5 <= s < 8 for s in _checkpoint_steps(dir_)):
            break
        time.sleep(0.05)
    assert victim.poll() is None, "the run ended before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = max(_checkpoint_steps(dir_))
    assert killed_at < 12
    rc, out = _run(common + [f"--model_dir={dir_}", "--verbose"], tmp_path / "resume.log")
    assert rc == 0, out[-3000:]
    assert f"Resuming from step {killed_at}" in out
    assert "skipping the" in out or killed_at % 4 == 0
    rc_ref, out_ref = _finish(ref, tmp_path / "ref.log")
    assert rc_ref == 0, out_ref[-3000:]
    resumed = json.load(open(dir_ / "summary.json"))
    assert resumed["steps"] == 12 and resumed["resumed_from"].endswith(f"ckpt-{killed_at}")
    # --deterministic: the resumed run ends bit-identical to the uninterrupted one.
    assert _fingerprints(out) == _fingerprints(out_ref) and len(_fingerprints(out)) == 1
    a, b = _model_weights(ref_dir), _model_weights(dir_)
    assert a.keys() == b.keys() and len(a) > 50
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_nan_loss_stops_cleanly_keeping_the_last_good_checkpoint(tmp_path, data_dir):
    d = tmp_path / "nan"
    rc, out = _run(SMALL + [f"--data_dir={data_dir}", f"--model_dir={d}", "--mode=train",
                            "--batch_size=8", "--steps_per_epoch=20", "--epochs=1",
                            "--checkpoint_every_steps=2", "--inject_nan_at_step=4"],
                   tmp_path / "nan.log", program=FAULTY_MAIN)
    assert rc == 1, out[-3000:]
    assert "training stopped at step 5: the loss is NaN" in out
    assert "last good checkpoint" in out and "ckpt-4" in out
    assert _checkpoint_steps(d) == [2, 4]
    assert not os.path.exists(d / "summary.json")


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_multi_worker_mirrored_two_processes(tmp_path, data_dir):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    d = tmp_path / "mw"
    args = SMALL + [f"--data_dir={data_dir}", f"--model_dir={d}", "--mode=train_and_eval",
                    "--strategy=multi_worker_mirrored", "--batch_size=8", "--steps_per_epoch=4",
                    "--epochs=1", "--checkpoint_every_steps=2", "--seed=5", "--verbose",
                    "--eval_batch_size=64"]
    procs = []
    for i in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        procs.append(_start(args, tmp_path / f"w{i}.log", env={"TF_CONFIG": tf_config}))
    outs = [_finish(p, tmp_path / f"w{i}.log") for i, p in enumerate(procs)]
    for rc, out in outs:
        assert rc == 0, out[-3000:]
    prints = [_fingerprints(out) for _, out in outs]
    assert len(prints[0]) == 1 and prints[0] == prints[1], prints
    assert "[worker_0]" in outs[0][1] and "[worker_1]" in outs[1][1]
    assert "2 replica(s)" in outs[0][1]
    # The chief (worker 0) wrote the checkpoints and the summary; the other worker nothing there.
    assert _checkpoint_steps(d) == [2, 4]
    summary = json.load(open(d / "summary.json"))
    assert summary["num_replicas"] == 2 and summary["steps"] == 4
    # Each worker evaluated its half of the split, padded to the same number of full batches.
    assert summary["num_eval"] == 359
    assert summary["weights_fingerprint"] == prints[0][0]


def test_mirrored_sync_batch_norm_matches_one_device(tmp_path, data_dir):
    """Two replicas x 8 with synchronized BatchNorm == one device x 16 up to float round-off,
    over both steps. Measured (BUILD_NOTES "Multi-replica exactness"): after step 1 the weights
    differ by 0.9% of one update and the BN statistics by 1e-4 relative (Keras' synchronized
    moments are E[x^2]-E[x]^2); training amplifies any round-off (~15% of an update after step 2,
    ~100% after step 5; one device with oneDNN off vs on grows alike from a smaller start). A
    doubled or missing gradient reduction would make an update differ by ~100%; per-replica BN
    statistics would move the moving variances by far more than the tolerance."""
    common = SMALL + [f"--data_dir={data_dir}", "--mode=train", "--batch_size=16",
                      "--steps_per_epoch=2", "--epochs=1", "--dropout_rate=0", "--seed=11",
                      "--deterministic", "--sync_batch_norm", "--checkpoint_every_steps=1"]
    two = _start(common + [f"--model_dir={tmp_path}/two", "--strategy=mirrored",
                           "--num_cpu_devices=2", "--verbose"], tmp_path / "two.log")
    one = _start(common + [f"--model_dir={tmp_path}/one", "--strategy=one_device"],
                 tmp_path / "one.log")
    rc2, out2 = _finish(two, tmp_path / "two.log")
    rc1, out1 = _finish(one, tmp_path / "one.log")
    assert rc2 == 0, out2[-3000:]
    assert rc1 == 0, out1[-3000:]
    assert "strategy mirrored with 2 replica(s)" in out2
    one_run = [None] + [_model_weights(tmp_path / "one", s) for s in (1, 2)]
    two_run = [None] + [_model_weights(tmp_path / "two", s) for s in (1, 2)]
    assert one_run[1].keys() == two_run[1].keys() and len(one_run[1]) > 400
    trainable = sorted(k for k in one_run[1] if k.startswith("optimizer/"))
    flat = lambda d: np.concatenate([d[k].ravel() for k in trainable])  # noqa: E731
    update = np.linalg.norm(flat(one_run[2]) - flat(one_run[1]))  # the size of one update
    assert update > 0
    # Step: (weights tolerance as a fraction of an update, BN statistics relative tolerance).
    for step, (weights_tol, stats_tol) in {1: (0.02, 1e-3), 2: (0.4, 1e-2)}.items():
        mismatch = np.linalg.norm(flat(two_run[step]) - flat(one_run[step]))
        assert mismatch < weights_tol * update, (step, mismatch, update)
        for k in one_run[step]:
            if k.startswith("model/"):  # BatchNorm moving statistics
                a, b = one_run[step][k], two_run[step][k]
                scale = max(float(np.abs(a).max()), 1e-3)
                assert float(np.abs(a - b).max()) <= stats_tol * scale, (step, k)
    s2 = json.load(open(tmp_path / "two" / "summary.json"))
    assert s2["steps"] == 2 and s2["num_replicas"] == 2
