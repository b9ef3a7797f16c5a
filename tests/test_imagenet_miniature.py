"""A miniature ILSVRC-2012 in the official archive layout, prepared by TFDS's real imagenet2012
builder from a manual dir, then read through InputPipeline.

Layout written here, as distributed by image-net.org:
  ILSVRC2012_img_train.tar: one tar per synset, nXXXXXXXX.tar, holding nXXXXXXXX_N.JPEG
  ILSVRC2012_img_val.tar:   ILSVRC2012_val_000000NN.JPEG; TFDS labels them with the validation
                            label list it ships (line k = synset of the k-th file in name order).
Each image is one flat colour chosen per synset, so a yielded (image, label) pair can be checked.
Awkward records: a CMYK JPEG, PNG data under a .JPEG name (train and val), and a truncated JPEG.
"""

import io
import os
import tarfile

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from inception import data
from offline import no_network

TFDS_IMAGENET = os.path.join(os.path.dirname(tfds.__file__), "datasets", "imagenet2012")
NUM_VAL = 6


def _lines(name):
    with open(os.path.join(TFDS_IMAGENET, name)) as f:
        return f.read().split()


SYNSETS = _lines("labels.txt")  # class index order of tfds imagenet2012
VAL_SYNSETS = _lines("validation_labels.txt")[:NUM_VAL]
TRAIN_SYNSETS = list(dict.fromkeys(VAL_SYNSETS))[:3]
_PALETTE = [
    (230, 30, 30),
    (30, 230, 30),
    (30, 30, 230),
    (230, 230, 30),
    (30, 230, 230),
    (230, 30, 230),
    (130, 130, 130),
]
COLOUR = {s: _PALETTE[i] for i, s in enumerate(dict.fromkeys(TRAIN_SYNSETS + VAL_SYNSETS))}


def _image(synset, fmt="JPEG", mode="RGB", size=(48, 40)):
    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    pixels[...] = COLOUR[synset]
    buf = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buf, fmt, quality=95)
    return buf.getvalue()


def _truncated(synset):
    whole = _image(synset, size=(64, 64))
    start_of_scan = whole.index(b"\xff\xda")
    return whole[: start_of_scan + 20]  # headers intact, the compressed data cut off


def _tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, payload in entries:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def _train_entries():
    a, b, c = TRAIN_SYNSETS
    return {
        a: [
            (f"{a}_1.JPEG", _image(a)),
            (f"{a}_2.JPEG", _image(a, size=(30, 50))),
            (f"{a}_77.JPEG", _image(a, mode="CMYK")),
        ],  # CMYK not on TFDS's list: stored raw
        b: [
            (f"{b}_1.JPEG", _image(b)),
            (f"{b}_5.JPEG", _image(b, size=(64, 32))),
            (f"{b}_9.JPEG", _truncated(b)),
        ],
        c: [
            (f"{c}_1.JPEG", _image(c)),
            (f"{c}_4.JPEG", _image(c, fmt="PNG")),  # raw PNG
            (f"{c}_2933.JPEG", _image(c, fmt="PNG")),
        ],  # on TFDS's list: TFDS converts it
    }


def _write_manual_dir(path):
    os.makedirs(path, exist_ok=True)
    train = _train_entries()
    with open(os.path.join(path, "ILSVRC2012_img_train.tar"), "wb") as f:
        f.write(_tar([(f"{synset}.tar", _tar(files)) for synset, files in train.items()]))
    val = []
    for k, synset in enumerate(VAL_SYNSETS, start=1):
        fmt, mode = ("PNG", "RGB") if k == 2 else ("JPEG", "CMYK" if k == 4 else "RGB")
        val.append((f"ILSVRC2012_val_{k:08d}.JPEG", _image(synset, fmt=fmt, mode=mode)))
    with open(os.path.join(path, "ILSVRC2012_img_val.tar"), "wb") as f:
        f.write(_tar(val[::-1]))  # archive order must not matter, only the names
    return sum(len(v) for v in train.values())


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ilsvrc")
    manual_dir, data_dir = str(root / "manual"), str(root / "tfds")
    num_train = _write_manual_dir(manual_dir)
    with no_network():
        pipe = data.InputPipeline(
            data.IMAGENET,
            split="eval",
            image_size=24,
            global_batch_size=4,
            is_training=False,
            data_dir=data_dir,
            manual_dir=manual_dir,
        )
    return dict(manual_dir=manual_dir, data_dir=data_dir, num_train=num_train, eval_pipe=pipe)


def _synset_of(image):
    """Nearest palette colour of an eval-preprocessed flat image."""
    rgb = (image.reshape(-1, 3).mean(0) + 1.0) * 127.5
    return min(COLOUR, key=lambda s: np.abs(np.array(COLOUR[s]) - rgb).sum())


