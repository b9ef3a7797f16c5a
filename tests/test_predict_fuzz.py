"""inception-predict and the export's runners under bad input (issue 27).

- ``inception-predict`` over a directory mixing good images with the serving fuzz's mutations
  (``benchmarks/fuzz_serving.py``), for a SavedModel and a .tflite file: every good image
  answered, every other file named once on stderr with a one-line printable-ASCII reason, their
  count last, exit status 2, nothing else on stderr (no traceback, no libjpeg warnings), and a
  clean image answered the same afterwards. (.onnx files go through the same preprocessing as
  .tflite files here; tests/test_export_onnx.py runs ``inception-predict`` on one.)
- The LiteRT and ONNX Runtime runners of the export's agreement check
  (``litert.LiteRTRunner``, ``onnx.OnnxRunner``) given arrays of the wrong rank, size,
  channels or dtype, ragged lists, empty batches, NaN and infinity: a ValueError saying what is
  wrong, before the interpreter, and the same answers for a clean batch afterwards.

The model is a tiny convolution (the decoding and the runners are what is tested), exported with
the fuzz's pixel limit so that its "huge" images are refused.
"""

import os
import re

import numpy as np
import pytest

from benchmarks import fuzz_serving as fz

SIDE = 24
LABELS = ["ant", "bee", "cow"]
FUZZED_FILES = 60  # 6 of each kind
RANDOM_ARRAYS = 200


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The tiny model as a SavedModel and a .tflite file, and an .onnx classifier made with
    onnx.helper (no converter needed for what the runner checks)."""
    import keras

    from inception.export import classifier, saved_model, tflite

    keras.utils.set_random_seed(3)
    inputs = keras.Input((SIDE, SIDE, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(len(LABELS), activation="softmax")(x))
    root = tmp_path_factory.mktemp("predict_fuzz")
    src = classifier.from_model(model, LABELS)
    saved = saved_model.write_saved_model(
        str(root / "1"), src, "tiny", max_pixels=fz.FUZZ_MAX_PIXELS
    )
    lite = root / "tiny.tflite"
    lite.write_bytes(tflite.export_variant(src, "fp32"))
    return {"saved_model": saved, "tflite": str(lite), "onnx": _onnx_file(root / "tiny.onnx")}


def _onnx_file(path):
    """images [N, SIDE, SIDE, 3] -> softmax of the mean colour: an ONNX classifier of 3 classes."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2], keepdims=0),
            helper.make_node("Softmax", ["mean"], ["probabilities"], axis=1),
        ],
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", SIDE, SIDE, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]), str(path))
    return str(path)


def _write_mixed(root, count, seed):
    """(directory, good file paths): the serving fuzz's seed images and ``count`` mutations."""
    seeds = fz.seed_images()
    good = []
    for name, data in seeds.items():
        (root / f"good-{name}").write_bytes(data)
        good.append(str(root / f"good-{name}"))
    cases = fz.inputs(count, seed, seeds, fz.huge_images(fz.FUZZ_MAX_PIXELS))
    for i, (kind, data) in enumerate(cases):
        (root / f"fuzz-{i:04d}-{kind}.jpg").write_bytes(data)
    os.mkdir(root / "subdirectory")  # not an image: left out of the directory's files
    return str(root), good


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    return _write_mixed(tmp_path_factory.mktemp("mixed"), FUZZED_FILES, seed=0)


def _run_cli(argv, monkeypatch, capfd):
    """inception-predict in this process, as quiet as the command (``console.quiet``)."""
    from inception import console
    from inception_cli import common, predict

    monkeypatch.setattr(common, "setup_process", lambda verbose: None)
    monkeypatch.setitem(console._state, "quiet", True)
    status = predict.main(argv)
    out, err = capfd.readouterr()
    return status, out, err


@pytest.mark.parametrize("fmt", ["saved_model", "tflite"])
def test_a_directory_of_good_and_fuzzed_files(fmt, exported, image_dir, monkeypatch, capfd):
    _check_directory(exported[fmt], *image_dir, monkeypatch, capfd)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["saved_model", "tflite"])
def test_the_longer_directory_fuzz(fmt, exported, tmp_path, monkeypatch, capfd):
    _check_directory(exported[fmt], *_write_mixed(tmp_path, 1000, seed=1), monkeypatch, capfd)


def _check_directory(model, directory, good, monkeypatch, capfd):
    missing = os.path.join(directory, "missing.png")
    status, out, err = _run_cli([f"--model={model}", directory, missing], monkeypatch, capfd)
    files = sorted(
        os.path.join(directory, f) for f in os.listdir(directory) if f != "subdirectory"
    ) + [missing]
    answered = [line for line in out.splitlines() if not line.startswith(" ")]
    assert set(good) <= set(answered)
    lines = err.splitlines()
    refused = [line.split(": cannot use this image: ", 1) for line in lines[:-1]]
    assert all(len(parts) == 2 for parts in refused), lines  # nothing else on stderr
    assert sorted(answered + [path for path, _ in refused]) == sorted(files)  # each file once
    assert lines[-1] == f"{len(refused)} of {len(files)} image(s) could not be used"
    assert status == 2 and len(refused) >= FUZZED_FILES // 2
    for _path, reason in refused:
        assert reason and all(" " <= c <= "~" for c in reason), ascii(reason)
        assert not re.search(r"Graph execution|\{\{|\[\[|image_bytes\[|\[Op:", reason), reason
    assert dict(refused)[missing] == "no such file"
    reasons = " | ".join(reason for _, reason in refused)
    assert "not a JPEG or PNG image" in reasons and "cannot decode it: " in reasons
    assert "image too large" in reasons


