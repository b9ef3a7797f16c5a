"""inception.applications follows keras.applications' conventions, checked one by one the way
Keras tests its own applications (keras/src/applications/applications_test.py and
imagenet_utils_test.py), over our three networks.

Full size only where the size is the point (the defaults: 299x299x3 in, 1000 classes out, the
paper's feature widths); everything else on x0.1 networks with one block per stage. Nothing is
downloaded: the "imagenet" path is checked up to the fetch, and every bad argument is checked to
fail before any layer is made or any file fetched.
"""

import itertools
import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

from inception import applications, heads, models
from inception.applications import imagenet_utils
from inception.weights import classes as weight_classes

SMALL = dict(width_multiplier=0.1, repeats=(1, 1, 1))
# (function, its module, the paper's width of the last feature map, that width at x0.1).
APPS = [
    (applications.InceptionV4, applications.inception_v4, 1536, 156),
    (applications.InceptionResNetV1, applications.inception_resnet_v1, 1792, 180),
    (applications.InceptionResNetV2, applications.inception_resnet_v2, 1536, 154),
]
IDS = [app.__name__ for app, *_ in APPS]
# Indices every keras.applications user knows (Keras' imagenet_class_index.json).
KNOWN = {
    0: ("n01440764", "tench"),
    281: ("n02123045", "tabby"),
    386: ("n02504458", "African_elephant"),
    999: ("n15075141", "toilet_tissue"),
}


@pytest.fixture
def data_format():
    """Sets the image data format for one test and restores it."""
    before = keras.config.image_data_format()
    yield keras.config.set_image_data_format
    keras.config.set_image_data_format(before)


# ------------------------------------------------------------------------- class index --


def test_class_index_is_keras_order_and_names():
    index = imagenet_utils.class_index()
    wnids = [w for w, _ in index]
    assert wnids == list(weight_classes.imagenet_classes()[0])  # TFDS order = our 1000 classes
    assert wnids == sorted(wnids)
    for i, entry in KNOWN.items():
        assert index[i] == entry
    names = [n for _, n in index]
    assert [i for i, n in enumerate(names) if n in ("crane", "maillot")] == [134, 517, 638, 639]


def test_decode_predictions_1000_and_1001_columns():
    preds = np.full((2, 1000), 1e-4, np.float32)
    preds[0, 386], preds[0, 281], preds[1, 0] = 0.9, 0.05, 0.7
    decoded = applications.decode_predictions(preds, top=3)
    assert len(decoded) == 2 and all(len(d) == 3 for d in decoded)
    assert decoded[0][:2] == [
        ("n02504458", "African_elephant", np.float32(0.9)),
        ("n02123045", "tabby", np.float32(0.05)),
    ]
    assert decoded[1][0][:2] == ("n01440764", "tench")
    assert all(a[2] >= b[2] for d in decoded for a, b in itertools.pairwise(d))
    background = np.concatenate([np.full((2, 1), 0.99, np.float32), preds], axis=1)  # class 0 first
    assert applications.decode_predictions(background, top=3) == decoded
    assert len(applications.decode_predictions(keras.ops.convert_to_tensor(preds))[0]) == 5


@pytest.mark.parametrize("shape", [(1000,), (2, 10), (2, 1002), (2, 999), (1, 1000, 1)])
def test_decode_predictions_refuses_other_shapes(shape):
    with pytest.raises(
        ValueError,
        match=r"`decode_predictions` expects a batch of predictions.*" + re.escape(str(shape)),
    ):
        applications.decode_predictions(np.zeros(shape))


def test_decode_predictions_refuses_bad_top():
    with pytest.raises(ValueError, match="`top` must be an integer from 1 to 1000"):
        applications.decode_predictions(np.zeros((1, 1000)), top=0)


# ---------------------------------------------------------------------- preprocess_input --


