"""keras-hub classes (inception.hub): keras-hub's own test harness on our backbone and classifier,
the image converter against TensorFlow's evaluation crop, exact preset round trips, and a preset
written from a TF-slim checkpoint against the released network's logits (the reference fixtures
of ../shared/reference, as tests/test_weights_reference.py uses them).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

keras_hub = pytest.importorskip(
    "keras_hub", reason="the [hub] extra (keras-hub needs Python 3.11+)"
)
pytest.importorskip("grain", reason="keras-hub's test harness imports grain")

import keras  # noqa: E402
from keras_hub.src.tests import test_case  # noqa: E402  (the module: pytest would collect its TestCase)

import reference_files  # noqa: E402
from inception import hub, models  # noqa: E402
from inception.hub import convert, presets  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = os.path.join(os.path.dirname(ROOT), "shared", "reference")
TOLERANCE = (
    1e-4  # of the largest logit, as test_weights_reference.py (porting mistakes: 8.4e-4 and up)
)
SMALL = {"width_multiplier": 0.1, "repeats": (1, 1, 1)}
SIZE = 75  # the smallest input the networks take


def _images(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape).astype("uint8")


class KerasHubHarnessTest(test_case.TestCase):
    """keras-hub's tests for a vision backbone and an image-classifier task, as its own model
    families use them (serialization, eager and compiled calls, tf.data, three dtype policies,
    quantization, pyramid levels; predict and fit with and without split preprocessing)."""

    def test_backbone(self):
        self.run_vision_backbone_test(
            cls=hub.InceptionResNetV2Backbone,
            init_kwargs=dict(SMALL, image_shape=(SIZE, SIZE, 3)),
            input_data=keras.ops.ones(
                (2, SIZE, SIZE, 3)
            ),  # a tensor, as keras-hub's own tests pass
            expected_output_shape=(2, 1, 1, 154),
            expected_pyramid_output_keys=["P3", "P4", "P5"],
            expected_pyramid_image_sizes=[(7, 7), (3, 3), (1, 1)],
        )

    @pytest.mark.slow  # 18 s (three fits, each traced): over the suite's budget
    def test_image_classifier(self):
        backbone = hub.InceptionV4Backbone(**SMALL)
        converter = hub.InceptionV4ImageConverter(image_size=(SIZE, SIZE))
        self.run_task_test(
            cls=hub.InceptionV4ImageClassifier,
            init_kwargs={
                "backbone": backbone,
                "num_classes": 3,
                "preprocessor": hub.InceptionV4ImageClassifierPreprocessor(converter),
            },
            train_data=(_images((2, 90, 80, 3)).astype("float32"), np.array([0, 2])),
            expected_output_shape=(2, 3),
        )

    def test_backbone_preset(self):
        backbone = hub.InceptionResNetV1Backbone(**SMALL)
        x = keras.ops.ones((2, SIZE, SIZE, 3))
        directory = os.path.join(self.get_temp_dir(), "irv1_small")
        backbone.save_to_preset(directory)
        self.run_preset_test(
            cls=keras_hub.models.Backbone,
            preset=directory,
            input_data=x,
            expected_output=backbone(x),
        )

    def test_preprocessor_serialization(self):
        self.run_serialization_test(
            hub.InceptionResNetV2ImageClassifierPreprocessor(
                hub.InceptionResNetV2ImageConverter(central_fraction=0.5)
            )
        )


def test_pyramid_outputs_are_the_papers_grids():
    """At 299x299 and full width: P3 the 35x35 grid after the A blocks, P4 the 17x17 grid after the
    B blocks, P5 the 8x8 features (Figures 9 and 15; the released Inception-ResNet-v2's widths)."""
    for cls, channels in (
        (hub.InceptionV4Backbone, (384, 1024, 1536)),
        (hub.InceptionResNetV1Backbone, (256, 896, 1792)),
        (hub.InceptionResNetV2Backbone, (320, 1088, 1536)),
    ):
        backbone = cls(repeats=(1, 1, 1), image_shape=(299, 299, 3))
        shapes = {k: tuple(v.shape[1:]) for k, v in backbone.pyramid_outputs.items()}
        assert shapes == {
            "P3": (35, 35, channels[0]),
            "P4": (17, 17, channels[1]),
            "P5": (8, 8, channels[2]),
        }, cls
        assert tuple(backbone.output.shape[1:]) == shapes["P5"]
        assert models.block_names(backbone)[0] == "stem"  # our block layers, by their names


def _slim_eval(image, size, fraction=0.875):
    """TF-slim's preprocess_for_eval (inception_preprocessing.py), written with TensorFlow's ops."""
    image = tf.image.convert_image_dtype(tf.convert_to_tensor(image), tf.float32)
    image = tf.image.central_crop(image, central_fraction=fraction)
    image = tf.image.resize(image[None], [size, size], method="bilinear")[0]
    return ((image - 0.5) * 2.0).numpy()


def test_image_converter_is_the_released_evaluation_crop():
    converter = hub.InceptionV4ImageConverter()
    one = _images((97, 130, 3), seed=1)  # odd, non-square: the crop window and the squashing matter
    expected = _slim_eval(one, 299)
    np.testing.assert_allclose(np.asarray(converter(one)), expected, atol=2e-6)
    batch = np.stack([one, _images((97, 130, 3), seed=2)])
    through_graph = next(iter(tf.data.Dataset.from_tensors(batch).map(converter)))
    np.testing.assert_allclose(through_graph.numpy()[0], expected, atol=2e-6)
    np.testing.assert_allclose(through_graph.numpy()[1], _slim_eval(batch[1], 299), atol=2e-6)
    uncropped = hub.InceptionV4ImageConverter(central_fraction=1.0, image_size=(75, 75))
    np.testing.assert_allclose(np.asarray(uncropped(one)), _slim_eval(one, 75, 1.0), atol=2e-6)
    assert np.abs(np.asarray(uncropped(one)) - _slim_eval(one, 75)).max() > 0.1
    with pytest.raises(ValueError, match="central_fraction must be in"):
        hub.InceptionV4ImageConverter(central_fraction=0)


@pytest.fixture(scope="module")
def small_preset(tmp_path_factory):
    """A small Inception-ResNet-v2 classifier with moved BatchNorm statistics, saved as a preset."""
    backbone = hub.InceptionResNetV2Backbone(**SMALL)
    for variable in backbone.non_trainable_weights:  # moving means and variances away from 0 and 1
        variable.assign(
            np.random.default_rng(3).uniform(0.5, 1.5, variable.shape).astype("float32")
        )
    converter = hub.InceptionResNetV2ImageConverter(image_size=(SIZE, SIZE))
    classifier = hub.InceptionResNetV2ImageClassifier(
        backbone,
        num_classes=5,
        preprocessor=hub.InceptionResNetV2ImageClassifierPreprocessor(converter),
    )
    directory = str(tmp_path_factory.mktemp("preset") / "irv2_small")
    classifier.save_to_preset(directory)
    return classifier, directory


def test_preset_round_trip_is_exact(small_preset):
    classifier, directory = small_preset
    images = _images((2, 100, 120, 3), seed=4)
    loaded = keras_hub.models.ImageClassifier.from_preset(directory)
    assert type(loaded) is hub.InceptionResNetV2ImageClassifier
    assert type(loaded.preprocessor.image_converter) is hub.InceptionResNetV2ImageConverter
    np.testing.assert_array_equal(
        loaded.predict(images, verbose=0), classifier.predict(images, verbose=0)
    )
    backbone = keras_hub.models.Backbone.from_preset(directory)
    assert type(backbone) is hub.InceptionResNetV2Backbone
    x = np.random.default_rng(5).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(backbone(x)), np.asarray(classifier.backbone(x)))
    # The classifier is the paper's head on our network: models.build with the same weights.
    ours = models.build("inception_resnet_v2", num_classes=5, input_shape=(SIZE, SIZE, 3), **SMALL)
    for name in models.block_names(ours):
        ours.get_layer(name).set_weights(classifier.backbone.get_layer(name).get_weights())
    ours.get_layer("predictions").set_weights(classifier.output_dense.get_weights())
    expected = keras.activations.softmax(classifier(x))  # the classifier gives logits by default
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(expected), atol=1e-6)


