"""The bfloat16 SavedModel (``--formats=saved_model_bf16``, opt-in): its own servable
``OUT/<name>-bf16/<version>``, the float32 SavedModel's signatures, layout and warmup file, and a
graph whose convolutions compute in bfloat16 with a float32 softmax and float32 outputs.

One small Inception-ResNet-v2 (width 0.1, one block per stage, 75x75, 10 classes) is trained for
two epochs on the embedded digits (0.94 validation top-1; an untrained network's near-uniform
probabilities would make top-1 agreement a coin toss), then exported once, in-process, with both
SavedModels by the exporter that ``export.py`` runs.
"""

import collections
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from inception import data as data_lib
from inception import models
from inception.export import agreement, bfloat16, classifier, exporter, formats, saved_model, warmup
from inception.export import data as export_data
from inception.export.config import ExportOptions
from training_runs import SHALLOW

SIZE = 75
NAME = "irv2"
BF16 = "saved_model_bf16"
# bfloat16 keeps 8 significant bits: each rounding of an activation is a relative error of at
# most 2**-9 (0.2%). Through the network's ~20 convolutions in depth that adds up to about 1% of
# a logit; with trained logits of up to ~10 that is ~0.1, and a probability moves by at most half
# of a logit change (the softmax Jacobian), so 0.05. Measured here: 0.018 (the mean 5e-4).
MAX_PROB_DIFF = 0.05
# The goal for a real model is 99.5%; here 359 images, 1.0 measured. 0.99 leaves room for
# three near-ties flipping on another CPU's bfloat16 kernels.
MIN_AGREEMENT = 0.99


@pytest.fixture(scope="module")
def trained(digits_dir):
    """(model, labels) trained two epochs (14 s here)."""
    keras.utils.set_random_seed(0)
    pipe = data_lib.InputPipeline(
        data_lib.EMBEDDED_DATASET,
        split="train",
        image_size=SIZE,
        global_batch_size=4096,
        is_training=False,
        data_dir=digits_dir,
    )
    images, labels = next(iter(pipe.input_fn(None)))
    model = models.build(
        "inception_resnet_v2",
        variant="paper",
        width_multiplier=0.1,
        repeats=SHALLOW,
        input_shape=(SIZE, SIZE, 3),
        num_classes=10,
        bn_momentum=0.9,
        dropout_rate=0.0,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss="sparse_categorical_crossentropy",
        jit_compile=False,
    )
    model.fit(images.numpy(), labels.numpy(), batch_size=64, epochs=2, verbose=0)
    return model, list(pipe.info.label_names)


@pytest.fixture(scope="module")
def validation(digits_dir):
    encoded, labels = export_data.encoded_eval_images(data_lib.EMBEDDED_DATASET, None, digits_dir)
    return agreement.AgreementImages(
        export_data.preprocess(encoded, SIZE), labels, encoded, data_lib.EMBEDDED_DATASET
    )


@pytest.fixture(scope="module")
def reference(trained, validation):
    return trained[0].predict(validation.images, verbose=0)


@pytest.fixture(scope="module")
def exported(trained, validation, tmp_path_factory):
    """(OUT, report, printed table) of one export of both SavedModels."""
    model, labels = trained
    out = str(tmp_path_factory.mktemp("exports"))
    options = ExportOptions(formats=("saved_model", BF16), latency_repeats=2)
    rep = exporter.run_export(
        classifier.from_model(model, labels),
        out,
        NAME,
        options,
        agreement_images=validation,
        log=lambda _: None,
    )
    return out, rep, agreement.format_table(rep)


def _meta_graph(path):
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    (meta_graph,) = proto.meta_graphs
    return meta_graph


def _op_dtypes(path, ops=("Conv2D", "Softmax", "MatMul")):
    """{op type: Counter of its T attribute's dtype} over the graph and its function library."""
    graph = _meta_graph(path).graph_def
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    found = collections.defaultdict(collections.Counter)
    for node in nodes:
        if node.op in ops:
            found[node.op][tf.dtypes.as_dtype(node.attr["T"].type).name] += 1
    return found