def test_preprocess_input_is_inception_scaling_in_any_format():
    pixels = np.array([[[[0, 127.5, 255]]]], np.float32)  # (1, 1, 1, 3)
    before = pixels.copy()
    for fmt in (None, "channels_last", "channels_first"):
        np.testing.assert_allclose(
            applications.preprocess_input(pixels, data_format=fmt), [[[[-1, 0, 1]]]]
        )
    np.testing.assert_array_equal(pixels, before)  # not changed in place
    ints = applications.preprocess_input(np.array([0, 255], np.uint8))
    assert ints.dtype == np.float32 and list(ints) == [-1.0, 1.0]
    tensor = applications.preprocess_input(
        keras.ops.convert_to_tensor(np.array([0, 51, 255], np.int32))
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(tensor), [-1.0, -0.6, 1.0], rtol=1e-6)
    with pytest.raises(
        ValueError,
        match=r"Expected data_format to be one of `channels_first` or "
        r"`channels_last`\. Received: data_format=NHWC",
    ):
        applications.preprocess_input(pixels, data_format="NHWC")


# ------------------------------------------------------------------ the three networks --


@pytest.mark.parametrize("app, module, _, last_dim", APPS, ids=IDS)
def test_each_network_module_has_its_function_and_utilities(app, module, _, last_dim):
    """As keras.applications.inception_resnet_v2: the function, preprocess_input, decode_predictions."""
    assert getattr(module, app.__name__) is app
    assert module.preprocess_input is applications.preprocess_input
    assert module.decode_predictions is applications.decode_predictions


def test_the_public_api_is_annotated_and_its_annotations_resolve():
    """Type hints on the public API (issue 28, item 8), read as a tool reads them: every name in
    them imports (``from __future__ import annotations`` defers them to this moment)."""
    import inspect
    import typing

    public = [app for app, *_ in APPS] + [
        imagenet_utils.preprocess_input,
        imagenet_utils.decode_predictions,
        models.build,
        models.backbone,
        models.with_repeats,
        models.layout,
        models.layout_block_names,
        models.block_names,
        models.endpoints,
        heads.classifier,
        heads.head,
        heads.pooled,
        heads.replace_classifier,
        heads.with_class_names,
        heads.class_names,
    ]
    # The entry points of training, export and evaluation (they import TensorFlow).
    from inception.evaluation import job as evaluation_job
    from inception.export import exporter
    from inception.export import job as export_job
    from inception.train import trainer

    public += [trainer.run, export_job.run, exporter.run_export, evaluation_job.run]
    for function in public:
        hints = typing.get_type_hints(function)
        parameters = inspect.signature(function).parameters
        assert "return" in hints and set(parameters) <= set(hints), function.__name__
    assert typing.get_type_hints(models.build)["return"] is keras.Model
    assert typing.get_type_hints(models.Backbone)["features"] is keras.KerasTensor


@pytest.fixture(scope="module", params=APPS, ids=IDS)
def default_model(request):
    """Each network as ``app(weights=None)`` builds it: full size, the top, default input."""
    app, _, last_dim, _ = request.param
    return app(weights=None), last_dim


def test_defaults_299_inputs_1000_softmax_classes_paper_widths(default_model):
    model, last_dim = default_model
    assert model.input_shape == (None, 299, 299, 3)
    assert model.output_shape == (None, 1000)
    last = model.layers[-1]
    assert last.name == "predictions" and last.activation.__name__ == "softmax"
    assert model.get_layer("features").output.shape == (None, 8, 8, last_dim)


@pytest.mark.parametrize("app, module, _, last_dim", APPS, ids=IDS)
def test_notop_variable_input_channels(app, module, _, last_dim):
    for channels in (1, 4):
        model = app(weights=None, include_top=False, input_shape=(None, None, channels), **SMALL)
        assert list(model.outputs[0].shape) == [None, None, None, last_dim]


