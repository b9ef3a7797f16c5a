"""Export: SavedModel for TF Serving and TFLite for LiteRT, checked with the real runtimes.

One small Inception-ResNet-v2 (reduced width, 75x75) is trained briefly on the embedded digits in
a module fixture that writes a training run directory in the contract layout; ``export.py`` then
exports it to every format once, and the tests check that export.
"""

import base64
import json
import os
import re
import signal
import struct
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

import keras
from inception import models
from inception import data as data_lib
from inception.export import data as export_data
from inception.export import litert, saved_model, tflite, warmup

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 75
NAME = "irv2"
FORMATS = ("saved_model", "tflite_fp32", "tflite_fp16", "tflite_dynamic", "tflite_int8")
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow")


def _run(args, timeout=600, **kwargs):
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=timeout, **kwargs)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data_dir):
    """A trained run directory: ema_model.keras, labels.txt, run_config.json."""
    keras.utils.set_random_seed(0)
    pipe = data_lib.InputPipeline(data_lib.EMBEDDED_DATASET, split="train", image_size=SIZE,
                                  global_batch_size=4096, is_training=False, data_dir=data_dir)
    images, labels = next(iter(pipe.input_fn(None)))
    options = dict(variant="paper", width_multiplier=0.125, input_shape=(SIZE, SIZE, 3),
                   num_classes=10, bn_momentum=0.9, dropout_rate=0.0)
    model = models.build("inception_resnet_v2", **options)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy",
                  jit_compile=False)
    model.fit(images.numpy(), labels.numpy(), batch_size=32, epochs=3, verbose=0)
    directory = tmp_path_factory.mktemp("run")
    model.save(directory / "ema_model.keras")
    (directory / "labels.txt").write_text("\n".join(pipe.info.label_names) + "\n")
    config = dict(model="inception_resnet_v2", variant="paper", width_multiplier=0.125,
                  image_size=SIZE, num_classes=10, dataset=data_lib.EMBEDDED_DATASET,
                  data_dir=data_dir, build_options=dict(options, input_shape=[SIZE, SIZE, 3]))
    (directory / "run_config.json").write_text(json.dumps(config))
    return str(directory)


@pytest.fixture(scope="module")
def keras_model(run_dir):
    return keras.saving.load_model(os.path.join(run_dir, "ema_model.keras"), compile=False)


