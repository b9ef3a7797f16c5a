"""The SavedModel for TF Serving (``inception.export.saved_model``) of the shared export
(tests/export_fixtures.py): TensorFlow's two loaders in a fresh process that imports nothing from
this project (tests/programs/serve_saved_model.py), ``saved_model_cli``, images of any size, bad
input, the pixel limit, the warmup file and the serving client's requests.
"""

import base64
import json
import os
import re
import struct
import sys

import numpy as np
import pytest
import tensorflow as tf

from export_fixtures import NAME, PROGRAMS, SIZE, Started
from inception.export import data as export_data
from inception.export import saved_model, warmup


def _saved_model_cli_command(*args):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    if not os.path.exists(cli):
        return [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", *args]
    return [cli, *args]


@pytest.fixture(scope="module")
def fresh(exported, validation, tmp_path_factory):
    """The fresh-process checks of the shared export, all started at once: each is mostly
    TensorFlow's start-up, so on two cores they run side by side, and beside the in-process tests
    (the first test asks for this fixture to start them early)."""
    out, _, _ = exported
    encoded, _, images = validation
    tmp = tmp_path_factory.mktemp("fresh")
    path = os.path.join(out, NAME, "1")
    jobs = {
        "serving": _start_serving(path, encoded, images, tmp),
        "show": Started(_saved_model_cli_command("show", "--all", "--dir", path), tmp, "show"),
    }
    np.save(tmp / "images4.npy", images[:4])
    np.save(tmp / "bytes4.npy", np.array(list(encoded[:4]), dtype=object))
    for signature, inputs in (
        ("predict_images", f"images={tmp / 'images4.npy'}"),
        ("serving_default", f"image_bytes={tmp / 'bytes4.npy'}"),
    ):
        jobs[signature] = Started(
            _saved_model_cli_command(
                "run",
                "--dir",
                path,
                "--tag_set",
                "serve",
                "--signature_def",
                signature,
                "--inputs",
                inputs,
                "--outdir",
                str(tmp / signature),
            ),
            tmp,
            signature,
            {"outdir": tmp / signature},
        )
    yield jobs
    for started in jobs.values():
        started.stop()


# ---- SavedModel in a fresh process: TensorFlow's two loaders ---------------------------------


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _start_serving(path, encoded, images, tmp):
    """One fresh process loads the SavedModel with both TensorFlow loaders (the inputs of each
    are as before: 24 images and a REST body; 16 images, any-size files and bad inputs)."""
    np.save(tmp / "images24.npy", images[:24])
    request = {"instances": [{"b64": _b64(b)} for b in encoded[:24]]}
    (tmp / "request.json").write_text(json.dumps(request))
    good = list(encoded[:16]) + _any_size_variants(encoded[0])
    np.save(tmp / "images16.npy", images[:16])
    spec = {
        "result": str(tmp / "serving.json"),
        "object": {
            "path": path,
            "images_npy": str(tmp / "images24.npy"),
            "request_json": str(tmp / "request.json"),
        },
        "session": {
            "path": path,
            "images_npy": str(tmp / "images16.npy"),
            "good": [_b64(b) for b in good],
            "bad": {k: _b64(v) for k, v in _bad_inputs(encoded[0]).items()},
        },
    }
    (tmp / "spec.json").write_text(json.dumps(spec))
    return Started(
        [sys.executable, os.path.join(PROGRAMS, "serve_saved_model.py"), str(tmp / "spec.json")],
        tmp,
        "serving",
        {"result": tmp / "serving.json", "good": good},
    )


@pytest.fixture(scope="module")
def served(fresh):
    job = fresh["serving"]
    result = job.result()
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(job.files["result"].read_text()), job.files["good"]


@pytest.mark.usefixtures("fresh")  # the fresh-process checks start now and run beside the rest
def test_fresh_process_saved_model_matches_keras_through_both_signatures(served, reference):
    everything, _ = served
    got = everything["object"]
    assert everything["inception_imported"] is False
    assert got["signatures"] == ["predict_images", "serving_default"]
    assert got["outputs"] == ["probabilities", "top_k_ids", "top_k_labels", "top_k_scores"]
    assert "image_bytes" in got["inputs"]
    assert np.abs(np.array(got["by_images"]) - reference[:24]).max() <= 1e-5
    assert np.abs(np.array(got["by_bytes"]) - reference[:24]).max() <= 1e-5
    # top-k: the labels travel inside the model and match the ids.
    ids = np.array(got["ids"])
    np.testing.assert_array_equal(ids[:, 0], reference[:24].argmax(1))
    assert got["labels"] == [[str(i) for i in row] for row in ids]


def test_session_loader_serves_like_tf_serving(served, keras_model, reference):
    """Fresh process, nothing from ``inception``: the tf.compat.v1 loader path of TF Serving."""
    everything, good = served
    got = everything["session"]
    assert everything["inception_imported"] is False
    # Every variable handle in the graph is filled at load: the checkpoint's variables plus one
    # string variable per asset (its path). The broken export had ~2x handles, half unrestored.
    assert got["initialised"] == got["variable_handles"]
    assert got["variable_handles"] == got["checkpoint_variables"] + got["assets"]
    assert got["assets"] == 1  # labels.txt
    assert got["signatures"] == ["__saved_model_init_op", "predict_images", "serving_default"]
    assert np.abs(np.array(got["by_images"]) - reference[:16]).max() <= 1e-5
    reference_bytes = keras_model.predict(export_data.preprocess(good, SIZE), verbose=0)
    assert np.abs(np.array(got["by_bytes"]) - reference_bytes).max() <= 1e-5
    ids = np.array(got["ids"])
    np.testing.assert_array_equal(ids[:, 0], reference_bytes.argmax(1))
    assert got["labels"] == [[str(i) for i in row] for row in ids]  # from assets/labels.txt
    assert sorted(got["bad"]) == sorted(BAD_CASES)
    for case, answer in got["bad"].items():
        assert answer["error"] == "InvalidArgumentError", (case, answer)
        assert re.search(BAD_CASES[case], answer["message"]), (case, answer["message"][:500])
        assert answer["next_request_same"], case
    assert [w["batch"] for w in got["warmup"]] == [1, 8]
    for replay in got["warmup"]:
        assert replay == {
            "model": NAME,
            "signature": "serving_default",
            "inputs": ["image_bytes"],
            "batch": replay["batch"],
            "probabilities": [replay["batch"], 10],
        }


# ---- SavedModel through saved_model_cli ------------------------------------------------------


def _parse_show_all(text):
    """saved_model_cli show --all -> {signature: {"inputs"|"outputs": {key: (dtype, shape)}}}."""
    signatures = {}
    for block in re.split(r"\nsignature_def\['", text)[1:]:
        name = block.split("'", 1)[0]
        entry = signatures[name] = {"inputs": {}, "outputs": {}}
        for kind, key, dtype, shape in re.findall(
            r"(inputs|outputs)\['([^']+)'\] tensor_info:\s+dtype: (\w+)\s+shape: ([^\n]+)", block
        ):
            entry[kind][key] = (dtype, shape.strip())
        entry["method"] = re.search(r"Method name is: ([^\n]*)", block).group(1).strip()
    return signatures


def test_saved_model_cli_show_lists_exactly_the_documented_signatures(fresh):
    result = fresh["show"].result()
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = {
        "probabilities": ("DT_FLOAT", "(-1, 10)"),
        "top_k_ids": ("DT_INT32", "(-1, 5)"),
        "top_k_labels": ("DT_STRING", "(-1, 5)"),
        "top_k_scores": ("DT_FLOAT", "(-1, 5)"),
    }
    predict = "tensorflow/serving/predict"
    signatures = _parse_show_all(result.stdout)
    # __saved_model_init_op is TensorFlow's own entry (the init op); servers do not expose it.
    assert signatures.pop("__saved_model_init_op")["inputs"] == {}
    assert signatures == {
        "serving_default": {
            "inputs": {"image_bytes": ("DT_STRING", "(-1)")},
            "outputs": outputs,
            "method": predict,
        },
        "predict_images": {
            "inputs": {"images": ("DT_FLOAT", f"(-1, {SIZE}, {SIZE}, 3)")},
            "outputs": outputs,
            "method": predict,
        },
    }


def test_saved_model_cli_run_answers_both_signatures(fresh, reference):
    for signature in ("predict_images", "serving_default"):
        result = fresh[signature].result()
        assert result.returncode == 0, (signature, result.stderr[-3000:])
        outdir = fresh[signature].files["outdir"]
        probabilities = np.load(outdir / "probabilities.npy")
        assert np.abs(probabilities - reference[:4]).max() <= 1e-5, signature
        labels = np.load(outdir / "top_k_labels.npy", allow_pickle=True)
        assert [label.decode() for label in labels[:, 0]] == [
            str(i) for i in reference[:4].argmax(1)
        ]


def _any_size_variants(jpeg):
    """PNG, a large JPEG (333x517) and a grayscale PNG made from one JPEG."""
    pixels = tf.io.decode_jpeg(jpeg, channels=3)
    big = tf.image.resize(pixels, [333, 517], method="nearest")
    return [
        tf.io.encode_png(pixels).numpy(),
        tf.io.encode_jpeg(tf.cast(big, tf.uint8)).numpy(),
        tf.io.encode_png(tf.image.rgb_to_grayscale(pixels)).numpy(),
    ]


def test_png_and_jpeg_of_any_size_are_accepted(loaded, validation, keras_model):
    encoded, _, _ = validation
    variants = _any_size_variants(encoded[0])
    out = loaded.signatures["serving_default"](image_bytes=tf.constant(variants))
    reference = keras_model.predict(export_data.preprocess(variants, SIZE), verbose=0)
    np.testing.assert_allclose(out["probabilities"].numpy(), reference, atol=1e-5)


# ---- bad input -------------------------------------------------------------------------------


def _jpeg_claiming(height, width, real_jpeg):
    """A valid JPEG whose SOF marker is rewritten to claim height x width."""
    data = bytearray(real_jpeg)
    i = 2
    while i < len(data):
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            data[i + 5 : i + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        i += 2 + length
    raise AssertionError("no SOF marker")


def _png_claiming(height, width):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\0\0\0\0"


BAD_CASES = {
    "empty": r"empty string",
    "text": r"not a JPEG or PNG",
    "gif": r"not a JPEG or PNG",
    "huge_png": r"too large.*100000 x 90000",
    "huge_jpeg": r"too large.*65000 x 64000",
    "truncated_png_header": r"PNG header is truncated",
    "truncated_jpeg": r"(?i)jpeg",
    "corrupt_png": r"(?i)png|crc|invalid",
}


def _bad_inputs(good):
    """{case: bytes} for every BAD_CASES entry, built from one good JPEG."""
    png = tf.io.encode_png(tf.io.decode_jpeg(good, channels=3)).numpy()
    return {
        "empty": b"",
        "text": b"this is not an image",
        "gif": b"GIF89a" + b"\0" * 40,
        "huge_png": _png_claiming(100000, 90000),
        "huge_jpeg": _jpeg_claiming(65000, 64000, good),
        "truncated_png_header": png[:20],
        "truncated_jpeg": good[: len(good) // 3],
        "corrupt_png": png[:40] + b"\xff" * 64 + png[104:],
    }


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_gets_invalid_argument_and_the_model_keeps_answering(loaded, validation, case):
    encoded, _, _ = validation
    good = encoded[0]
    bad = _bad_inputs(good)[case]
    serve = loaded.signatures["serving_default"]
    before = serve(image_bytes=tf.constant([good]))["probabilities"].numpy()
    with pytest.raises(tf.errors.InvalidArgumentError, match=BAD_CASES[case]):
        serve(image_bytes=tf.constant([good, bad]))
    after = serve(image_bytes=tf.constant([good]))["probabilities"].numpy()
    np.testing.assert_array_equal(before, after)


def test_size_limit_is_checked_before_decoding(keras_model, tmp_path):
    """A model exported with a small pixel limit refuses a real (decodable) image above it."""
    from inception.export import classifier

    src = classifier.from_model(keras_model, [str(d) for d in range(10)])
    labels_file = saved_model.write_labels(str(tmp_path / "labels.txt"), src.labels)
    module = saved_model.ServingFunctions(src.model, labels_file, src.image_size, max_pixels=4000)
    serve_bytes = tf.function(module.serve_bytes, input_signature=module.bytes_signature)
    ok = tf.io.encode_png(tf.zeros([60, 60, 3], tf.uint8))
    too_big = tf.io.encode_png(tf.zeros([70, 60, 3], tf.uint8))
    assert serve_bytes(tf.stack([ok]))["probabilities"].shape == (1, 10)
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=r"70 x 60 = 4200 pixels; the limit is 4000"
    ):
        serve_bytes(tf.stack([too_big]))


def test_predict_images_rejects_nan(loaded):
    images = np.zeros((1, SIZE, SIZE, 3), np.float32)
    images[0, 3, 3, 1] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or Inf"):
        loaded.signatures["predict_images"](images=tf.constant(images))


# ---- warmup, serving client ------------------------------------------------------------------


def test_warmup_file_parses_and_replays(exported, loaded):
    out, _, _ = exported
    path = os.path.join(out, NAME, "1", "assets.extra", "tf_serving_warmup_requests")
    logs = warmup.read(path)
    assert len(logs) >= 1
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == NAME
        assert request.model_spec.signature_name == "serving_default"
        batch = tf.make_ndarray(request.inputs["image_bytes"])
        result = loaded.signatures["serving_default"](image_bytes=tf.constant(batch))
        assert result["probabilities"].shape == (len(batch), 10)


def test_serving_client_requests_run_on_the_model(loaded, validation):
    """The client's gRPC PredictRequest and REST body, decoded as the server does, get answers."""
    from inception_cli import serving_client

    encoded, _, _ = validation
    images = encoded[:3]
    expected = loaded.signatures["serving_default"](image_bytes=tf.constant(images))
    request = serving_client.grpc_request(NAME, images)
    assert request.model_spec.name == NAME
    batch = tf.make_ndarray(request.inputs["image_bytes"])
    got = loaded.signatures[request.model_spec.signature_name](image_bytes=tf.constant(batch))
    np.testing.assert_array_equal(got["probabilities"], expected["probabilities"])
    body = json.loads(json.dumps(serving_client.rest_body(images)))
    rows = [base64.b64decode(row["b64"]) for row in body["instances"]]
    assert rows == list(images)