# ---- registry and options --------------------------------------------------------------------


def test_bf16_is_a_registered_opt_in_servable_format():
    assert formats.EXPORT_FORMATS[BF16] == "saved_model"  # one registry line, one class
    fmt = formats.load(BF16)
    assert isinstance(fmt, saved_model.BFloat16SavedModelFormat) and fmt.name == BF16
    assert fmt.servable and fmt.base_suffix == "-bf16"
    assert formats.load("saved_model").base_suffix == ""
    # Opt-in: the default export (and the flag's default) stays as it was.
    assert BF16 not in formats.DEFAULT_EXPORT_FORMATS
    assert (
        ExportOptions().formats
        == formats.DEFAULT_EXPORT_FORMATS
        == tuple(f for f in formats.EXPORT_FORMATS if f != BF16)
    )
    assert ExportOptions(formats=[BF16]).formats == (BF16,)


def test_rebuild_restores_the_global_policy_and_keeps_the_classifier_float32(trained, monkeypatch):
    model, _ = trained
    before = keras.config.dtype_policy().name
    rebuilt = bfloat16.to_bfloat16(model)
    assert keras.config.dtype_policy().name == before == "float32"
    policies = collections.Counter()
    stack = list(rebuilt.layers)
    while stack:
        layer = stack.pop()
        if not isinstance(layer, keras.layers.InputLayer):
            policies[layer.dtype_policy.name] += 1
        stack.extend(getattr(layer, "_layers", []))
    assert policies["float32"] == 1 and policies["mixed_bfloat16"] > 100, policies
    assert rebuilt.get_layer("predictions").dtype_policy.name == "float32"
    assert {v.dtype for v in rebuilt.weights} == {"float32"}
    for a, b in zip(model.weights, rebuilt.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # The rebuild runs under the policy, and a failed one restores the previous policy too.
    seen = []

    def fail(cls, config, custom_objects=None):
        seen.append(keras.config.dtype_policy().name)
        raise RuntimeError("rebuild failed")

    monkeypatch.setattr(type(model), "from_config", classmethod(fail))
    with pytest.raises(RuntimeError, match="rebuild failed"):
        bfloat16.to_bfloat16(model)
    assert seen == ["mixed_bfloat16"] and keras.config.dtype_policy().name == "float32"


def test_rebuild_of_a_sequential_classifier_keeps_its_last_layer_float32():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, name="conv"),
            keras.layers.GlobalAveragePooling2D(name="pool"),
            keras.layers.Dense(3, activation="softmax", name="classifier"),
        ]
    )
    rebuilt = bfloat16.to_bfloat16(model)
    assert [layer.dtype_policy.name for layer in rebuilt.layers] == [
        "mixed_bfloat16",
        "mixed_bfloat16",
        "float32",
    ]
    images = np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
    assert rebuilt(images).dtype == "float32"
    np.testing.assert_allclose(rebuilt(images), model(images), atol=1e-2)


# ---- layout and report -----------------------------------------------------------------------


def test_published_as_its_own_servable_with_a_warmup_file(exported):
    out, rep, _ = exported
    assert sorted(os.listdir(out)) == [NAME, f"{NAME}-artifacts", f"{NAME}-bf16"]
    for base in (NAME, f"{NAME}-artifacts", f"{NAME}-bf16"):
        assert os.listdir(os.path.join(out, base)) == ["1"], base  # one version, no temporaries
    path = os.path.join(out, f"{NAME}-bf16", "1")
    assert rep["variants"][BF16]["path"] == path
    assert sorted(os.listdir(path)) == sorted(os.listdir(os.path.join(out, NAME, "1")))
    with open(os.path.join(path, "assets", saved_model.LABELS_ASSET)) as f:
        assert f.read().split() == [str(d) for d in range(10)]
    logs = warmup.read(os.path.join(path, warmup.WARMUP_DIR, warmup.WARMUP_FILE))
    batches = [tf.make_ndarray(log.predict_log.request.inputs["image_bytes"]) for log in logs]
    assert [len(b) for b in batches] == [1, 8]
    for log in logs:  # named as the servable TF Serving would serve from OUT/irv2-bf16
        assert log.predict_log.request.model_spec.name == f"{NAME}-bf16"
        assert log.predict_log.request.model_spec.signature_name == "serving_default"