@pytest.fixture(scope="module")
def validation(data_dir):
    """(encoded images, labels, preprocessed float images) of the whole validation split."""
    encoded, labels = export_data.encoded_eval_images(data_lib.EMBEDDED_DATASET, None, data_dir)
    return encoded, labels, export_data.preprocess(encoded, SIZE)


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory):
    """Runs the real command once; returns (export dir, report, stdout + stderr)."""
    out = str(tmp_path_factory.mktemp("exports"))
    result = _run(["export.py", f"--model_dir={run_dir}", f"--export_dir={out}", f"--name={NAME}",
                   f"--formats={','.join(FORMATS)}", "--calibration_images=100",
                   "--latency_repeats=3"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    with open(os.path.join(out, f"{NAME}-artifacts", "1", "export_report.json")) as f:
        report = json.load(f)
    return out, report, result.stdout + result.stderr


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(os.path.join(exported[0], NAME, "1"))


# ---- the command and its report -------------------------------------------------------------

def test_report_covers_every_variant_with_real_measurements(exported, validation, keras_model):
    out, report, stdout = exported
    encoded, labels, images = validation
    assert sorted(report["variants"]) == sorted(FORMATS)
    assert report["eval"]["num_images"] == len(labels) == 359
    assert report["labels"] == [str(d) for d in range(10)]
    reference = keras_model.predict(images, verbose=0)
    assert report["keras"]["top1_accuracy"] == pytest.approx(np.mean(reference.argmax(1) == labels))
    assert report["keras"]["top1_accuracy"] > 0.8  # a trained model, or agreement means little
    for name, entry in report["variants"].items():
        assert entry["size_bytes"] == _size(entry["path"]) > 0, name
        assert entry["latency_ms_per_image"] > 0, name
        assert 0 <= entry["max_abs_prob_diff"] <= 1, name
        assert name in stdout  # the printed table
    variants = report["variants"]
    assert variants["tflite_fp32"]["top1_agreement"] >= 0.999
    assert variants["tflite_fp16"]["top1_agreement"] >= 0.999
    assert variants["tflite_int8"]["top1_agreement"] >= 0.98
    assert variants["saved_model"]["loader"] == "tf.compat.v1 session"  # as TF Serving loads it
    assert variants["saved_model"]["max_abs_prob_diff"] <= 1e-5
    assert variants["saved_model"]["image_bytes"]["max_abs_prob_diff"] <= 1e-5
    # Quantisation is visible: fp16 weights halve the file, int8 quarters it.
    assert variants["tflite_fp16"]["size_bytes"] < 0.6 * variants["tflite_fp32"]["size_bytes"]
    assert variants["tflite_int8"]["size_bytes"] < 0.4 * variants["tflite_fp32"]["size_bytes"]


def _size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def test_report_numbers_match_an_independent_litert_run(exported, validation, keras_model):
    """Recomputes the int8 row with the LiteRT interpreter directly (not via the exporter)."""
    from ai_edge_litert.interpreter import Interpreter

    _, report, _ = exported
    entry = report["variants"]["tflite_int8"]
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
    reference = keras_model.predict(images, verbose=0)
    agree = np.mean(probabilities.argmax(1) == reference.argmax(1))
    assert agree == pytest.approx(entry["top1_agreement"])
    assert np.abs(probabilities - reference).max() == pytest.approx(entry["max_abs_prob_diff"], abs=1e-6)


# ---- SavedModel in a fresh process ----------------------------------------------------------

FRESH = textwrap.dedent("""
    import base64, json, sys
    import numpy as np
    import tensorflow as tf
    path, images_npy, request_json, result_json = sys.argv[1:]
    model = tf.saved_model.load(path)
    images = np.load(images_npy)
    by_images = model.signatures["predict_images"](images=tf.constant(images))
    # What TF Serving's REST handler does with a row-format request: {"b64": ...} objects are
    # base64-decoded into the bytes of the string input (named with the _bytes suffix).
    with open(request_json) as f:
        request = json.load(f)
    decoded = [base64.b64decode(row["b64"]) for row in request["instances"]]
    by_bytes = model.signatures["serving_default"](image_bytes=tf.constant(decoded))
    json.dump({
        "inception_imported": any(m == "inception" or m.startswith("inception.") for m in sys.modules),
        "signatures": sorted(model.signatures.keys()),
        "outputs": sorted(by_bytes.keys()),
        "inputs": {k: str(v) for k, v in model.signatures["serving_default"].structured_input_signature[1].items()},
        "by_images": by_images["probabilities"].numpy().tolist(),
        "by_bytes": by_bytes["probabilities"].numpy().tolist(),
        "labels": by_bytes["top_k_labels"].numpy().astype(str).tolist(),
        "ids": by_bytes["top_k_ids"].numpy().tolist(),
    }, open(result_json, "w"))
""")


def test_fresh_process_saved_model_matches_keras_through_both_signatures(
        exported, validation, keras_model, tmp_path):
    out, _, _ = exported
    encoded, _, images = validation
    encoded, images = encoded[:24], images[:24]
    np.save(tmp_path / "images.npy", images)
    request = {"instances": [{"b64": base64.b64encode(b).decode("ascii")} for b in encoded]}
    (tmp_path / "request.json").write_text(json.dumps(request))
    (tmp_path / "fresh.py").write_text(FRESH)
    result = _run([str(tmp_path / "fresh.py"), os.path.join(out, NAME, "1"),
                   str(tmp_path / "images.npy"), str(tmp_path / "request.json"),
                   str(tmp_path / "result.json")], timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    got = json.loads((tmp_path / "result.json").read_text())
    assert got["inception_imported"] is False
    assert got["signatures"] == ["predict_images", "serving_default"]
    assert got["outputs"] == ["probabilities", "top_k_ids", "top_k_labels", "top_k_scores"]
    assert "image_bytes" in got["inputs"]
    reference = keras_model.predict(images, verbose=0)
    assert np.abs(np.array(got["by_images"]) - reference).max() <= 1e-5
    assert np.abs(np.array(got["by_bytes"]) - reference).max() <= 1e-5
    # top-k: the labels travel inside the model and match the ids.
    ids = np.array(got["ids"])
    np.testing.assert_array_equal(ids[:, 0], reference.argmax(1))
    assert got["labels"] == [[str(i) for i in row] for row in ids]


# ---- SavedModel through the session loader (TF Serving's and saved_model_cli's path) ---------

SESSION = textwrap.dedent("""
    # What TF Serving's C++ loader does, in Python: import the MetaGraph, run the saver's restore
    # op and the init op (tf.compat.v1 loader), then run signatures by their tensor names.
    import base64, json, os, sys
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2
    spec = json.load(open(sys.argv[1]))
    path = spec["path"]
    good = [base64.b64decode(x) for x in spec["good"]]
    bad = {k: base64.b64decode(v) for k, v in spec["bad"].items()}
    warmup = [prediction_log_pb2.PredictionLog.FromString(r) for r in
              tf.compat.v1.io.tf_record_iterator(os.path.join(path, "assets.extra",
                                                              "tf_serving_warmup_requests"))]
    checkpoint = [k for k, _ in tf.train.list_variables(os.path.join(path, "variables", "variables"))
                  if k != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    result = {"inception_imported": None}
    with tf.Graph().as_default() as graph, tf.compat.v1.Session() as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
        sigs = meta.signature_def

        def run(name, feeds):
            sig = sigs[name]
            keys = sorted(sig.outputs)
            values = sess.run([sig.outputs[k].name for k in keys],
                              {sig.inputs[k].name: v for k, v in feeds.items()})
            return dict(zip(keys, values))

        handles = [op for op in graph.get_operations() if op.type == "VarHandleOp"]
        initialised = sess.run([tf.raw_ops.VarIsInitializedOp(resource=op.outputs[0])
                                for op in handles])
        result.update(variable_handles=len(handles), initialised=int(sum(initialised)),
                      checkpoint_variables=len(checkpoint), assets=len(meta.asset_file_def),
                      signatures=sorted(sigs))
        by_images = run("predict_images", {"images": np.load(spec["images_npy"])})
        by_bytes = run("serving_default", {"image_bytes": good})
        result.update(by_images=by_images["probabilities"].tolist(),
                      by_bytes=by_bytes["probabilities"].tolist(),
                      ids=by_bytes["top_k_ids"].tolist(),
                      labels=by_bytes["top_k_labels"].astype(str).tolist())
        one = run("serving_default", {"image_bytes": good[:1]})["probabilities"]
        result["bad"] = {}
        for case, data in bad.items():
            try:
                run("serving_default", {"image_bytes": [good[0], data]})
                answer = {"error": None}
            except tf.errors.OpError as err:
                answer = {"error": type(err).__name__, "message": err.message}
            after = run("serving_default", {"image_bytes": good[:1]})["probabilities"]
            answer["next_request_same"] = bool(np.array_equal(after, one))
            result["bad"][case] = answer
        result["warmup"] = []
        for log in warmup:  # replayed as the server does at load time, request by request
            request = log.predict_log.request
            name = request.model_spec.signature_name or "serving_default"
            feeds = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            out = run(name, feeds)
            result["warmup"].append({"model": request.model_spec.name, "signature": name,
                                     "inputs": sorted(feeds), "batch": len(feeds["image_bytes"]),
                                     "probabilities": list(out["probabilities"].shape)})
    result["inception_imported"] = any(m == "inception" or m.startswith("inception.")
                                       for m in sys.modules)
    json.dump(result, open(spec["result"], "w"))
""")


def _any_size_variants(jpeg):
    """PNG, a large JPEG (333x517) and a grayscale PNG made from one JPEG."""
    pixels = tf.io.decode_jpeg(jpeg, channels=3)
    big = tf.image.resize(pixels, [333, 517], method="nearest")
    return [tf.io.encode_png(pixels).numpy(), tf.io.encode_jpeg(tf.cast(big, tf.uint8)).numpy(),
            tf.io.encode_png(tf.image.rgb_to_grayscale(pixels)).numpy()]


def test_session_loader_serves_like_tf_serving(exported, validation, keras_model, tmp_path):
    """Fresh process, nothing from ``inception``: the tf.compat.v1 loader path of TF Serving."""
    out, _, _ = exported
    encoded, _, images = validation
    good = list(encoded[:16]) + _any_size_variants(encoded[0])
    np.save(tmp_path / "images.npy", images[:16])
    spec = {"path": os.path.join(out, NAME, "1"), "images_npy": str(tmp_path / "images.npy"),
            "result": str(tmp_path / "result.json"),
            "good": [base64.b64encode(b).decode("ascii") for b in good],
            "bad": {k: base64.b64encode(v).decode("ascii")
                    for k, v in _bad_inputs(encoded[0]).items()}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "session.py").write_text(SESSION)
    result = _run([str(tmp_path / "session.py"), str(tmp_path / "spec.json")], timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    got = json.loads((tmp_path / "result.json").read_text())
    assert got["inception_imported"] is False
    # Every variable handle in the graph is filled at load: the checkpoint's variables plus one
    # string variable per asset (its path). The broken export had ~2x handles, half unrestored.
    assert got["initialised"] == got["variable_handles"]
    assert got["variable_handles"] == got["checkpoint_variables"] + got["assets"]
    assert got["assets"] == 1  # labels.txt
    assert got["signatures"] == ["__saved_model_init_op", "predict_images", "serving_default"]
    reference = keras_model.predict(images[:16], verbose=0)
    assert np.abs(np.array(got["by_images"]) - reference).max() <= 1e-5
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
        assert replay == {"model": NAME, "signature": "serving_default", "inputs": ["image_bytes"],
                          "batch": replay["batch"], "probabilities": [replay["batch"], 10]}


def _saved_model_cli(*args):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    command = [cli] if os.path.exists(cli) else [sys.executable, "-m",
                                                 "tensorflow.python.tools.saved_model_cli"]
    return subprocess.run(command + list(args), cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=300)


def _parse_show_all(text):
    """saved_model_cli show --all -> {signature: {"inputs"|"outputs": {key: (dtype, shape)}}}."""
    signatures = {}
    for block in re.split(r"\nsignature_def\['", text)[1:]:
        name = block.split("'", 1)[0]
        entry = signatures[name] = {"inputs": {}, "outputs": {}}
        for kind, key, dtype, shape in re.findall(
                r"(inputs|outputs)\['([^']+)'\] tensor_info:\s+dtype: (\w+)\s+shape: ([^\n]+)",
                block):
            entry[kind][key] = (dtype, shape.strip())
        entry["method"] = re.search(r"Method name is: ([^\n]*)", block).group(1).strip()
    return signatures


def test_saved_model_cli_show_lists_exactly_the_documented_signatures(exported):
    out, _, _ = exported
    result = _saved_model_cli("show", "--all", "--dir", os.path.join(out, NAME, "1"))
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = {"probabilities": ("DT_FLOAT", "(-1, 10)"), "top_k_ids": ("DT_INT32", "(-1, 5)"),
               "top_k_labels": ("DT_STRING", "(-1, 5)"), "top_k_scores": ("DT_FLOAT", "(-1, 5)")}
    predict = "tensorflow/serving/predict"
    signatures = _parse_show_all(result.stdout)
    # __saved_model_init_op is TensorFlow's own entry (the init op); servers do not expose it.
    assert signatures.pop("__saved_model_init_op")["inputs"] == {}
    assert signatures == {
        "serving_default": {"inputs": {"image_bytes": ("DT_STRING", "(-1)")},
                            "outputs": outputs, "method": predict},
        "predict_images": {"inputs": {"images": ("DT_FLOAT", f"(-1, {SIZE}, {SIZE}, 3)")},
                           "outputs": outputs, "method": predict},
    }


def test_saved_model_cli_run_answers_both_signatures(exported, validation, keras_model, tmp_path):
    out, _, _ = exported
    encoded, _, images = validation
    path = os.path.join(out, NAME, "1")
    reference = keras_model.predict(images[:4], verbose=0)
    np.save(tmp_path / "images.npy", images[:4])
    np.save(tmp_path / "bytes.npy", np.array(list(encoded[:4]), dtype=object))
    for signature, inputs in (("predict_images", f"images={tmp_path / 'images.npy'}"),
                              ("serving_default", f"image_bytes={tmp_path / 'bytes.npy'}")):
        outdir = tmp_path / signature
        result = _saved_model_cli("run", "--dir", path, "--tag_set", "serve", "--signature_def",
                                  signature, "--inputs", inputs, "--outdir", str(outdir))
        assert result.returncode == 0, (signature, result.stderr[-3000:])
        probabilities = np.load(outdir / "probabilities.npy")
        assert np.abs(probabilities - reference).max() <= 1e-5, signature
        labels = np.load(outdir / "top_k_labels.npy", allow_pickle=True)
        assert [label.decode() for label in labels[:, 0]] == [str(i) for i in reference.argmax(1)]


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
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            data[i + 5:i + 9] = struct.pack(">HH", height, width)
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
    "huge_png": r"too large.*\[100000\] \[90000\]",
    "huge_jpeg": r"too large.*\[65000\] \[64000\]",
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
        "truncated_jpeg": good[:len(good) // 3],
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


def test_size_limit_is_checked_before_decoding(run_dir, tmp_path):
    """A model exported with a small pixel limit refuses a real (decodable) image above it."""
    from inception.export import source
    src = source.from_run_dir(run_dir)
    labels_file = saved_model.write_labels(str(tmp_path / "labels.txt"), src.labels)
    module = saved_model.ServingFunctions(src.model, labels_file, src.image_size, max_pixels=4000)
    serve_bytes = tf.function(module.serve_bytes, input_signature=module.bytes_signature)
    ok = tf.io.encode_png(tf.zeros([60, 60, 3], tf.uint8))
    too_big = tf.io.encode_png(tf.zeros([70, 60, 3], tf.uint8))
    assert serve_bytes(tf.stack([ok]))["probabilities"].shape == (1, 10)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[70\] \[60\].*limit is\] \[4000\]"):
        serve_bytes(tf.stack([too_big]))


def test_predict_images_rejects_nan(loaded):
    images = np.zeros((1, SIZE, SIZE, 3), np.float32)
    images[0, 3, 3, 1] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or Inf"):
        loaded.signatures["predict_images"](images=tf.constant(images))


# ---- layout, warmup, atomic publishing -------------------------------------------------------

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


def test_layout_labels_asset_and_tflite_metadata(exported):
    out, report, _ = exported
    assert sorted(os.listdir(out)) == [NAME, f"{NAME}-artifacts"]
    assert os.listdir(os.path.join(out, NAME)) == ["1"]
    labels = open(os.path.join(out, NAME, "1", "assets", "labels.txt")).read().split()
    assert labels == [str(d) for d in range(10)]
    for fmt in FORMATS[1:]:
        meta = litert.read_metadata(report["variants"][fmt]["path"])
        assert meta["labels"] == labels and meta["image_size"] == SIZE


def test_tflite_conversion_takes_the_supported_path(exported):
    """Converted from a SavedModel: no deprecation warning, and the file carries a signature."""
    from ai_edge_litert.interpreter import Interpreter

    _, report, output = exported
    assert "deprecated conversion path" not in output
    for fmt in FORMATS[1:]:
        interpreter = Interpreter(model_path=report["variants"][fmt]["path"])
        assert interpreter.get_signature_list() == {
            "serving_default": {"inputs": ["images"], "outputs": ["probabilities"]}}, fmt


def test_versions_increment_and_existing_versions_are_refused(tmp_path):
    base = tmp_path / "m"
    assert saved_model.next_version(str(base)) == 1
    (base / "3").mkdir(parents=True)
    (base / "notes").mkdir()
    (tmp_path / "m-artifacts" / "7").mkdir(parents=True)
    assert saved_model.next_version(str(base)) == 4
    assert saved_model.next_version(str(base), str(tmp_path / "m-artifacts")) == 8
    with pytest.raises(FileExistsError, match="version 3 already exists"):
        saved_model.publish(str(base), 3, lambda d: None)


def test_failed_write_publishes_nothing(tmp_path):
    def write(directory):
        open(os.path.join(directory, "saved_model.pb"), "wb").write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        saved_model.publish(str(tmp_path), 1, write)
    assert os.listdir(tmp_path) == []


KILLED = textwrap.dedent("""
    import runpy, sys, time
    from inception.export import saved_model
    marker = sys.argv[1]
    def stall(directory):  # called once everything is written, just before the rename
        open(marker, "w").write(directory)
        time.sleep(600)
    saved_model._fsync_tree = stall
    sys.argv = ["export.py"] + sys.argv[2:]
    runpy.run_path("export.py", run_name="__main__")
""")


def test_killed_export_leaves_no_version_directory(run_dir, tmp_path):
    out = tmp_path / "out"
    marker = tmp_path / "writing"
    process = subprocess.Popen(  # -c: the repository root (cwd) is on sys.path
        [sys.executable, "-c", KILLED, str(marker), f"--model_dir={run_dir}",
         f"--export_dir={out}", f"--name={NAME}", "--formats=saved_model", "--eval_images=0",
         "--latency_repeats=1"],
        cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 300
        while not marker.exists():
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            assert time.time() < deadline, "export never reached the rename"
            time.sleep(0.5)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        process.stderr.close()
    base = out / NAME
    temporaries = [n for n in os.listdir(base) if n.startswith(".tmp-")]
    assert len(temporaries) == 1  # killed mid-export: the files exist, under a temporary name
    assert (base / temporaries[0] / "saved_model.pb").exists()
    assert not [n for n in os.listdir(base) if n.isdigit()]
    # The next export removes the dead process's leftovers and publishes version 1.
    assert saved_model.remove_stale_temporaries(str(base)) == temporaries
    assert os.listdir(base) == []


# ---- the TFLite prediction command -----------------------------------------------------------

def test_predict_tflite_prints_top5_like_the_saved_model(exported, loaded, validation, tmp_path,
                                                         data_dir):
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
    result = _run(["-m", "inception_cli.predict_tflite", f"--model={model}", *files,
                   str(tmp_path / "notes.txt"), "--validation_images=2", f"--data_dir={data_dir}",
                   f"--image_out_dir={tmp_path / 'val'}"], timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]  # one file was not an image
    assert "notes.txt: cannot use this image: " in result.stderr
    assert "not a JPEG or PNG" in result.stderr
    blocks = result.stdout.strip().split("\n")
    expected = loaded.signatures["serving_default"](
        image_bytes=tf.constant([open(f, "rb").read() for f in files]))
    for i, path in enumerate(files):
        start = blocks.index(path)
        lines = blocks[start + 1:start + 6]
        assert len(lines) == 5
        names = [line.split()[1] for line in lines]
        scores = [float(line.split()[2]) for line in lines]
        assert names == expected["top_k_labels"][i].numpy().astype(str).tolist()
        np.testing.assert_allclose(scores, expected["top_k_scores"][i].numpy(), atol=1e-4)
    # --validation_images: the dataset named inside the .tflite file, with the true labels.
    truths = [line.split("(true label: ")[1].rstrip(")") for line in blocks if "(true label:" in line]
    assert truths == [str(label) for label in labels[:2]]


def test_export_command_rejects_bad_flags(tmp_path):
    result = _run(["export.py", f"--export_dir={tmp_path}"], timeout=120)
    assert result.returncode != 0
    assert "exactly one of --model_dir" in result.stderr
    result = _run(["export.py", f"--model_dir={tmp_path}", f"--export_dir={tmp_path}",
                   "--formats=saved_model,onnx"], timeout=120)
    assert result.returncode != 0 and "unknown --formats ['onnx']" in result.stderr
    result = _run(["export.py", f"--model_dir={tmp_path}", f"--export_dir={tmp_path}"], timeout=120)
    assert result.returncode != 0 and "missing ema_model.keras" in result.stderr


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


def test_int8_with_integer_io_runs_in_litert_and_agrees(run_dir, validation, keras_model, data_dir):
    """--int8_io=int8: int8 input/output tensors; the runner quantises with their scale/zero point."""
    from inception.export import source

    src = source.from_run_dir(run_dir)
    calibration = export_data.calibration_images(data_lib.EMBEDDED_DATASET, SIZE, 100, data_dir)
    blob = tflite.export_variant(src, "int8", calibration, int8_io="int8")
    meta = litert.read_metadata(blob)
    assert meta["int8_io"] == "int8" and meta["labels"] == src.labels
    path = os.path.join(os.path.dirname(run_dir), "int8io.tflite")
    with open(path, "wb") as f:
        f.write(blob)
    runner = litert.LiteRTClassifier(path)
    assert runner.interpreter.get_input_details()[0]["dtype"] == np.int8
    assert runner.interpreter.get_output_details()[0]["dtype"] == np.int8
    _, _, images = validation
    probabilities = runner.predict(images)
    reference = keras_model.predict(images, verbose=0)
    assert np.mean(probabilities.argmax(1) == reference.argmax(1)) >= 0.98
    assert np.abs(probabilities - reference).max() < 0.5
