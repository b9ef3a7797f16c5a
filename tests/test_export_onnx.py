"""The ONNX file (``inception.export.onnx``) of the shared export (tests/export_fixtures.py): ONNX
Runtime alone in a fresh process (tests/programs/onnx_runtime_only.py), its metadata read back,
and ``inception-predict`` on it answering as on the SavedModel and the fp32 TFLite file.
"""

import json
import os
import sys

import numpy as np
import pytest

from export_fixtures import NAME, PROGRAMS, SIZE, Started
from inception import networks
from inception.export import litert


@pytest.fixture(scope="module")
def onnx_fresh(exported, validation, tmp_path_factory):
    """ONNX Runtime in a fresh process, started by the first test and run beside the others."""
    _, report_, _ = exported
    _, _, images = validation
    job = _start_onnx(report_["variants"]["onnx"]["path"], images, tmp_path_factory.mktemp("onnx"))
    yield job
    job.stop()


def _start_onnx(path, images, tmp):
    np.save(tmp / "onnx_images.npy", images)
    return Started(
        [
            sys.executable,
            os.path.join(PROGRAMS, "onnx_runtime_only.py"),
            path,
            str(tmp / "onnx_images.npy"),
            str(tmp / "onnx_result.json"),
        ],
        tmp,
        "onnx",
        {"result": tmp / "onnx_result.json"},
    )


def test_onnx_runs_in_onnx_runtime_in_a_fresh_process_and_matches_keras(
    exported, onnx_fresh, validation, reference
):
    _, report_, _ = exported
    entry = report_["variants"]["onnx"]
    _, labels, _ = validation
    result = onnx_fresh.result()
    assert result.returncode == 0, result.stderr[-4000:]
    got = json.loads(onnx_fresh.files["result"].read_text())
    assert got["inception_imported"] is False and got["tensorflow_imported"] is False
    assert got["input"] == ["images", "tensor(float)", [None, SIZE, SIZE, 3]]
    assert got["output"] == ["probabilities", "tensor(float)"]
    meta = got["metadata"]  # the labels travel inside the file, in class-index order
    assert meta["labels"] == [str(d) for d in range(10)] and meta["image_size"] == SIZE
    assert meta["preprocessing"]["central_fraction"] == networks.EVAL_CENTRAL_FRACTION
    probabilities = np.array(got["probabilities"])
    diff = np.abs(probabilities - reference).max()
    assert diff <= 1e-4
    agree = np.mean(probabilities.argmax(1) == reference.argmax(1))
    assert agree >= 0.999
    # The report's row is what ONNX Runtime answers (batching differs: 7 here, 32 there).
    assert agree == pytest.approx(entry["top1_agreement"])
    assert diff == pytest.approx(entry["max_abs_prob_diff"], abs=1e-6)
    assert np.mean(probabilities.argmax(1) == labels) == pytest.approx(entry["top1_accuracy"])


def test_onnx_metadata_reads_back_in_process(exported):
    from inception.export import onnx as onnx_export

    _, report_, _ = exported
    path = report_["variants"]["onnx"]["path"]
    runner = onnx_export.OnnxRunner(path)
    assert runner.labels == [str(d) for d in range(10)]
    assert onnx_export.read_metadata(path) == runner.metadata
    assert runner.metadata == litert.read_metadata(report_["variants"]["tflite_fp32"]["path"])
    with pytest.raises(ValueError, match=r"expected images \[N, 75, 75, 3\]"):
        runner.predict(np.zeros((1, 64, 64, 3), np.float32))


def _predict_json(model, files, monkeypatch, capsys):
    """``inception-predict --json`` in this process (its console set up as by the fixtures)."""
    from inception_cli import common, predict

    monkeypatch.setattr(common, "setup_process", lambda verbose: None)
    capsys.readouterr()
    status = predict.main([f"--model={model}", "--json", *files])
    out = capsys.readouterr().out
    assert status == 0, out
    return json.loads(out)


def test_predict_runs_the_onnx_file_like_the_saved_model_and_the_fp32_tflite(
    exported, validation, tmp_path, monkeypatch, capsys
):
    """``inception-predict`` runs every format the export writes, ONNX included: on the same
    images, the .onnx file's top-5 is the SavedModel's and the fp32 .tflite file's (the labels,
    the input size and the preprocessing read from the .onnx file's metadata_props)."""
    out, report_, _ = exported
    encoded, _, _ = validation
    files = []
    for i, data in enumerate(encoded[:6]):
        files.append(str(tmp_path / f"digit{i}.jpg"))
        with open(files[-1], "wb") as f:
            f.write(data)
    answers = {}
    for fmt, model in (
        ("onnx", report_["variants"]["onnx"]["path"]),
        ("saved_model", os.path.join(out, NAME)),  # the base path: the newest
        ("tflite", report_["variants"]["tflite_fp32"]["path"]),
    ):
        answers[fmt] = _predict_json(model, files, monkeypatch, capsys)
        assert answers[fmt]["format"] == fmt and answers[fmt]["image_size"] == SIZE
    assert answers["onnx"]["central_fraction"] == networks.EVAL_CENTRAL_FRACTION
    assert answers["onnx"]["num_labels"] == 10
    for i, path in enumerate(files):
        top = {fmt: answer["images"][i]["top_k"] for fmt, answer in answers.items()}
        assert answers["onnx"]["images"][i]["path"] == path
        assert len(top["onnx"]) == 5
        for other in ("saved_model", "tflite"):
            assert [t["label"] for t in top["onnx"]] == [t["label"] for t in top[other]], other
            np.testing.assert_allclose(
                [t["score"] for t in top["onnx"]], [t["score"] for t in top[other]], atol=1e-4
            )
