"""The embedded dataset (built offline, right labels) and InputPipeline behaviour on it."""

import collections
import hashlib
import itertools
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from sklearn.datasets import load_digits

from inception import data
from inception.data import sklearn_digits
from inception.train import config
from offline import no_network

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tfds"))
    with no_network():
        info = data.describe(data.EMBEDDED_DATASET, data_dir=path)
    assert info.prepared
    return path


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _pipe(data_dir, **kwargs):
    options = dict(
        split="train", image_size=40, global_batch_size=32, is_training=True, data_dir=data_dir
    )
    options.update(kwargs)
    return data.InputPipeline(data.EMBEDDED_DATASET, **options)


def _collect(dataset, limit=None):
    images, labels = [], []
    for i, (x, y) in enumerate(dataset):
        if limit is not None and i >= limit:
            break
        images.append(x.numpy())
        labels.append(y.numpy())
    return np.concatenate(images), np.concatenate(labels)


def test_embedded_info(data_dir, digits):
    info = data.describe(data.EMBEDDED_DATASET, data_dir=data_dir)
    assert info.name == "sklearn_digits" and info.num_classes == 10
    assert info.label_names == [str(d) for d in range(10)]
    assert info.num_train + info.num_eval == len(digits.target) == 1797
    assert 0.18 < info.num_eval / 1797 < 0.22
    assert (info.train_split, info.eval_split) == ("train", "validation")


def test_split_is_stratified_deterministic_and_disjoint(digits):
    train, validation = sklearn_digits.split_indices(digits.target)
    again_train, again_validation = sklearn_digits.split_indices(digits.target)
    np.testing.assert_array_equal(train, again_train)
    np.testing.assert_array_equal(validation, again_validation)
    assert not set(train) & set(validation)
    assert sorted(set(train) | set(validation)) == list(range(1797))
    for cls in range(10):
        n_cls = int(np.sum(digits.target == cls))
        assert int(np.sum(digits.target[validation] == cls)) == round(0.2 * n_cls)


@pytest.mark.parametrize("split", ["train", "validation"])
def test_stored_images_and_labels_are_sklearns(data_dir, digits, split):
    """Every stored JPEG, shrunk back to 8x8, is the scikit-learn scan with its own label."""
    builder = tfds.builder(data.EMBEDDED_DATASET, data_dir=data_dir)
    expected_indices = sklearn_digits.split_indices(digits.target)[split == "validation"]
    seen = []
    for example in tfds.as_numpy(builder.as_dataset(split=split)):
        index = int(example["sklearn_index"])
        seen.append(index)
        image = example["image"]
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        assert int(example["label"]) == int(digits.target[index])
        scan = image.astype(np.float64).mean(axis=2).reshape(8, 8, 8, 8).mean(axis=(1, 3))
        np.testing.assert_allclose(scan * 16.0 / 255.0, digits.images[index], atol=0.5)
    assert sorted(seen) == sorted(expected_indices.tolist())
    encoded = next(
        iter(
            builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()}).take(1)
        )
    )["image"]
    assert bool(tf.io.is_jpeg(encoded))


def _tfds_records(data_dir, split):
    """(encoded image, label) of a split as TFDS itself reads it, in its default order."""
    builder = tfds.builder(data.EMBEDDED_DATASET, data_dir=data_dir)
    return [
        (e["image"], int(e["label"]))
        for e in tfds.as_numpy(
            builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()})
        )
    ]


def test_reader_yields_the_splits_encoded_images_and_labels_in_order(data_dir):
    expected = _tfds_records(data_dir, "validation")
    split = data.open_split(data.EMBEDDED_DATASET, "eval", data_dir=data_dir)
    assert (split.name, split.num_examples, split.num_files) == ("validation", len(expected), 4)
    image, label = next(iter(split.read()))
    assert image.dtype == tf.string and label.dtype == tf.int32 and label.shape == ()
    assert [(x.numpy(), int(y)) for x, y in split.read()] == expected
    first = data.open_split(data.EMBEDDED_DATASET, "eval", data_dir=data_dir, limit=5)
    assert (first.name, first.num_examples) == ("validation[:5]", 5)
    assert [(x.numpy(), int(y)) for x, y in first.read()] == expected[:5]
    whole = data.open_split(data.EMBEDDED_DATASET, "eval", data_dir=data_dir, limit=10_000)
    assert whole.name == "validation"
    for kwargs, message in (
        (dict(split="test"), "split must be one of"),
        (dict(limit=0), "limit must be a positive"),
    ):
        with pytest.raises(ValueError, match=message):
            data.open_split(
                data.EMBEDDED_DATASET, **dict(dict(split="eval"), **kwargs), data_dir=data_dir
            )