def test_report_row_has_every_format_field_and_agrees_with_keras(exported, validation):
    out, rep, printed = exported
    float_row, row = rep["variants"]["saved_model"], rep["variants"][BF16]
    assert set(float_row) | {"dtype_policy"} == set(row)
    assert row["dtype_policy"] == "mixed_bfloat16" and row["loader"] == "tf.compat.v1 session"
    assert row["num_images"] == len(validation.images) == 359
    assert row["top1_agreement"] >= MIN_AGREEMENT
    assert 0 < row["max_abs_prob_diff"] <= MAX_PROB_DIFF  # 0: it would not be bfloat16
    assert row["image_bytes"]["top1_agreement"] >= MIN_AGREEMENT
    assert row["image_bytes"]["max_abs_prob_diff"] <= MAX_PROB_DIFF
    assert row["latency_ms_per_image"] > 0 and row["size_bytes"] > 0
    assert re.search(rf"^{BF16} .* {re.escape(row['path'])}$", printed, re.M)
    assert float_row["max_abs_prob_diff"] <= 1e-5  # the float32 one is unchanged
    assert rep["formats"] == ["saved_model", BF16]
    assert os.path.exists(os.path.join(out, f"{NAME}-artifacts", "1", exporter.REPORT_FILE))


# ---- the graph -------------------------------------------------------------------------------


def test_signatures_are_those_of_the_float32_saved_model(exported):
    out, _, _ = exported

    def signatures(path):
        return {
            name: {
                "inputs": {k: (v.dtype, str(v.tensor_shape)) for k, v in s.inputs.items()},
                "outputs": {k: (v.dtype, str(v.tensor_shape)) for k, v in s.outputs.items()},
            }
            for name, s in _meta_graph(path).signature_def.items()
        }

    bf16 = signatures(os.path.join(out, f"{NAME}-bf16", "1"))
    assert bf16 == signatures(os.path.join(out, NAME, "1"))
    images = bf16[saved_model.SIGNATURE_IMAGES]
    assert images["inputs"]["images"][0] == tf.float32.as_datatype_enum
    assert {k: tf.dtypes.as_dtype(v[0]).name for k, v in images["outputs"].items()} == {
        "probabilities": "float32",
        "top_k_ids": "int32",
        "top_k_scores": "float32",
        "top_k_labels": "string",
    }


def test_convolutions_compute_in_bfloat16_and_the_softmax_in_float32(exported):
    out, _, _ = exported
    bf16 = _op_dtypes(os.path.join(out, f"{NAME}-bf16", "1"))
    fp32 = _op_dtypes(os.path.join(out, NAME, "1"))
    assert set(bf16["Conv2D"]) == {"bfloat16"} and set(fp32["Conv2D"]) == {"float32"}
    assert bf16["Conv2D"]["bfloat16"] == fp32["Conv2D"]["float32"] > 40  # every one of them
    assert set(bf16["Softmax"]) == {"float32"} and set(bf16["MatMul"]) == {"float32"}


# ---- TensorFlow's two loaders ----------------------------------------------------------------