@pytest.mark.parametrize("app, module, _, last_dim", APPS, ids=IDS)
def test_notop_custom_input_tensor_and_shape(app, module, _, last_dim):
    source = keras.Input(shape=(200, 200, 4), name="custom_input")
    tensor = keras.layers.Conv2D(3, 2, strides=2)(source)
    model = app(weights=None, include_top=False, input_tensor=tensor, **SMALL)
    assert model.inputs[0] is source  # the tensor's source input
    assert model.outputs[0].shape[-1] == last_dim
    model = app(weights=None, include_top=False, input_shape=(123, 123, 3), pooling="max", **SMALL)
    assert list(model.outputs[0].shape) == [None, last_dim]
    assert model.input_shape == (None, 123, 123, 3)


@pytest.mark.parametrize("app, module, _, last_dim", APPS, ids=IDS)
def test_channels_first_builds_with_the_right_shapes(app, module, _, last_dim, data_format):
    # TensorFlow's CPU kernels have no NCHW convolution: shapes only (as Keras' own tests do);
    # test_channels_first_computes_channels_last_function runs it under JAX.
    data_format("channels_first")
    model = app(weights=None, include_top=False, input_shape=(1, None, None), **SMALL)
    assert list(model.outputs[0].shape) == [None, last_dim, None, None]
    model = app(weights=None, **SMALL)
    assert model.input_shape == (None, 3, 299, 299) and model.output_shape == (None, 1000)
    assert model.get_layer("features").output.shape == (None, last_dim, 8, 8)


@pytest.mark.parametrize("app, module, _, last_dim", APPS, ids=IDS)
def test_serializes_and_classifier_is_last_layer(app, module, _, last_dim):
    model = app(
        weights=None,
        input_shape=(75, 75, 3),
        classes=7,
        classifier_activation=None,
        name="my_net",
        **SMALL,
    )
    assert model.name == "my_net" and model.output_shape == (None, 7)
    assert (
        model.layers[-1].name == "predictions" and model.layers[-1].activation.__name__ == "linear"
    )
    config = keras.saving.serialize_keras_object(model)
    rebuilt = keras.saving.deserialize_keras_object(config)
    assert len(rebuilt.weights) == len(model.weights)
    rebuilt.set_weights(model.get_weights())
    x = np.random.default_rng(0).uniform(-1, 1, (1, 75, 75, 3)).astype("float32")
    np.testing.assert_allclose(rebuilt(x), model(x), atol=1e-6)


def test_weights_from_files(tmp_path):
    """A Keras .weights.h5 and a .keras of this project load; a file of another class count is
    refused with the counts named."""
    x = np.random.default_rng(1).uniform(-1, 1, (1, 75, 75, 3)).astype("float32")
    model = applications.InceptionResNetV1(
        weights=None, input_shape=(75, 75, 3), classes=7, **SMALL
    )
    model.save_weights(tmp_path / "net.weights.h5")
    model.save(tmp_path / "net.keras")
    for path in (tmp_path / "net.weights.h5", str(tmp_path / "net.keras")):
        again = applications.InceptionResNetV1(
            weights=path, input_shape=(75, 75, 3), classes=7, **SMALL
        )
        np.testing.assert_array_equal(again(x), model(x))
    with pytest.raises(ValueError, match="the file's classifier has 7 classes, the model 10"):
        applications.InceptionResNetV1(
            weights=str(tmp_path / "net.keras"), input_shape=(75, 75, 3), classes=10, **SMALL
        )


# --------------------------------------------------------------------------- bad input --

BAD = [
    (dict(weights="imagenet21k"), "The `weights` argument should be either `None`"),
    (dict(weights="/no/such/file.h5"), "The `weights` argument should be either `None`"),
    (
        dict(classes=10),
        'If using `weights="imagenet"` with `include_top=True`, `classes` should be 1000',
    ),
    (dict(include_top=False, input_shape=(74, 200, 3)), "Input size must be at least 75x75"),
    (dict(include_top=False, input_shape=(200, 200, 4)), "The input must have 3 channels"),
    (dict(input_shape=(300, 300, 3)), None),  # Keras: the top with ImageNet weights is 299x299x3
    (dict(weights=None, input_shape=(None, None, 3)), "you should specify a static `input_shape`"),
    (dict(weights=None, input_shape=(299, 299)), "`input_shape` must be a tuple of three integers"),
    (dict(classifier_activation="relu"), "Only `None` and `softmax` activations are allowed"),
    (dict(include_top=False, pooling="mean"), "`pooling` should be None, 'avg' or 'max'"),
    (dict(weights=None, classes=0), "`classes` should be a positive integer"),
    (
        dict(weights=None, input_tensor=np.zeros((1, 299, 299, 3))),
        "`input_tensor` must be a Keras tensor",
    ),
    (dict(width_multiplier=0.5), "needs the paper's network; leave out width_multiplier=0.5"),
    (dict(repeats=[4, 7, 2]), r"needs the paper's network; leave out repeats=\[4, 7, 2\]"),
]