@pytest.mark.parametrize("by_files", [True, False])
def test_reader_shards_partition_the_split(data_dir, by_files):
    """3 pipelines over 4 files: by files each reads whole files of its own; by even slices
    each reads a third of the examples."""
    split = data.open_split(data.EMBEDDED_DATASET, "train", data_dir=data_dir)
    everything = collections.Counter(x for x, _ in _tfds_records(data_dir, "train"))
    union, sizes = collections.Counter(), []
    for pipeline_id in range(3):
        shard = [x.numpy() for x, _ in split.read(3, pipeline_id, by_files=by_files)]
        sizes.append(len(shard))
        union += collections.Counter(shard)
    assert union == everything
    if by_files:
        files = split.builder.info.splits["train"].shard_lengths
        whole_files = {sum(c) for r in range(1, 3) for c in itertools.combinations(files, r)}
        assert len(files) == 4 and set(sizes) <= whole_files, (sizes, files)
    else:
        assert sizes == split.slice_sizes(3) and max(sizes) - min(sizes) <= 1


def test_pipeline_takes_the_data_config_and_its_crop_fields(data_dir):
    """The DataConfig's crop fields override the dataset's defaults; unset ones keep them."""
    defaults = data.train_preprocessing_defaults(data.EMBEDDED_DATASET)
    common = dict(
        split="train",
        image_size=40,
        global_batch_size=16,
        is_training=True,
        seed=4,
        deterministic=True,
    )
    plain = data.InputPipeline(
        config.DataConfig(dataset="sklearn_digits", data_dir=data_dir), **common
    )
    assert plain.train_options == defaults
    wide = config.DataConfig(
        dataset="sklearn_digits",
        data_dir=data_dir,
        area_range="0.2,0.5",
        min_object_covered=0.05,
        color_distortion="none",
    )
    cropped = data.InputPipeline(wide, **common)
    assert cropped.train_options == dict(
        defaults, area_range=(0.2, 0.5), min_object_covered=0.05, color_distortion="none"
    )
    by_name = data.InputPipeline(
        "sklearn_digits",
        data_dir=data_dir,
        area_range=(0.2, 0.5),
        min_object_covered=0.05,
        color_distortion="none",
        **common,
    )
    assert by_name.train_options == cropped.train_options
    first = [next(iter(p.input_fn()))[0].numpy() for p in (plain, cropped)]
    assert np.abs(first[0] - first[1]).max() > 0.1  # other crops and colours, same seed
    with pytest.raises(TypeError, match="in the DataConfig"):
        data.InputPipeline(wide, data_dir=data_dir, **common)
    with pytest.raises(TypeError, match=r"unexpected keyword argument.*flip"):
        data.InputPipeline("sklearn_digits", data_dir=data_dir, flip=True, **common)


def test_embedded_defaults_are_milder_and_do_not_flip():
    defaults = data.train_preprocessing_defaults(data.EMBEDDED_DATASET)
    assert defaults["flip"] is False and defaults["area_range"][0] >= 0.5
    paper = data.train_preprocessing_defaults(data.IMAGENET)
    assert paper["flip"] is True and paper["area_range"] == (0.05, 1.0)
    assert paper["aspect_ratio_range"] == (0.75, 1.33) and paper["min_object_covered"] == 0.1


