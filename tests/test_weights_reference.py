"""Imported published weights compute the released networks, number for number.

The reference directory beside the repository (``../shared/reference``, see its README) holds, for
the TF-slim release definitions of Inception-v4 and Inception-ResNet-v2 and for timm's ports,
every variable's name and shape, a deterministic rule for its value, reference images and the
logits the released networks compute. The fixtures below rebuild full-size files in each format
from names + rule (each file once per module), import them and compare logits within 1e-4 of the
largest logit. keras.applications' Inception-ResNet-v2 is the third, independent reference.
"""

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

import reference_files
from inception import models
from inception.weights import WeightsError, class_names, classes, fetch, names, pretrained

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = os.path.join(os.path.dirname(ROOT), "shared", "reference")
TOLERANCE = 1e-4
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow")

pytestmark = pytest.mark.skipif(
    not os.path.isdir(REF),
    reason=f"reference fixtures not found at {REF} (clone shared/ beside the repository)",
)


@pytest.fixture(scope="module")
def rw():
    return reference_files.refweights()


def _json(name):
    with open(os.path.join(REF, name), encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def ref():
    return {
        net: {"slim": _json(f"{net}.slim.json"), "timm": _json(f"{net}.timm.json")}
        for net in ("inception_v4", "inception_resnet_v2")
    }


@pytest.fixture(scope="module")
def images(rw):
    return rw.reference_images(2, 299)


def _relative_error(ours, reference):
    ours, reference = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
    return np.max(np.abs(ours - reference), axis=1) / np.max(np.abs(reference), axis=1)


# ---------------------------------------------------------------------------------------------
# Writers of the reference files (one of each per module)


def _write_v1_checkpoint(path, keys, rw):
    """The released archives' format: TensorFlow's V1 saver, in graph mode."""
    graph = tf.Graph()
    with graph.as_default():
        variables, feeds, assigns = {}, {}, []
        for i, (key, shape) in enumerate(keys):
            variable = tf.compat.v1.Variable(tf.zeros(shape, tf.float32), name=f"v{i}")
            value = tf.compat.v1.placeholder(tf.float32, shape)
            assigns.append(variable.assign(value))
            feeds[value] = rw.slim_value(key, shape)
            variables[key] = variable
        saver = tf.compat.v1.train.Saver(
            var_list=variables, write_version=tf.compat.v1.train.SaverDef.V1
        )
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(assigns, feed_dict=feeds)
            saver.save(session, path, write_meta_graph=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory, ref, rw):
    from safetensors.numpy import save_file

    root = tmp_path_factory.mktemp("published")
    out = {}
    # Inception-v4 as released: a .tar.gz holding one V1 checkpoint.
    v4_keys = ref["inception_v4"]["slim"]["checkpoint_keys"]
    ckpt = str(root / "inception_v4.ckpt")
    _write_v1_checkpoint(ckpt, v4_keys, rw)
    out["v4_ckpt"] = ckpt
    out["v4_tar"] = str(root / "inception_v4_2016_09_09.tar.gz")
    # gzip level 0 (stored blocks): still the .tar.gz container the reader must open, without
    # 4 s of compressing 170 MB of random floats that do not compress anyway.
    with tarfile.open(out["v4_tar"], "w:gz", compresslevel=0) as archive:
        archive.add(ckpt, arcname="inception_v4.ckpt")
    # Inception-ResNet-v2 as a V2 checkpoint.
    os.makedirs(root / "irv2")
    out["irv2_prefix"] = str(root / "irv2" / "model.ckpt-1000")
    reference_files.write_v2_checkpoint(
        out["irv2_prefix"], ref["inception_resnet_v2"]["slim"]["checkpoint_keys"], rw
    )
    for net, key in (("inception_v4", "v4_timm"), ("inception_resnet_v2", "irv2_timm")):
        out[key] = str(root / f"{net}.model.safetensors")
        save_file(reference_files.timm_state(ref[net]["timm"], ref[net]["slim"], rw), out[key])
    return out


@pytest.fixture(scope="module")
def keras_h5(tmp_path_factory, images, rw):
    """keras.applications' Inception-ResNet-v2 with deterministic values, saved as a legacy .h5."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    reference = keras.applications.InceptionResNetV2(weights=None, classifier_activation=None)
    for variable in reference.weights:
        role = variable.path.rsplit("/", 1)[-1]
        variable.assign(rw.reference_value(role, "keras/" + variable.path, variable.shape))
    path = str(
        tmp_path_factory.mktemp("keras_h5")
        / "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5"
    )
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, reference)
    logits = np.asarray(reference(images, training=False))
    del reference
    return path, logits


# ---------------------------------------------------------------------------------------------
# Models (each built once) and their logits


@pytest.fixture(scope="module")
def v4_release(files, images):
    """Inception-v4 with 1001 classes and the aux head, from the .tar.gz through weights.build."""
    model = pretrained.build(
        "inception_v4",
        files["v4_tar"],
        num_classes=1001,
        aux_logits=True,
        classifier_activation=None,
    )
    logits, aux = model(images, training=False)
    return model, np.asarray(logits), np.asarray(aux)


@pytest.fixture(scope="module")
def irv2_release(files, images):
    model = pretrained.build(
        "inception_resnet_v2",
        files["irv2_prefix"],
        num_classes=1001,
        aux_logits=True,
        classifier_activation=None,
    )
    logits, aux = model(images, training=False)
    return model, np.asarray(logits), np.asarray(aux)


@pytest.fixture(scope="module")
def irv2_1000():
    return models.build("inception_resnet_v2", classifier_activation=None)


def test_name_map_uses_every_released_variable_once(ref):
    for net in ("inception_v4", "inception_resnet_v2"):
        slots = names.slots(net)
        slim = [s.slim for s in slots]
        assert len(slim) == len(set(slim)) == len(set(p.path for p in slots))
        assert set(slim) == {k for k, _ in ref[net]["slim"]["checkpoint_keys"]}
        timm = {s.timm: s.slim for s in slots if s.timm}
        assert timm == {k: v for k, v in ref[net]["timm"]["key_to_slim"].items() if v is not None}


def test_slim_inception_v4_archive_equals_slim(v4_release, ref, rw, files):
    model, logits, aux = v4_release
    slim = ref["inception_v4"]["slim"]
    assert _relative_error(logits, slim["logits"]).max() < TOLERANCE
    assert _relative_error(aux, slim["aux_logits"]).max() < TOLERANCE
    # Every variable of the model is a slot and every checkpoint key was used once.
    assert {v.path for v in model.weights} == {s.path for s in names.slots("inception_v4")}
    ids, readable = class_names(model)
    assert ids[0] == "background" and readable[1] == "tench, Tinca tinca" and len(ids) == 1001
    # The extracted V1 .ckpt gives the same values, and the report accounts for every key.
    before = [np.array(v) for v in model.weights]
    report = pretrained.load_weights(model, files["v4_ckpt"])
    assert sorted(k for k, _ in report["copied"]) == sorted(k for k, _ in slim["checkpoint_keys"])
    assert report["background"] == "kept" and not report["not_used"] and not report["checked"]
    assert all(np.array_equal(b, np.array(v)) for b, v in zip(before, model.weights))


def test_slim_inception_resnet_v2_v2_checkpoint_equals_slim(irv2_release, ref, files):
    model, logits, aux = irv2_release
    slim = ref["inception_resnet_v2"]["slim"]
    assert _relative_error(logits, slim["logits"]).max() < TOLERANCE
    assert _relative_error(aux, slim["aux_logits"]).max() < TOLERANCE
    assert {v.path for v in model.weights} == {s.path for s in names.slots("inception_resnet_v2")}


def test_inception_resnet_v2_1000_classes_from_slim_timm_and_keras(
    irv2_1000, files, ref, images, keras_h5
):
    """Default 1000 classes: slim's background row dropped; timm's and Keras' files as they are."""
    model = irv2_1000
    report = pretrained.load_weights(model, files["irv2_prefix"])
    assert report["background"] == "dropped"
    assert sorted(k for k, _ in report["not_used"]) == sorted(
        k for k, _ in ref["inception_resnet_v2"]["slim"]["checkpoint_keys"] if "/AuxLogits/" in k
    )
    slim_logits = np.asarray(ref["inception_resnet_v2"]["slim"]["logits"])[:, 1:]
    assert _relative_error(model(images, training=False), slim_logits).max() < TOLERANCE

    report = pretrained.load_weights(model, files["irv2_timm"])
    timm = ref["inception_resnet_v2"]["timm"]
    assert len(report["copied"]) + len(report["checked"]) + len(report["ignored"]) == len(
        timm["state_dict"]
    )
    assert len(report["checked"]) == len(
        [k for k in timm["constant_keys"] if k.endswith("bn.weight")]
    )
    assert _relative_error(model(images, training=False), timm["logits"]).max() < TOLERANCE

    path, keras_logits = keras_h5
    report = pretrained.load_weights(model, path)
    assert (
        len(report["copied"]) == len(model.weights)
        and not report["checked"]
        and not report["not_used"]
    )
    assert _relative_error(model(images, training=False), keras_logits).max() < TOLERANCE


def test_inception_v4_from_timm_converted_exported_and_served(files, ref, images, tmp_path):
    """timm file -> convert_weights.py -> .keras (safe mode, class names) -> export.py's SavedModel,
    whose serving signature gives the same probabilities and class names."""
    out = tmp_path / "inception_v4.keras"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "inception_cli.convert_weights",
            f"--weights={files['v4_timm']}",
            f"--output={out}",
        ],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    printed = run.stdout
    assert "network: Inception-v4" in printed and "variant: paper" in printed
    assert "classes: file 1000, model 1000" in printed
    assert "features.6.branch1.1.conv.weight -> inception_a_1/b1_1/conv/kernel" in printed
    assert f"tensors in the file: {len(ref['inception_v4']['timm']['state_dict'])}:" in printed
    assert "sha256 inception_v4.model.safetensors:" in printed

    model = keras.saving.load_model(out, compile=False, safe_mode=True)
    ids, readable = class_names(model)
    assert (ids, readable) == tuple(list(x) for x in classes.imagenet_classes())
    probabilities = np.asarray(model(images, training=False))
    logits = np.log(probabilities)
    timm_logits = np.asarray(ref["inception_v4"]["timm"]["logits"])
    # softmax is shift-invariant: compare logits up to each row's constant.
    shifted = logits - logits.mean(axis=1, keepdims=True)
    reference = timm_logits - timm_logits.mean(axis=1, keepdims=True)
    assert _relative_error(shifted, reference).max() < TOLERANCE

    from inception.export import classifier, exporter
    from inception.export.config import ExportOptions

    labels = str(tmp_path / "inception_v4.labels.txt")
    assert os.path.isfile(labels)
    # The model loaded above, not a second load.
    src = classifier.from_model(model, classifier.read_labels(labels))
    rep = exporter.run_export(
        src,
        str(tmp_path / "exports"),
        "inception_v4",
        ExportOptions(formats=("saved_model",), latency_repeats=1),
        log=lambda m: None,
    )
    # Loaded back from disk as TF Serving loads it (no Keras object of this process is used;
    # tests/test_export_saved_model.py serves SavedModels from a fresh process).
    loaded = tf.saved_model.load(rep["variants"]["saved_model"]["path"])
    served = loaded.signatures["predict_images"](images=tf.constant(images))
    np.testing.assert_allclose(served["probabilities"].numpy(), probabilities, rtol=0, atol=1e-5)
    assert (
        served["top_k_labels"].numpy()[0][0].decode() == readable[int(np.argmax(probabilities[0]))]
    )


