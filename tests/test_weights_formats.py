"""Weights files: format detection, the refusals and their messages, the class names.

Small files (a few tensors with the released names) against a tiny Inception-v4: every check
that refuses a file runs before any value is copied, so no full-size file is needed here.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets

from inception import models
from inception.weights import WeightsError, classes, detect, fetch, pretrained

SMALL = dict(width_multiplier=0.1, input_shape=(75, 75, 3))


@pytest.fixture(scope="module")
def small_v4():
    return models.build("inception_v4", **SMALL)


def _checkpoint(path, tensors):
    tf.raw_ops.SaveV2(
        prefix=str(path),
        tensor_names=list(tensors),
        shape_and_slices=[""] * len(tensors),
        tensors=[tf.constant(np.asarray(v, np.float32)) for v in tensors.values()],
    )
    return str(path)


def _safetensors(path, tensors):
    from safetensors.numpy import save_file

    save_file({k: np.asarray(v, np.float32) for k, v in tensors.items()}, str(path))
    return str(path)


def test_unknown_format_names_the_supported_ones(tmp_path, small_v4):
    bogus = tmp_path / "weights.bin"
    bogus.write_bytes(b"not weights at all" * 10)
    with pytest.raises(
        WeightsError,
        match=r"unrecognized weights file; expected a TF-slim checkpoint .*timm "
        r"model\.safetensors .*keras-applications .*\.keras",
    ):
        pretrained.load_weights(small_v4, str(bogus))
    with pytest.raises(FileNotFoundError):
        pretrained.load_weights(small_v4, str(tmp_path / "absent.ckpt"))


def test_detection_reads_the_content(tmp_path):
    prefix = _checkpoint(
        tmp_path / "model.ckpt", {"InceptionV4/Conv2d_1a_3x3/weights": np.ones((3, 3, 3, 32))}
    )
    assert detect.kind(prefix) == ("slim-checkpoint", prefix)
    assert detect.kind(prefix + ".index") == ("slim-checkpoint", prefix)
    renamed = tmp_path / "weights.h5"  # a safetensors file under a misleading name
    _safetensors(renamed, {"features.0.conv.weight": np.ones((32, 3, 3, 3))})
    assert detect.kind(str(renamed))[0] == "timm"


def test_other_network_missing_extra_and_shape_mismatch(tmp_path, small_v4):
    irv2 = _checkpoint(
        tmp_path / "irv2", {"InceptionResnetV2/Conv2d_1a_3x3/weights": np.ones((3, 3, 3, 32))}
    )
    with pytest.raises(
        WeightsError,
        match=r"holds the weights of Inception-ResNet-v2 .*the model is 'inception_v4'",
    ):
        pretrained.load_weights(small_v4, irv2)
    v3 = _checkpoint(tmp_path / "v3", {"InceptionV3/Conv2d_1a_3x3/weights": np.ones((3, 3, 3, 32))})
    with pytest.raises(WeightsError, match=r"variables are under 'InceptionV3'"):
        pretrained.load_weights(small_v4, v3)
    extra = _checkpoint(
        tmp_path / "extra",
        {
            "InceptionV4/Conv2d_1a_3x3/weights": np.ones((3, 3, 3, 3)),
            "InceptionV4/Mixed_9z/Branch_0/Conv2d_0a_1x1/weights": np.ones(2),
        },
    )
    with pytest.raises(
        WeightsError, match=r"extra variable\(s\) .*InceptionV4/Mixed_9z/Branch_0/Conv2d_0a_1x1/"
    ):
        pretrained.load_weights(small_v4, extra)
    partial = _checkpoint(
        tmp_path / "partial", {"InceptionV4/Conv2d_1a_3x3/weights": np.ones((3, 3, 3, 32))}
    )
    with pytest.raises(WeightsError) as err:
        pretrained.load_weights(small_v4, partial)
    message = str(err.value)
    assert (
        "missing variable(s) the model needs: InceptionV4/Conv2d_1a_3x3/BatchNorm/beta "
        "(for our stem/s0_b0_0/bn/beta)"
    ) in message
    assert (
        "shape mismatch: InceptionV4/Conv2d_1a_3x3/weights has shape [3, 3, 3, 32], "
        "our stem/s0_b0_0/conv/kernel needs [3, 3, 3, 3]"
    ) in message
    before = [np.array(v) for v in small_v4.weights]
    assert all(
        np.array_equal(b, np.array(v)) for b, v in zip(before, small_v4.weights)
    )  # nothing copied


def test_non_unit_batchnorm_gamma_is_refused(tmp_path, small_v4):
    slim = _checkpoint(
        tmp_path / "gamma",
        {
            "InceptionV4/Conv2d_1a_3x3/weights": np.ones((3, 3, 3, 32)),
            "InceptionV4/Conv2d_1a_3x3/BatchNorm/gamma": np.full(32, 0.5),
        },
    )
    with pytest.raises(
        WeightsError,
        match=r"InceptionV4/Conv2d_1a_3x3/BatchNorm/gamma is a BatchNorm gamma .*"
        r"\[0\.5, 0\.5\].*only a gamma of exactly 1\.0",
    ):
        pretrained.load_weights(small_v4, slim)
    timm = _safetensors(
        tmp_path / "model.safetensors",
        {
            "features.0.conv.weight": np.ones((32, 3, 3, 3)),
            "features.0.bn.weight": np.linspace(0.9, 1.1, 32),
        },
    )
    with pytest.raises(WeightsError, match=r"features\.0\.bn\.weight is a BatchNorm gamma"):
        pretrained.load_weights(small_v4, timm)


def test_keras_h5_that_is_not_inception_resnet_v2(tmp_path, small_v4):
    import h5py

    path = tmp_path / "resnet50.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"conv1_conv", b"conv1_bn"]
    with pytest.raises(
        WeightsError, match=r"not keras-applications' Inception-ResNet-v2 .*conv1_conv"
    ):
        pretrained.load_weights(small_v4, str(path))


def test_networks_without_published_weights_are_refused(tmp_path):
    model = models.build("inception_resnet_v2", variant="paper", **SMALL)
    with pytest.raises(
        WeightsError,
        match=r"published weights exist for Inception-v4 and the released "
        r"Inception-ResNet-v2 only; this model is 'inception_resnet_v2_paper'",
    ):
        pretrained.load_weights(model, "imagenet", cache_dir=str(tmp_path))


def test_class_names_follow_tfds_imagenet2012(tmp_path):
    labels = os.path.join(
        os.path.dirname(tensorflow_datasets.__file__), "datasets", "imagenet2012", "labels.txt"
    )
    with open(labels, encoding="utf-8") as f:
        tfds_ids = f.read().split()
    ids, readable = classes.imagenet_classes()
    assert list(ids) == tfds_ids
    assert (
        readable[0] == "tench, Tinca tinca"
        and readable[-1] == "toilet tissue, toilet paper, bathroom tissue"
    )
    assert all(name.strip() for name in readable)


def test_labeled_classifier_saves_and_loads_in_safe_mode(tmp_path):
    from inception.weights import class_names, labeled

    model = models.build("inception_v4", num_classes=1000, **SMALL)
    ids, readable = classes.class_lists(1000)
    named = labeled.with_class_names(model, ids, readable)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 75, 75, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(named(x)), np.asarray(model(x)))
    named.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False, safe_mode=True)
    assert class_names(loaded) == (ids, readable) and loaded.name == "inception_v4"
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)


def test_official_table_and_cache_directory(monkeypatch, tmp_path):
    assert fetch.official("inception_v4").url.endswith("/inception_v4_2016_09_09.tar.gz")
    assert (
        fetch.official("inception_resnet_v2", "keras").file_hash
        == "e693bd0210a403b3192acc6073ad2e96"
    )
    with pytest.raises(
        WeightsError,
        match=r"no official 'timm_tf_ens_adv_in1k' weights for inception_v4; "
        r"available: .*inception_resnet_v2/timm_tf_ens_adv_in1k \(ensemble adversarial",
    ):
        fetch.official("inception_v4", "timm_tf_ens_adv_in1k")
    monkeypatch.setenv(fetch.ENV_CACHE, str(tmp_path / "c"))
    assert fetch.cache_directory() == str(tmp_path / "c")
    monkeypatch.delenv(fetch.ENV_CACHE)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "k"))
    assert fetch.cache_directory() == str(tmp_path / "k" / "models" / "inception")