def test_train_and_eval_batches(data_dir):
    train = _pipe(data_dir, seed=5)
    images, labels = next(iter(train.input_fn()))
    assert images.shape == (32, 40, 40, 3) and images.dtype == tf.float32
    assert labels.shape == (32,) and labels.dtype == tf.int32
    assert -1.0 <= float(tf.reduce_min(images)) < -0.9
    assert 0.9 < float(tf.reduce_max(images)) <= 1.0
    assert train.steps_per_epoch == train.num_examples // 32

    evaluation = _pipe(data_dir, split="eval", is_training=False)
    images, labels = _collect(evaluation.input_fn())
    assert images.shape == (evaluation.num_examples, 40, 40, 3)
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert set(labels.tolist()) == set(range(10))
    assert evaluation.steps_per_epoch == -(-evaluation.num_examples // 32)
    assert evaluation.num_skipped() == 0


def test_eval_is_deterministic(data_dir):
    pipe = _pipe(data_dir, split="eval", is_training=False)
    first_images, first_labels = _collect(pipe.input_fn())
    second_images, second_labels = _collect(pipe.input_fn())
    np.testing.assert_array_equal(first_labels, second_labels)
    np.testing.assert_array_equal(first_images, second_images)


def test_train_crops_differ_between_epochs_and_seeded_runs_repeat(data_dir):
    # No shuffling, so epoch 2 shows the same examples in the same order as epoch 1.
    pipe = _pipe(
        data_dir, split="eval", seed=11, deterministic=True, shuffle=False, global_batch_size=64
    )
    n = pipe.num_examples  # the stream repeats before batching: epoch 2 starts at element n
    images, labels = _collect(pipe.input_fn(), limit=-(-2 * n // 64))
    np.testing.assert_array_equal(labels[:n], labels[n : 2 * n])
    differing = [np.abs(a - b).max() > 0.05 for a, b in zip(images[:n], images[n : 2 * n])]
    assert np.mean(differing) > 0.9

    again, _ = _collect(pipe.input_fn(), limit=2)
    np.testing.assert_array_equal(again, images[:128])
    other_seed, _ = _collect(
        _pipe(
            data_dir, split="eval", seed=12, deterministic=True, shuffle=False, global_batch_size=64
        ).input_fn(),
        limit=1,
    )
    assert np.abs(other_seed - images[:64]).max() > 0.05


def _fingerprints(images):
    return collections.Counter(hashlib.sha1(np.round(x, 3).tobytes()).hexdigest() for x in images)


@pytest.mark.parametrize("num_pipelines", [2, 5])  # 5 > the 4 files: example-level sharding
def test_input_pipelines_read_disjoint_shards(data_dir, num_pipelines):
    pipe = _pipe(data_dir, split="eval", is_training=False, global_batch_size=20)
    everything = _fingerprints(_collect(pipe.input_fn())[0])
    union = collections.Counter()
    for pipeline_id in range(num_pipelines):
        context = tf.distribute.InputContext(
            num_input_pipelines=num_pipelines,
            input_pipeline_id=pipeline_id,
            num_replicas_in_sync=num_pipelines,
        )
        batches = list(pipe.input_fn(context))
        assert batches[0][0].shape[0] == 20 // num_pipelines  # per-replica batch
        shard = _fingerprints(np.concatenate([x.numpy() for x, _ in batches]))
        assert 0 < sum(shard.values()) < pipe.num_examples
        union += shard
    assert union == everything  # each example read by exactly one input pipeline


def test_other_tfds_datasets_are_never_downloaded_implicitly(tmp_path):
    with no_network():
        with pytest.raises(ValueError, match=r"not prepared.*download=True"):
            data.describe("mnist", data_dir=str(tmp_path))
        with pytest.raises(ValueError, match="not prepared"):
            data.InputPipeline(
                "imagenette",
                split="train",
                image_size=32,
                global_batch_size=8,
                is_training=True,
                data_dir=str(tmp_path),
            )
        with pytest.raises(ValueError, match="unknown dataset"):
            data.describe("no_such_dataset_xyz", data_dir=str(tmp_path))
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(split="test"), "split"),
        (dict(global_batch_size=0), "global_batch_size"),
        (dict(deterministic=True), "seed"),
        (dict(area_range=(0.9, 0.1)), "area_range"),
        (dict(color_distortion="loud"), "color_distortion"),
    ],
)
def test_bad_pipeline_arguments(data_dir, kwargs, message):
    with pytest.raises(ValueError, match=message):
        _pipe(data_dir, **kwargs)


def test_under_distribute_datasets_from_function(data_dir):
    """Two logical CPUs, MirroredStrategy: per-replica batches, an undecodable record counted.

    Runs in a subprocess because logical devices must be configured before TensorFlow starts.
    """
    script = textwrap.dedent(f"""
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from inception import data
        from inception.data import skipping
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            pipe = data.InputPipeline("sklearn_digits", split="eval", image_size=32,
                                      global_batch_size=16, is_training=True, seed=3,
                                      repeat=False, data_dir={data_dir!r})
        dist = strategy.distribute_datasets_from_function(pipe.input_fn)
        count = 0
        for images, labels in dist:
            for x, y in zip(strategy.experimental_local_results(images),
                            strategy.experimental_local_results(labels)):
                assert x.shape[1:] == (32, 32, 3) and x.dtype == tf.float32, x.shape
                assert x.shape[0] == y.shape[0] == 8
                count += int(y.shape[0])
        assert count == pipe.num_examples // 16 * 16, count
        assert pipe.num_skipped() == 0

        # Corrupt records inside the same machinery, in the middle and at the very end of
        # the stream: dropped and counted, never fatal.
        counter = skipping.SkipCounter()
        good = tf.io.encode_jpeg(tf.zeros([8, 8, 3], tf.uint8))
        records = tf.data.Dataset.from_tensor_slices([good, b"junk", good, tf.strings.substr(good, 0, 40)])
        out = skipping.map_skipping_errors(
            records.map(lambda s: (s,)),
            lambda s, position: (data.preprocessing.preprocess_for_eval(s, 4),),
            (skipping.tiny_jpeg(),), counter=counter)
        assert len(list(out)) == 2 and counter.value() == 2, counter.value()
        print("OK")
    """)
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("OK"), result.stderr[-3000:]