def test_the_process_answers_the_same_after_the_bad_files(exported, image_dir):
    from inception import prediction

    directory, good = image_dir
    predictor = prediction.load(exported["tflite"])
    first = prediction.classify_files(predictor, good)
    bad = sorted(os.path.join(directory, f) for f in os.listdir(directory) if "fuzz-" in f)
    prediction.classify_files(predictor, bad)
    assert prediction.classify_files(predictor, good) == first


def test_error_reason_unwraps_tensorflow_messages():
    from inception.prediction import error_reason

    class Err(Exception):
        def __init__(self, message):
            self.message = message

    graph = (
        "Graph execution error:\n\nDetected at node map/while/cond/ExtractJpegShape defined "
        "at (most recent call last):\n<stack traces unavailable>\nInvalid JPEG data, size 8"
        "\n\t [[{{node map/while/cond/ExtractJpegShape}}]] [Op:__inference_serve_bytes_37]"
    )
    eager = (
        "{{function_node __wrapped__DecodeImage_device_/job:localhost/replica:0/task:0/"
        "device:CPU:0}} Invalid PNG data, size 2475 [Op:DecodeImage] name: "
    )
    assertion = (
        "assertion failed: [image_bytes[3]: empty string; expected an encoded JPEG or "
        "PNG image]\n\t [[{{node Assert}}]]"
    )
    assert error_reason(Err(graph)) == "cannot decode it: Invalid JPEG data, size 8"
    assert error_reason(Err(eager)) == "cannot decode it: Invalid PNG data, size 2475"
    assert error_reason(Err(assertion)) == "empty string; expected an encoded JPEG or PNG image"
    assert error_reason(Err("bad \xff\x00 byte")) == "cannot decode it: bad ?? byte"


def _runner(fmt, exported):
    if fmt == "tflite":
        from inception.export import litert

        return litert.LiteRTRunner(exported["tflite"])
    from inception.export import onnx

    return onnx.OnnxRunner(exported["onnx"])


BAD_ARRAYS = [
    (np.zeros((SIDE, SIDE, 3), np.float32), r"got shape \[24, 24, 3\]"),
    (np.zeros((2, SIDE + 1, SIDE, 3), np.float32), r"expected images \[N, 24, 24, 3\]; got shape"),
    (np.zeros((2, SIDE, SIDE, 1), np.float32), r"got shape \[2, 24, 24, 1\]"),
    (np.zeros((0, SIDE, SIDE, 3), np.float32), r"N >= 1; got an empty batch"),
    (np.zeros((2, SIDE, SIDE, 3), np.uint8), r"floating-point images .* got dtype uint8"),
    (np.full((2, SIDE, SIDE, 3), "x"), r"got dtype <U1"),
    ([np.zeros((SIDE, SIDE, 3)), np.zeros((SIDE, 3))], r"got no array"),
    (np.full((2, SIDE, SIDE, 3), np.nan, np.float32), rf"hold {2 * SIDE * SIDE * 3} NaN"),
    (
        np.pad(np.zeros((1, SIDE, SIDE, 2)), [(0, 0)] * 3 + [(0, 1)], constant_values=np.inf),
        rf"hold {SIDE * SIDE} NaN or infinite",
    ),
]


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_runners_refuse_bad_arrays_and_answer_afterwards(fmt, exported):
    runner = _runner(fmt, exported)
    clean = np.random.default_rng(0).uniform(-1, 1, (3, SIDE, SIDE, 3)).astype(np.float32)
    expected = runner.predict(clean)
    for array, pattern in BAD_ARRAYS:
        with pytest.raises(ValueError, match=pattern):
            runner.predict(array)
        np.testing.assert_array_equal(runner.predict(clean), expected)
    np.testing.assert_array_equal(runner.predict(clean.astype(np.float64)), expected)


def _random_array(rng):
    """An array of a random rank, size and dtype, sometimes the right shape with NaN in it."""
    dtype = rng.choice(["float32", "float64", "float16", "int8", "uint8", "int64", "bool"])
    if rng.random() < 0.5:
        shape = (int(rng.integers(0, 4)), SIDE, SIDE, 3)
    else:
        shape = tuple(int(rng.integers(0, 30)) for _ in range(int(rng.integers(0, 6))))
    array = rng.uniform(-1, 1, shape).astype(dtype)
    if array.size and dtype.startswith("float") and rng.random() < 0.3:
        array.flat[int(rng.integers(array.size))] = rng.choice([np.nan, np.inf, -np.inf])
    return array


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_runners_under_random_arrays(fmt, exported):
    runner = _runner(fmt, exported)
    rng = np.random.default_rng(1)
    outcomes = {"answered": 0, "ValueError": 0}
    for _ in range(RANDOM_ARRAYS):
        array = _random_array(rng)
        try:
            probabilities = runner.predict(array)
        except ValueError:
            outcomes["ValueError"] += 1
            continue
        assert probabilities.shape == (len(array), len(LABELS))
        assert np.isfinite(probabilities).all()
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
        outcomes["answered"] += 1
    assert outcomes["answered"] > 10 and outcomes["ValueError"] > 100, outcomes