def test_registered_name_without_its_directory_says_how_to_create_it(tmp_path, monkeypatch):
    monkeypatch.setenv(presets.ENV_PRESETS, str(tmp_path))
    with pytest.raises(presets.PresetNotCreatedError) as error:
        keras_hub.models.ImageClassifier.from_preset("inception_resnet_v2_imagenet")
    message = str(error.value)
    assert str(tmp_path / "inception_resnet_v2_imagenet") in message
    assert (
        "inception-convert-weights --network=inception_resnet_v2 --weights=imagenet "
        "--preset=inception_resnet_v2_imagenet" in message
    )
    assert "never downloaded" in message and presets.ENV_PRESETS in message
    for name in presets.RELEASED:
        entry = (
            hub.InceptionV4Backbone.presets.get(name) or hub.InceptionResNetV2Backbone.presets[name]
        )
        assert entry["metadata"]["license"] == "Apache-2.0"
        assert "download.tensorflow.org" in entry["metadata"]["source"]


# ---------------------------------------------------------------------------------------------
# A preset written from a TF-slim checkpoint: the released Inception-v4 (full size)

needs_reference = pytest.mark.skipif(
    not os.path.isdir(REF), reason=f"reference fixtures not found at {REF}"
)


@pytest.fixture(scope="module")
def rw():
    return reference_files.refweights()


@pytest.fixture(scope="module")
def v4_reference():
    with open(os.path.join(REF, "inception_v4.slim.json"), encoding="utf-8") as f:
        return json.load(f)