def test_session_loader_serves_it_like_tf_serving(exported, validation, reference, trained):
    """What TF Serving's C++ loader and saved_model_cli do: import the MetaGraph, restore the
    variables, run the init op, run the signatures by tensor name."""
    out, _, _ = exported
    path = os.path.join(out, f"{NAME}-bf16", "1")
    with tf.Graph().as_default() as graph, tf.compat.v1.Session() as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
        handles = [op for op in graph.get_operations() if op.type == "VarHandleOp"]
        assert all(
            sess.run([tf.raw_ops.VarIsInitializedOp(resource=op.outputs[0]) for op in handles])
        )

        def run(signature, key, value):
            sig = meta.signature_def[signature]
            keys = sorted(sig.outputs)
            return dict(
                zip(
                    keys,
                    sess.run([sig.outputs[k].name for k in keys], {sig.inputs[key].name: value}),
                )
            )

        by_images = run("predict_images", "images", validation.images[:64])
        by_bytes = run("serving_default", "image_bytes", list(validation.encoded[:64]))
    for result in (by_images, by_bytes):
        assert result["probabilities"].dtype == np.float32
        assert result["top_k_scores"].dtype == np.float32
        assert result["top_k_ids"].dtype == np.int32
        assert result["top_k_labels"].dtype == object
        assert np.abs(result["probabilities"] - reference[:64]).max() <= MAX_PROB_DIFF
        agreement = np.mean(result["probabilities"].argmax(1) == reference[:64].argmax(1))
        assert agreement >= MIN_AGREEMENT
        labels = trained[1]
        assert result["top_k_labels"][:, 0].astype(str).tolist() == [
            labels[i] for i in result["top_k_ids"][:, 0]
        ]


def test_object_loader_runs_both_signatures(exported, validation, reference):
    out, _, _ = exported
    loaded = tf.saved_model.load(os.path.join(out, f"{NAME}-bf16", "1"))
    assert sorted(loaded.signatures) == sorted(saved_model.SIGNATURES)
    by_images = loaded.signatures["predict_images"](images=tf.constant(validation.images[:16]))
    by_bytes = loaded.signatures["serving_default"](
        image_bytes=tf.constant(list(validation.encoded[:16]))
    )
    for result in (by_images, by_bytes):
        assert result["probabilities"].dtype == tf.float32
        assert result["top_k_ids"].dtype == tf.int32 and result["top_k_labels"].dtype == tf.string
        assert np.abs(result["probabilities"].numpy() - reference[:16]).max() <= MAX_PROB_DIFF


# ---- versions --------------------------------------------------------------------------------


def test_an_existing_bf16_version_is_refused_before_anything_is_written(trained, tmp_path):
    model, labels = trained
    (tmp_path / f"{NAME}-bf16" / "3").mkdir(parents=True)
    src = classifier.from_model(model, labels)
    with pytest.raises(FileExistsError, match=rf"version 3 already exists in .*{NAME}-bf16"):
        exporter.run_export(
            src, str(tmp_path), NAME, ExportOptions(formats=(BF16,), version=3), log=lambda _: None
        )
    assert sorted(os.listdir(tmp_path)) == [f"{NAME}-bf16"]
    # The next version counts the bf16 base even when the float32 one is not written.
    from inception.export import versions

    assert versions.next_version(str(tmp_path / NAME), str(tmp_path / f"{NAME}-bf16")) == 4


def test_a_failed_bf16_write_publishes_no_version(trained, tmp_path, monkeypatch):
    model, labels = trained
    real = saved_model.write_saved_model

    def fail_when_written(directory, *args, **kwargs):
        real(directory, *args, **kwargs)  # everything is there, under the temporary name
        raise RuntimeError("disk full")

    monkeypatch.setattr(saved_model, "write_saved_model", fail_when_written)
    with pytest.raises(RuntimeError, match="disk full"):
        exporter.run_export(
            classifier.from_model(model, labels),
            str(tmp_path),
            NAME,
            ExportOptions(formats=(BF16,), latency_repeats=1),
            log=lambda _: None,
        )
    assert os.listdir(tmp_path / f"{NAME}-bf16") == []  # no version, no temporary
    assert not (tmp_path / f"{NAME}-artifacts").exists()
