"""inception-predict: top-k labels and scores of image files from a .keras model, a training run
directory, a SavedModel and a .tflite file (an .onnx file of a real export:
tests/test_export_onnx.py).

The reference is the model's own probabilities on the preprocessed image, computed without the
predictor: each test image is one uniform colour inside the central window the eval crop keeps
and another colour outside it, so its preprocessed form is known in closed form (the uniform
colour scaled to [-1, 1], at any input size). A predictor that skipped the crop, used another
fraction or another input size would see the border and answer differently (checked too).
"""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow")
LABELS = ["cat", "dog", "fox", "owl", "elk"]
SIDE = 33  # the tiny model's input: any size works, and 33 is no image's size here


def _image(height, width, interior, fraction, fmt, border):
    """Encoded image: ``interior`` inside the central window that a crop of ``fraction`` keeps
    (offsets int(n * (1 - fraction) / 2), as inception.data.preprocessing), ``border`` outside."""
    from PIL import Image

    pixels = np.empty((height, width, 3), np.uint8)
    pixels[:] = border
    dh, dw = int(height * (1 - fraction) / 2), int(width * (1 - fraction) / 2)
    pixels[dh : height - dh, dw : width - dw] = interior
    image = Image.fromarray(pixels)
    if fmt == "JPEG" and len(set(interior)) == 1 and len(set(border)) == 1:
        image = image.convert("L")  # grey: a one-channel JPEG (8x8 blocks, no chroma)
    out = io.BytesIO()
    image.save(out, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue()


def _uniform(colour, side=SIDE):
    """The eval preprocessing of a uniform image, in closed form: pixel / 255 * 2 - 1."""
    return np.broadcast_to(
        np.asarray(colour, np.float32) / 255.0 * 2.0 - 1.0, (1, side, side, 3)
    ).copy()


def _decoded_interior(encoded, fraction):
    """The decoded colour inside the kept window (a JPEG's exact grey after compression),
    checked to be uniform there."""
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB"))
    h, w = pixels.shape[:2]
    dh, dw = int(h * (1 - fraction) / 2), int(w * (1 - fraction) / 2)
    window = pixels[dh : h - dh, dw : w - dw].reshape(-1, 3)
    assert (window == window[0]).all(), "the test image is not uniform inside the crop"
    return window[0]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small classifier whose classifier layer carries class names (as a converted model):
    saved as .keras, exported as a SavedModel and as .tflite (metadata crop 0.75)."""
    import keras

    from inception.export import classifier, saved_model, tflite, versions
    from inception.weights import LabeledDense

    keras.utils.set_random_seed(7)
    inputs = keras.Input((SIDE, SIDE, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = LabeledDense(
        len(LABELS),
        class_names=LABELS,
        activation="softmax",
        kernel_initializer=keras.initializers.RandomNormal(stddev=3.0),
        name="predictions",
    )(x)
    model = keras.Model(inputs, outputs)
    root = tmp_path_factory.mktemp("tiny")
    path = str(root / "tiny.keras")
    model.save(path)
    src = classifier.from_model(model, LABELS)
    saved = versions.publish(
        str(root / "exports" / "tiny"), 1, lambda d: saved_model.write_saved_model(d, src, "tiny")
    )
    lite = root / "tiny-fp32.tflite"
    lite.write_bytes(tflite.export_variant(src, "fp32", central_fraction=0.75))
    return {
        "model": model,
        "keras": path,
        "saved_model": saved,
        "base": str(root / "exports" / "tiny"),
        "tflite": str(lite),
    }


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """name -> (path, the colour the eval crop of 0.875 sees): RGB PNG of a non-square size, a
    greyscale JPEG, a grey PNG whose border is exactly what a crop of 0.75 removes."""
    root = tmp_path_factory.mktemp("images")
    # The JPEG's border (8 px) ends on its 8x8 block grid, so the kept blocks are uniform.
    specs = {
        "wide.png": (96, 160, (200, 30, 90), 0.875, "PNG", (0, 0, 255)),
        "grey.jpg": (128, 128, (40, 40, 40), 0.875, "JPEG", (250, 250, 250)),
        "ring.png": (64, 64, (230, 230, 20), 0.75, "PNG", (0, 0, 255)),
    }
    out = {}
    for name, (h, w, colour, fraction, fmt, border) in specs.items():
        encoded = _image(h, w, colour, fraction, fmt, border)
        (root / name).write_bytes(encoded)
        out[name] = (str(root / name), _decoded_interior(encoded, fraction))
    return out


def _expected(model, colour):
    return np.asarray(model(_uniform(colour, int(model.inputs[0].shape[1])), training=False))[0]


def _check(answer, probabilities, labels, atol):
    order = np.argsort(-probabilities, kind="stable")[: len(answer.top_k)]
    assert answer.error is None
    assert [r.label for r in answer.top_k] == [labels[i] for i in order]
    assert [r.index for r in answer.top_k] == order.tolist()
    np.testing.assert_allclose([r.score for r in answer.top_k], probabilities[order], atol=atol)


def test_keras_model_answers_its_own_probabilities(tiny, images):
    from inception import prediction

    predictor = prediction.load(tiny["keras"])
    assert predictor.format == prediction.FORMAT_KERAS and predictor.image_size == SIDE
    assert predictor.labels == LABELS  # carried by the model's LabeledDense, as converted files
    paths = [images[n][0] for n in ("wide.png", "grey.jpg")]
    answers = prediction.classify_files(predictor, paths, k=5)
    for answer, name in zip(answers, ("wide.png", "grey.jpg")):
        assert answer.path == images[name][0]
        _check(answer, _expected(tiny["model"], images[name][1]), LABELS, atol=1e-5)
    # The test can tell: without the crop the border changes the answer.
    uncropped = prediction.load(tiny["keras"], central_fraction=1.0)
    scores = prediction.classify_files(uncropped, paths[:1], k=5)[0].top_k
    expected = _expected(tiny["model"], images["wide.png"][1])
    assert max(abs(r.score - expected[r.index]) for r in scores) > 1e-3


def test_saved_model_and_tflite_answer_like_the_model(tiny, images):
    from inception import prediction

    model = tiny["model"]
    for where in (tiny["saved_model"], tiny["base"]):  # a version, or the newest under the base
        predictor = prediction.load(where)
        assert predictor.format == "saved_model" and predictor.labels == LABELS
        assert predictor.path == tiny["saved_model"] and predictor.image_size == SIDE
        for name in ("wide.png", "grey.jpg"):
            answer = prediction.classify_files(predictor, [images[name][0]], k=3)[0]
            _check(answer, _expected(model, images[name][1]), LABELS, atol=1e-5)
    # Preprocessed images go through the predict_images signature: the model's answer.
    batch = np.concatenate([_uniform(images[n][1]) for n in ("wide.png", "grey.jpg")])
    np.testing.assert_allclose(predictor.classify(batch), np.asarray(model(batch)), atol=1e-5)
    # The .tflite file's metadata says crop 0.75: ring.png's border is exactly what that removes.
    lite = prediction.load(tiny["tflite"])
    assert lite.format == "tflite" and lite.central_fraction == 0.75
    answer = prediction.classify_files(lite, [images["ring.png"][0]], k=5)[0]
    _check(answer, _expected(model, images["ring.png"][1]), LABELS, atol=1e-5)
    # The default crop (0.875) keeps part of that border: another answer.
    keras_answer = prediction.classify_files(
        prediction.load(tiny["keras"]), [images["ring.png"][0]]
    )[0]
    assert max(abs(a.score - b.score) for a, b in zip(answer.top_k, keras_answer.top_k)) > 1e-3


def test_run_directory_uses_its_ema_model(trained_run, images):
    import keras

    from inception import prediction

    config, _, _ = trained_run
    run = config.run.model_dir
    predictor = prediction.load(run)
    assert predictor.format == prediction.FORMAT_RUN and predictor.dataset == "sklearn_digits"
    assert predictor.image_size == config.model.image_size
    labels = open(os.path.join(run, "labels.txt")).read().split()
    ema = keras.saving.load_model(os.path.join(run, "ema_model.keras"))
    answer = prediction.classify_files(predictor, [images["grey.jpg"][0]], k=3)[0]
    _check(answer, _expected(ema, images["grey.jpg"][1]), labels, atol=1e-5)


def _predict_cli(*args, module="inception_cli.predict"):
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_json_output_and_bad_files_among_good_ones(tiny, images, tmp_path):
    good = [images["wide.png"][0], images["grey.jpg"][0]]
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(open(images["grey.jpg"][0], "rb").read()[:300])
    missing = str(tmp_path / "missing.png")
    files = [good[0], str(text), str(truncated), missing, good[1]]
    result = _predict_cli(f"--model={tiny['saved_model']}", "--json", "--top_k=2", *files)
    assert result.returncode == 2, result.stderr[-3000:]  # some images could not be used
    report = json.loads(result.stdout)
    assert report["format"] == "saved_model" and report["image_size"] == SIDE
    assert [entry["path"] for entry in report["images"]] == files
    entries = dict(zip(files, report["images"]))
    for path, name in zip(good, ("wide.png", "grey.jpg")):
        expected = _expected(tiny["model"], images[name][1])
        top = entries[path]["top_k"]
        assert [t["label"] for t in top] == [LABELS[i] for i in np.argsort(-expected)[:2]]
        np.testing.assert_allclose(
            [t["score"] for t in top], np.sort(expected)[::-1][:2], atol=1e-5
        )
    assert "not a JPEG or PNG" in entries[str(text)]["error"]
    assert entries[str(truncated)]["error"]
    assert entries[missing]["error"] == "no such file"
    # One line per bad file on stderr, naming the file.
    lines = [line for line in result.stderr.splitlines() if ": cannot use this image: " in line]
    assert sorted(line.split(": cannot use this image: ")[0] for line in lines) == sorted(
        [str(text), str(truncated), missing]
    )


def test_bad_model_paths_are_refused_with_what_is_accepted(tmp_path):
    from inception import prediction

    with pytest.raises(
        ValueError, match=r"expected a \.keras file, .* a SavedModel, a \.tflite file"
    ):
        prediction.detect(str(tmp_path))
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip archive")
    with pytest.raises(ValueError, match=r"corrupt\.keras: cannot load this keras model"):
        prediction.load(str(corrupt))


def test_an_unknown_kind_of_file_is_one_line_naming_what_is_accepted(tmp_path):
    """Every kind the format registry knows is named (ONNX included), and nothing else is
    printed: no traceback."""
    unknown = tmp_path / "model.pt"
    unknown.write_bytes(b"not a model of any kind here")
    result = _predict_cli(f"--model={unknown}", "a.jpg")
    assert result.returncode == 1, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("predict.py: error: "), lines[0]  # the command's error line
    assert (
        f"{unknown}: not a model: expected a .keras file, a training run directory (with "
        "ema_model.keras) or an export: a SavedModel, a .tflite file, an .onnx file"
    ) in lines[0]
    assert result.stdout == ""