@needs_reference
def test_preset_from_a_slim_checkpoint_computes_the_released_network(
    rw, v4_reference, tmp_path, monkeypatch
):
    prefix = str(tmp_path / "checkpoint" / "model.ckpt")
    keys = v4_reference["checkpoint_keys"]
    reference_files.write_v2_checkpoint(prefix, keys, rw)
    monkeypatch.setenv(presets.ENV_PRESETS, str(tmp_path / "presets"))
    report = convert.convert(None, prefix, "inception_v4_imagenet")
    assert report["output"] == str(tmp_path / "presets" / "inception_v4_imagenet")
    with pytest.raises(FileExistsError, match="already exists"):
        convert.convert(None, prefix, "inception_v4_imagenet")
    classifier = keras_hub.models.ImageClassifier.from_preset(
        "inception_v4_imagenet", activation=None
    )
    assert type(classifier) is hub.InceptionV4ImageClassifier
    converter = classifier.preprocessor.image_converter  # predict() on raw images goes through it
    assert type(converter) is hub.InceptionV4ImageConverter and converter.image_size == (299, 299)
    assert converter.central_fraction == 0.875
    logits = np.asarray(classifier(rw.reference_images(2, 299)), np.float64)
    reference = np.asarray(v4_reference["logits"], np.float64)[:, 1:]  # background class dropped
    error = np.max(np.abs(logits - reference), axis=1) / np.max(np.abs(reference), axis=1)
    assert error.max() < TOLERANCE, error
    assert classifier.backbone.count_params() == presets.metadata("inception_v4_imagenet")["params"]
    assert len(hub.class_names("inception_v4_imagenet")) == 1000
    with open(os.path.join(report["output"], "source.json"), encoding="utf-8") as f:
        source = json.load(f)
    assert (
        source["license"] == "Apache-2.0"
        and source["classes"] == 1000
        and source["background"] == "dropped"
    )
    with open(os.path.join(report["output"], "task.json"), encoding="utf-8") as f:
        assert (
            json.load(f)["config"]["activation"] == "softmax"
        )  # probabilities, as our converted models


def test_converter_command_refuses_output_and_preset_together(tmp_path):
    for flags, message in (
        ([f"--output={tmp_path}/a.keras", f"--preset={tmp_path}/p"], "not both"),
        ([f"--preset={tmp_path}/p", "--aux_logits"], "no --aux_logits"),
    ):
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "inception_cli.convert_weights",
                "--weights=x.safetensors",
                *flags,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode != 0 and message in run.stderr, run.stderr[-2000:]
    with pytest.raises(ValueError, match="holds inception_v4, not inception_resnet_v2"):
        convert.convert("inception_resnet_v2", "x.safetensors", "inception_v4_imagenet")
    assert not os.path.exists(tmp_path / "p")


@pytest.fixture(scope="module")
def irv2_references():
    with open(os.path.join(REF, "inception_resnet_v2.slim.json"), encoding="utf-8") as f:
        slim = json.load(f)
    with open(os.path.join(REF, "inception_resnet_v2.timm.json"), encoding="utf-8") as f:
        return slim, json.load(f)


@needs_reference
@pytest.mark.slow
def test_converter_command_writes_a_registered_preset_from_a_timm_file(
    rw, irv2_references, tmp_path, monkeypatch
):
    """inception-convert-weights --preset=inception_resnet_v2_imagenet with timm's safetensors: the
    preset, loaded by name, computes timm's logits (full-size Inception-ResNet-v2, about a minute)."""
    from safetensors.numpy import save_file

    slim_ref, timm_ref = irv2_references
    weights = str(tmp_path / "model.safetensors")
    save_file(reference_files.timm_state(timm_ref, slim_ref, rw), weights)
    env = dict(
        os.environ, INCEPTION_PRESETS_DIR=str(tmp_path / "presets"), TF_CPP_MIN_LOG_LEVEL="2"
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "inception_cli.convert_weights",
            f"--weights={weights}",
            "--preset=inception_resnet_v2_imagenet",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert (
        "wrote the keras-hub preset" in run.stdout
        and "classes: file 1000, model 1000" in run.stdout
    )
    monkeypatch.setenv(presets.ENV_PRESETS, env["INCEPTION_PRESETS_DIR"])
    classifier = keras_hub.models.ImageClassifier.from_preset(
        "inception_resnet_v2_imagenet", activation=None
    )
    assert type(classifier.preprocessor.image_converter) is hub.InceptionResNetV2ImageConverter
    logits = np.asarray(classifier(rw.reference_images(2, 299)), np.float64)
    reference = np.asarray(timm_ref["logits"], np.float64)
    error = np.max(np.abs(logits - reference), axis=1) / np.max(np.abs(reference), axis=1)
    assert error.max() < TOLERANCE, error
    assert (
        classifier.backbone.count_params()
        == presets.metadata("inception_resnet_v2_imagenet")["params"]
    )