@pytest.fixture
def nothing_heavy(monkeypatch):
    """Fails the test if a layer is made or a weights file is fetched."""

    def forbidden(*args, **kwargs):
        raise AssertionError("reached the model or the fetch before refusing the arguments")

    from inception.weights import fetch

    monkeypatch.setattr(models, "backbone", forbidden)
    monkeypatch.setattr(fetch, "official_file", forbidden)
    monkeypatch.setattr(keras.utils, "get_file", forbidden)


@pytest.mark.parametrize("kwargs, message", BAD)
def test_bad_arguments_fail_before_any_work(kwargs, message, nothing_heavy):
    if message is None:  # the imagenet top's input shape, as obtain_input_shape words it
        message = r"`input_shape` should be \(299, 299, 3\)"
    with pytest.raises(ValueError, match=message):
        applications.InceptionV4(**kwargs)


def test_inception_resnet_v1_has_no_imagenet_weights(nothing_heavy):
    with pytest.raises(ValueError, match="Inception-ResNet-v1 has no released ImageNet weights"):
        applications.InceptionResNetV1(weights="imagenet")


def test_imagenet_resolves_the_released_file_of_the_full_network(monkeypatch):
    """weights="imagenet" asks inception.weights for the network's released TF-slim file, for
    the full-size model (stopped there: no download in the tests)."""
    from inception.weights import fetch

    asked = []

    def official_file(network, source=fetch.DEFAULT_SOURCE, **kwargs):
        asked.append((network, source))
        raise RuntimeError("stop before any download")

    monkeypatch.setattr(fetch, "official_file", official_file)
    with pytest.raises(RuntimeError, match="stop before any download"):
        applications.InceptionResNetV2(include_top=False)
    assert asked == [("inception_resnet_v2", "slim")]


# ------------------------------------------------------------------ one model, one head --


def test_replace_classifier_builds_a_new_head_on_the_same_network():
    model = models.build("inception_v4", input_shape=(75, 75, 3), aux_logits=True, **SMALL)
    new = heads.replace_classifier(model, heads.classifier(10, activation=None))
    assert [tuple(o.shape) for o in new.outputs] == [(None, 10), (None, 1000)]
    assert new.get_layer("stem") is model.get_layer("stem")
    assert model.get_layer("predictions").units == 1000  # the original is untouched
    x = np.random.default_rng(2).uniform(-1, 1, (1, 75, 75, 3)).astype("float32")
    pooled = keras.ops.convert_to_numpy(
        keras.Model(model.input, model.get_layer(heads.POOLED).output)(x)
    )
    kernel, bias = new.get_layer("predictions").get_weights()
    np.testing.assert_allclose(new(x)[0], pooled @ kernel + bias, atol=1e-5)
    with pytest.raises(ValueError, match="must be named 'predictions'"):
        heads.replace_classifier(model, keras.layers.Dense(10))


def test_labeled_dense_of_files_saved_before_the_move_still_loads():
    """.keras files written before LabeledDense moved to heads.py name its old module."""
    model = models.build("inception_resnet_v1", input_shape=(75, 75, 3), num_classes=3, **SMALL)
    named = heads.with_class_names(model, ["n1", "n2", "n3"], ["one", "two", "three"])
    text = json.dumps(keras.saving.serialize_keras_object(named))
    old = text.replace('"module": "inception.heads"', '"module": "inception.weights.labeled"')
    assert old != text
    again = keras.saving.deserialize_keras_object(json.loads(old), safe_mode=True)
    assert heads.class_names(again) == (["n1", "n2", "n3"], ["one", "two", "three"])