def test_fine_tuning_start_from_slim_with_new_heads(v4_release, files):
    """10 classes: body and aux convolutions from the file, both classifiers fresh."""
    model = models.build("inception_v4", num_classes=10, aux_logits=True)
    before = {v.path: np.array(v) for v in model.weights}
    report = pretrained.load_weights(model, files["v4_ckpt"], new_head=True, aux_optional=True)
    fresh = {p for p, _ in report["left_initialized"]}
    assert fresh == {
        "predictions/kernel",
        "predictions/bias",
        "aux_logits/fc/kernel",
        "aux_logits/fc/bias",
    }
    released = {v.path: np.array(v) for v in v4_release[0].weights}
    for v in model.weights:
        if v.path in fresh:
            assert v.shape[-1] == 10 and np.array_equal(np.array(v), before[v.path])
        else:
            assert np.array_equal(np.array(v), released[v.path]), v.path


def test_another_network_is_refused(v4_release, files):
    with pytest.raises(
        WeightsError,
        match=r"holds the weights of Inception-ResNet-v2 .*the model is 'inception_v4'",
    ):
        pretrained.load_weights(v4_release[0], files["irv2_timm"])


def test_timm_file_lacks_the_aux_head_a_model_asks_for(irv2_release, files):
    with pytest.raises(
        WeightsError, match=r"missing variable\(s\).*for our aux_logits/proj/conv/kernel"
    ):
        pretrained.load_weights(irv2_release[0], files["irv2_timm"])


