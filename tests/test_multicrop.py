"""Multi-crop and ensemble evaluation (evaluate.py, inception/evaluation/).

One short training run by ``main.py`` (the demo configuration, a few steps) is the run directory
whose 1-crop numbers must equal the training's own evaluation; a random-weight model of another
input size, with an extra background output, is the second ensemble member.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from inception import data, models
from inception.data import preprocessing
from inception.evaluation import crops, members, runner
from inception.export import data as export_data
from inception.train import devices

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow")
PROTOCOLS = (1, 10, 12, 144)
SMALL = 3  # images in the multi-crop checks


def _run(args, timeout=600):
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def data_dir(digits_dir):
    return digits_dir


@pytest.fixture(scope="module")
def run_dir(trained_run):
    """A real training run (tests/conftest.py: train_and_eval, 60 steps): ema_model.keras and
    summary.json with val_top*, in a directory named 'demo'."""
    return trained_run[0].run.model_dir


@pytest.fixture(scope="module")
def other_model(tmp_path_factory):
    """87x87 input, 11 outputs (index 0 = background, as in the released 1001-class nets)."""
    keras.utils.set_random_seed(1)
    model = models.build(
        "inception_v4", input_shape=(87, 87, 3), width_multiplier=0.125, num_classes=11
    )
    path = str(tmp_path_factory.mktemp("imported") / "other.keras")
    model.save(path)
    return path


@pytest.fixture(scope="module")
def strategy():
    return devices.make_strategy("one_device")


@pytest.fixture(scope="module")
def command(run_dir, other_model, data_dir, tmp_path_factory):
    """evaluate.py on both models, every protocol, under MirroredStrategy on 2 CPU devices; the
    last step (3 images, 2 per step) leaves one replica without images."""
    out = tmp_path_factory.mktemp("eval")
    result = _run(
        [
            "evaluate.py",
            f"--models={run_dir},{other_model}",
            "--crops=1,10,12,144",
            f"--data_dir={data_dir}",
            f"--max_images={SMALL}",
            "--batch_size=2",
            "--strategy=mirrored",
            "--num_cpu_devices=2",
            f"--output={out / 'eval.json'}",
            f"--save_probabilities={out / 'probs.npz'}",
        ]
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    report = json.loads((out / "eval.json").read_text())
    saved = np.load(out / "probs.npz")
    return out, result.stdout, report, saved


def _rows(result):
    return {
        (r["model"], r["crops"]): tuple(r[f"top{k}_error"] for k in (1, 3, 5))
        for r in result["results"]
    }


def test_one_crop_equals_the_training_evaluation_and_self_ensemble(run_dir, data_dir, strategy):
    """1 crop = main.py's own evaluation (summary.json) on all 359 images; an ensemble of the
    model with itself is the model."""
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    result = runner.MultiCropEvaluation(
        [run_dir, run_dir], [1], data.EMBEDDED_DATASET, strategy=strategy, data_dir=data_dir
    ).run(progress=False, keep_probabilities=True)
    assert result["num_images"] == summary["num_eval"] == 359
    assert [m["name"] for m in result["members"]] == ["demo#1", "demo#2"]
    rows = _rows(result)
    expected = tuple(summary[f"val_top{k}_error"] for k in (1, 3, 5))
    for name in ("demo#1", "demo#2", "ensemble"):
        assert rows[(name, 1)] == pytest.approx(expected, abs=1e-12), name
    probs = result["probabilities"]
    np.testing.assert_allclose(probs[:, 2], probs[:, 0], rtol=1e-6, atol=1e-7)


def _manual_crops(encoded, spec_list, size):
    """The crops of ``spec_list``, cut here from the definition of each window."""
    decoded = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    h, w = decoded.shape[:2]
    images = []
    for spec in spec_list:
        if spec.kind == "central":
            images.append(preprocessing.preprocess_for_eval(tf.constant(encoded), size).numpy())
            continue
        oh, ow, ch, cw = crops.crop_window(spec, h, w)
        window = tf.image.convert_image_dtype(decoded[oh : oh + ch, ow : ow + cw], tf.float32)
        image = tf.image.resize(window, [size, size]).numpy() * 2.0 - 1.0
        images.append(image[:, ::-1] if spec.mirror else image)
    return images


def test_protocols_and_ensemble_average_softmax_over_crops_and_models(
    command, data_dir, run_dir, other_model
):
    _, _, report, saved = command
    probs, labels = saved["probabilities"], saved["labels"]
    assert list(saved["rows"]) == ["demo", "other", "ensemble"]
    assert probs.shape == (SMALL, 3, len(PROTOCOLS), 10)
    encoded, expected_labels = export_data.encoded_eval_images(
        data.EMBEDDED_DATASET, SMALL, data_dir
    )
    np.testing.assert_array_equal(labels, expected_labels)
    distinct = sorted({s for p in PROTOCOLS for s in crops.protocol_specs(p)})
    for m, path in enumerate((run_dir, other_model)):
        member = members.load(path)
        assert report["members"][m]["background_class_dropped"] == (m == 1)
        member.background = m == 1
        images = [c for e in encoded for c in _manual_crops(e, distinct, member.image_size)]
        crop_probs = member.model.predict(np.stack(images), verbose=0, batch_size=len(images))
        if member.background:  # drop index 0 and renormalise
            crop_probs = crop_probs[:, 1:] / crop_probs[:, 1:].sum(axis=1, keepdims=True)
        crop_probs = crop_probs.reshape(SMALL, len(distinct), 10)
        for p, protocol in enumerate(PROTOCOLS):  # the mean over the protocol's crops, repeats too
            index = [distinct.index(s) for s in crops.protocol_specs(protocol)]
            expected = crop_probs[:, index].mean(axis=1)
            np.testing.assert_allclose(
                probs[:, m, p], expected, atol=2e-5, err_msg=f"{member.name}, {protocol} crops"
            )
    np.testing.assert_allclose(probs[:, 2], probs[:, :2].mean(axis=1), atol=1e-6)
    # The reported errors are the top-k misses of these probabilities.
    names = ["demo", "other", "ensemble"]
    rows = _rows(report)
    for r, name in enumerate(names):
        for p, protocol in enumerate(PROTOCOLS):
            top = np.argsort(-probs[:, r, p], axis=1, kind="stable")  # ties: lower index first
            errors = tuple(
                1.0 - np.mean([labels[i] in top[i, :k] for i in range(SMALL)]) for k in (1, 3, 5)
            )
            assert rows[(name, protocol)] == pytest.approx(errors), (name, protocol)
    assert report["distinct_crops_per_image"] == 127


def test_command_reports_every_protocol_for_members_and_ensemble(command):
    out, stdout, report, _ = command
    assert report["dataset"] == "sklearn_digits" and report["num_images"] == SMALL
    assert report["strategy"] == "MirroredStrategy" and report["num_replicas"] == 2
    assert [m["image_size"] for m in report["members"]] == [75, 87]
    assert report["protocols"] == list(PROTOCOLS)
    assert sorted((r["model"], r["crops"]) for r in report["results"]) == sorted(
        (name, p) for name in ("demo", "other", "ensemble") for p in PROTOCOLS
    )
    for r in report["results"]:
        assert 0.0 <= r["top5_error"] <= r["top3_error"] <= r["top1_error"] <= 1.0
    assert "estimated time" in stdout
    table = stdout[stdout.index("| Network") :]
    assert table.count("Ensemble of demo + other") == len(PROTOCOLS)
    assert sorted(os.listdir(out)) == ["eval.json", "probs.npz"]  # no temporaries left


@pytest.mark.parametrize(
    "args,message",
    [
        (["--models=/nonexistent/run"], "neither a training run directory nor a .keras file"),
        (["--models=/nonexistent.keras"], "no such .keras file"),
        (["--models=tests", "--crops=10"], "not a finished training run"),
        (["--models=x.keras"], "no such .keras file"),
        ([], "--models is required"),
    ],
)
def test_bad_flags_fail_before_any_work(args, message):
    result = _run(["evaluate.py", *args], timeout=60)
    assert result.returncode != 0
    assert message in result.stderr


def test_bad_protocols_fail_before_any_work(other_model):
    for crops_flag, message in (
        ("7", "unknown protocol(s) [7]"),
        ("10,10", "twice"),
        ("ten", "must be numbers"),
    ):
        result = _run(
            ["evaluate.py", f"--models={other_model}", f"--crops={crops_flag}"], timeout=60
        )
        assert result.returncode != 0 and message in result.stderr, result.stderr[-500:]


def test_models_must_fit_the_dataset_classes():
    info = data.DatasetInfo(
        name="d",
        num_classes=10,
        num_train=1,
        num_eval=1,
        label_names=[str(i) for i in range(10)],
        train_split="train",
        eval_split="validation",
    )

    def member(outputs, labels=None):
        return members.Member(
            name="m",
            path="m.keras",
            model=None,
            image_size=75,
            num_outputs=outputs,
            architecture="x",
            run_record={},
            labels=labels,
        )

    m = member(11)
    members.check_against_dataset(m, info)
    assert m.background
    with pytest.raises(ValueError, match="has 7 outputs but dataset 'd' has 10 classes"):
        members.check_against_dataset(member(7), info)
    with pytest.raises(ValueError, match="same order"):
        members.check_against_dataset(member(10, labels=list("abcdefghij")), info)