def test_models_and_applications_import_neither_weights_nor_tensorflow():
    code = (
        "import sys, inception.models, inception.heads, inception.applications; "
        "print(sorted(m for m in ('inception.weights', 'tensorflow') if m in sys.modules))"
    )
    env = {**os.environ, "KERAS_BACKEND": "numpy"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------------- slow --


@pytest.mark.slow
def test_channels_first_computes_channels_last_function():
    """Under JAX (whose CPU convolutions take NCHW), a channels_first network with a
    channels_last network's weights gives its outputs on the transposed images."""
    code = """
import numpy as np, keras
from inception import applications as A
x = np.random.default_rng(0).uniform(-1, 1, (2, 80, 80, 3)).astype("float32")
for app in (A.InceptionV4, A.InceptionResNetV1, A.InceptionResNetV2):
    keras.config.set_image_data_format("channels_last")
    last = app(weights=None, include_top=False, pooling="avg", input_shape=(80, 80, 3), width_multiplier=0.1,
               repeats=(1, 1, 1))
    keras.config.set_image_data_format("channels_first")
    first = app(weights=None, include_top=False, pooling="avg", input_shape=(3, 80, 80), width_multiplier=0.1,
                repeats=(1, 1, 1))
    first.set_weights(last.get_weights())
    a, b = last.predict(x, verbose=0), first.predict(x.transpose(0, 3, 1, 2), verbose=0)
    assert np.abs(a).max() > 1e-3, app.__name__
    np.testing.assert_allclose(b, a, atol=1e-5 * np.abs(a).max(), err_msg=app.__name__)
print("ok")
"""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": root}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=root,
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


@pytest.mark.slow
def test_imagenet_loads_the_released_file_from_the_cache(tmp_path, monkeypatch):
    """weights="imagenet" reads the released TF-slim archive's name from the cache directory,
    without downloading: an archive of the reference fixtures' rule weights gives the released
    Inception-v4's logits (1000 classes, background dropped; 1001 kept), which decode to the
    same classes."""
    import tarfile

    import test_weights_reference as reference
    from inception.weights import fetch

    if not os.path.isdir(reference.REF):
        pytest.skip(f"reference fixtures not found at {reference.REF}")
    rw = _refweights(reference.REF)
    slim = reference._json("inception_v4.slim.json")
    ckpt = str(tmp_path / "inception_v4.ckpt")
    reference._write_v1_checkpoint(ckpt, slim["checkpoint_keys"], rw)
    cache = tmp_path / "cache"
    cache.mkdir()
    with tarfile.open(
        cache / fetch.official("inception_v4").filename, "w:gz", compresslevel=0
    ) as archive:
        archive.add(ckpt, arcname="inception_v4.ckpt")
    monkeypatch.setenv(fetch.ENV_CACHE, str(cache))
    monkeypatch.setattr(keras.utils, "get_file", lambda *a, **k: pytest.fail("tried to download"))
    images = rw.reference_images(2, 299)
    logits = applications.InceptionV4(classifier_activation=None)(images)
    released = np.asarray(slim["logits"])
    assert reference._relative_error(logits, released[:, 1:]).max() < reference.TOLERANCE
    with_background = applications.InceptionV4(classes=1001, classifier_activation=None)(images)
    assert reference._relative_error(with_background, released).max() < reference.TOLERANCE

    def classes_of(preds):
        decoded = applications.decode_predictions(np.asarray(preds), top=3)
        return [[entry[:2] for entry in row] for row in decoded]

    assert classes_of(with_background) == classes_of(logits)


def _refweights(root):
    import importlib.util

    spec = importlib.util.spec_from_file_location("refweights", os.path.join(root, "refweights.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