# ---------------------------------------------------------------------------------------------
# weights="imagenet": the official file through a local server, cached only when complete


@pytest.fixture()
def local_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_imagenet_download_is_cached_only_when_complete(
    files, local_server, tmp_path, monkeypatch, images, ref
):
    served, base = local_server
    name = fetch.official("inception_v4").filename
    shutil.copy(files["v4_tar"], served / name)
    with open(files["v4_tar"], "rb") as f:
        whole = f.read()
    (served / "partial.tar.gz").write_bytes(whole[: len(whole) // 2])

    cache = tmp_path / "cache"
    with pytest.raises(WeightsError, match="damaged or incomplete"):
        fetch.official_file(
            "inception_v4", cache_dir=str(cache), url=f"{base}/partial.tar.gz", log=lambda m: None
        )
    assert os.listdir(cache) == []
    with pytest.raises(WeightsError, match="failed"):
        fetch.official_file(
            "inception_v4", cache_dir=str(cache), url=f"{base}/{name}", file_hash="0" * 64
        )
    assert os.listdir(cache) == []

    path = fetch.official_file("inception_v4", cache_dir=str(cache), url=f"{base}/{name}")
    assert path == str(cache / name) and os.listdir(cache) == [name]
    assert open(path, "rb").read() == whole
    # Cached: a second call does not download (the address is now unreachable).
    os.remove(served / name)
    assert fetch.official_file("inception_v4", cache_dir=str(cache), url=f"{base}/{name}") == path

    monkeypatch.setenv(fetch.ENV_CACHE, str(cache))
    model = pretrained.build("inception_v4", "imagenet", classifier_activation=None)
    slim_logits = np.asarray(ref["inception_v4"]["slim"]["logits"])[:, 1:]
    assert _relative_error(model(images, training=False), slim_logits).max() < TOLERANCE
    assert class_names(model)[0][0] == "n01440764"
