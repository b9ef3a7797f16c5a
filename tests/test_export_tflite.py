"""The TFLite files (``inception.export.tflite``) of the shared export (tests/export_fixtures.py):
the report's numbers against the LiteRT interpreter run directly, the converter's supported path,
``inception-predict`` on a .tflite file, and int8 with integer input and output.
"""

import numpy as np
import pytest
import tensorflow as tf

from export_fixtures import CALIBRATION_IMAGES, SIZE, run_python
from inception import data as data_lib
from inception.export import data as export_data
from inception.export import formats, litert, tflite

FILES = tuple(f for f in formats.DEFAULT_EXPORT_FORMATS if f != "saved_model")


def test_report_numbers_match_an_independent_litert_run(exported, validation, reference):
    """Recomputes the int8 row with the LiteRT interpreter directly (not via the exporter)."""
    from ai_edge_litert.interpreter import Interpreter

    _, report_, _ = exported
    entry = report_["variants"]["tflite_int8"]
    _, _, images = validation
    interpreter = Interpreter(model_path=entry["path"])
    interpreter.allocate_tensors()
    inp, outp = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    probabilities = []
    for image in images:
        interpreter.set_tensor(inp["index"], image[None])
        interpreter.invoke()
        probabilities.append(interpreter.get_tensor(outp["index"])[0])
    probabilities = np.array(probabilities)
    agree = np.mean(probabilities.argmax(1) == reference.argmax(1))
    assert agree == pytest.approx(entry["top1_agreement"])
    assert np.abs(probabilities - reference).max() == pytest.approx(
        entry["max_abs_prob_diff"], abs=1e-6
    )


def test_tflite_conversion_takes_the_supported_path(exported):
    """Converted from a SavedModel: no deprecation warning, and the file carries a signature."""
    from ai_edge_litert.interpreter import Interpreter

    _, report_, output = exported
    assert "TFLite" in output or "tflite_fp32" in output  # the export's own lines were captured
    assert "deprecated conversion path" not in output
    for fmt in FILES:
        if fmt.startswith("tflite_"):
            interpreter = Interpreter(model_path=report_["variants"][fmt]["path"])
            assert interpreter.get_signature_list() == {
                "serving_default": {"inputs": ["images"], "outputs": ["probabilities"]}
            }, fmt


# ---- inception-predict on a .tflite file -----------------------------------------------------


def test_predict_on_a_tflite_file_prints_top5_like_the_saved_model(
    exported, loaded, validation, tmp_path, data_dir
):
    _, report, _ = exported
    encoded, labels, _ = validation
    files = []
    for i, data in enumerate(encoded[:3]):
        path = tmp_path / f"digit{i}.jpg"
        path.write_bytes(data)
        files.append(str(path))
    png = tmp_path / "digit3.png"
    png.write_bytes(tf.io.encode_png(tf.io.decode_jpeg(encoded[3], channels=3)).numpy())
    files.append(str(png))
    (tmp_path / "notes.txt").write_text("not an image")
    model = report["variants"]["tflite_fp32"]["path"]
    result = run_python(
        [
            "-m",
            "inception_cli.predict",
            f"--model={model}",
            *files,
            str(tmp_path / "notes.txt"),
            "--validation_images=2",
            f"--data_dir={data_dir}",
            f"--image_out_dir={tmp_path / 'val'}",
        ],
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-3000:]  # one file was not an image
    assert "notes.txt: cannot use this image: " in result.stderr
    assert "not a JPEG or PNG" in result.stderr
    blocks = result.stdout.strip().split("\n")
    expected = loaded.signatures["serving_default"](
        image_bytes=tf.constant([open(f, "rb").read() for f in files])
    )
    for i, path in enumerate(files):
        start = blocks.index(path)
        lines = blocks[start + 1 : start + 6]
        assert len(lines) == 5
        names = [line.split()[1] for line in lines]
        scores = [float(line.split()[2]) for line in lines]
        assert names == expected["top_k_labels"][i].numpy().astype(str).tolist()
        np.testing.assert_allclose(scores, expected["top_k_scores"][i].numpy(), atol=1e-4)
    # --validation_images: the dataset named inside the .tflite file, with the true labels.
    truths = [
        line.split("(true label: ")[1].rstrip(")") for line in blocks if "(true label:" in line
    ]
    assert truths == [str(label) for label in labels[:2]]


def test_int8_with_integer_io_runs_in_litert_and_agrees(
    run_dir, validation, reference, data_dir, tmp_path, capfd, monkeypatch
):
    """--int8_io=int8: int8 input/output tensors; the runner quantises with their scale/zero point.
    The quantizer's settings line, printed to stdout from C++, does not reach the console."""
    from inception import console
    from inception.export import classifier

    src = classifier.from_run_dir(run_dir)
    calibration = export_data.calibration_images(
        data_lib.EMBEDDED_DATASET, SIZE, CALIBRATION_IMAGES, data_dir
    )
    monkeypatch.setitem(console._state, "quiet", True)  # as after export.py's console.quiet()
    capfd.readouterr()
    blob = tflite.export_variant(src, "int8", calibration, int8_io="int8")
    printed = capfd.readouterr()
    assert "fully_quantize" not in printed.out + printed.err, printed
    meta = litert.read_metadata(blob)
    assert meta["int8_io"] == "int8" and meta["labels"] == src.labels
    path = str(tmp_path / "int8io.tflite")
    with open(path, "wb") as f:
        f.write(blob)
    runner = litert.LiteRTRunner(path)
    assert runner.interpreter.get_input_details()[0]["dtype"] == np.int8
    assert runner.interpreter.get_output_details()[0]["dtype"] == np.int8
    _, _, images = validation
    probabilities = runner.predict(images)
    assert np.mean(probabilities.argmax(1) == reference.argmax(1)) >= 0.98
    assert np.abs(probabilities - reference).max() < 0.5
    with pytest.raises(ValueError, match="tflite_int8 needs calibration images"):
        tflite.export_variant(src, "int8", None)