def _check_labels(pipe, batches, expected_count):
    names = pipe.info.label_names
    count = 0
    for images, labels in batches:
        assert images.dtype == tf.float32 and labels.dtype == tf.int32
        assert images.shape[1:] == (24, 24, 3)
        values = images.numpy()
        assert values.min() >= -1.0 and values.max() <= 1.0
        for image, label in zip(values, labels.numpy()):
            assert names[label] == _synset_of(image)
            count += 1
    assert count == expected_count


def test_missing_archives_error_says_what_goes_where(tmp_path):
    manual_dir, data_dir = tmp_path / "manual", tmp_path / "tfds"
    manual_dir.mkdir()
    (manual_dir / "ILSVRC2012_img_val.tar").write_bytes(b"")  # only the train archive missing
    with no_network(), pytest.raises(ValueError) as err:
        data.describe(data.IMAGENET, data_dir=str(data_dir), manual_dir=str(manual_dir))
    message = str(err.value)
    assert os.path.join(str(manual_dir), "ILSVRC2012_img_train.tar") in message
    assert "ILSVRC2012_img_val.tar" not in message and "--manual_dir" in message
    with pytest.raises(ValueError, match=r"ILSVRC2012_img_val\.tar"):
        data.InputPipeline(
            data.IMAGENET,
            split="train",
            image_size=24,
            global_batch_size=4,
            is_training=True,
            data_dir=str(data_dir),
            manual_dir=str(tmp_path / "nowhere"),
        )
    assert not data_dir.exists()  # nothing was prepared or written


def test_tfds_prepared_the_miniature(dirs):
    info = data.describe(data.IMAGENET, data_dir=dirs["data_dir"])  # prepared: no manual dir
    assert info.prepared and info.num_classes == 1000 and info.label_names == SYNSETS
    assert (info.num_train, info.num_eval) == (dirs["num_train"], NUM_VAL)
    builder = tfds.builder(data.IMAGENET, data_dir=dirs["data_dir"])
    stored = {
        ex["file_name"].decode(): ex["image"]
        for ex in tfds.as_numpy(
            builder.as_dataset(split="train", decoders={"image": tfds.decode.SkipDecoding()})
        )
    }
    c = TRAIN_SYNSETS[2]
    assert tf.io.is_jpeg(stored[f"{c}_2933.JPEG"])  # TFDS re-encoded the PNG it knows about
    assert not tf.io.is_jpeg(stored[f"{c}_4.JPEG"])  # others reach the pipeline as they are
    assert stored[f"{TRAIN_SYNSETS[1]}_9.JPEG"] == _truncated(TRAIN_SYNSETS[1])


def test_validation_batches_are_labelled_by_tfds_validation_list(dirs):
    pipe = dirs["eval_pipe"]
    _check_labels(pipe, pipe.input_fn(), NUM_VAL)  # includes a PNG and a CMYK JPEG
    assert pipe.num_skipped() == 0


def test_train_split_eval_preprocessing_skips_and_counts_the_truncated_file(dirs, capfd):
    pipe = data.InputPipeline(
        data.IMAGENET,
        split="train",
        image_size=24,
        global_batch_size=4,
        is_training=False,
        data_dir=dirs["data_dir"],
    )
    _check_labels(pipe, pipe.input_fn(), dirs["num_train"] - 1)
    assert pipe.num_skipped() == 1
    err = capfd.readouterr().err
    assert "skipped 1 undecodable record(s)" in err
    assert "end of epoch: 1 undecodable record(s) skipped so far" in err
    assert "1 undecodable" in pipe.skipped_report()


def test_train_pipeline_one_epoch(dirs):
    pipe = data.InputPipeline(
        data.IMAGENET,
        split="train",
        image_size=24,
        global_batch_size=4,
        is_training=True,
        repeat=False,
        drop_remainder=False,
        color_distortion="none",
        seed=1,
        data_dir=dirs["data_dir"],
    )
    _check_labels(pipe, pipe.input_fn(), dirs["num_train"] - 1)  # flat colours survive crops
    assert pipe.num_skipped() == 1
    distorted = data.InputPipeline(
        data.IMAGENET,
        split="train",
        image_size=24,
        global_batch_size=4,
        is_training=True,
        seed=2,
        color_distortion="full",
        data_dir=dirs["data_dir"],
    )
    for images, _labels in distorted.input_fn().take(5):  # repeats past the bad record
        assert images.shape == (4, 24, 24, 3)
        assert float(tf.reduce_min(images)) >= -1.0 and float(tf.reduce_max(images)) <= 1.0
    assert distorted.num_skipped() >= 1
