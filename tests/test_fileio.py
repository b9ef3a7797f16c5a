"""inception.fileio: atomic, durable writes on the local disk and on a TensorFlow file system
that is not local (TensorFlow's in-memory ``ram://``, standing in for ``gs://``)."""

import os

import pytest
import tensorflow as tf

from inception import fileio


@pytest.mark.parametrize("root", ["local", "ram://fileio-test"])
def test_write_read_and_publish(root, tmp_path):
    root = str(tmp_path) if root == "local" else root
    path = fileio.join(root, "a", "x.json")
    fileio.makedirs(fileio.join(root, "a"))
    fileio.write_json(path, {"b": 1, "a": [1.5]})
    assert fileio.read_json(path) == {"a": [1.5], "b": 1}
    fileio.write_text(path, "second")  # replaces the file whole
    assert fileio.read_text(path) == "second"
    assert fileio.listdir(fileio.join(root, "a")) == ["x.json"]  # no temporary left

    def write(directory):
        with open(os.path.join(directory, "f.txt"), "w") as f:
            f.write("content")
        os.makedirs(os.path.join(directory, "sub"))
        with open(os.path.join(directory, "sub", "g.bin"), "wb") as f:
            f.write(b"\0\1")

    final = fileio.join(root, "published", "1")
    fileio.publish_dir(final, write)
    assert fileio.is_published(final)
    assert fileio.read_text(fileio.join(final, "f.txt")) == "content"
    assert fileio.read_bytes(fileio.join(final, "sub", "g.bin")) == b"\0\1"
    with pytest.raises(FileExistsError):
        fileio.publish_dir(final, write)


@pytest.mark.parametrize("target_root", ["local", "ram://fileio-copy"])
def test_copy_streams_in_pieces_and_keeps_every_byte(target_root, tmp_path, monkeypatch):
    data = os.urandom(100_003)  # not a multiple of the piece size: the last piece is short
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    monkeypatch.setattr(fileio, "CHUNK_BYTES", 4096)
    pieces = list(fileio.read_chunks(str(source), size=4096))
    assert len(pieces) == 25 and max(map(len, pieces)) == 4096 and b"".join(pieces) == data
    root = str(tmp_path) if target_root == "local" else target_root
    target = fileio.join(root, "copied.bin")
    fileio.copy_file(str(source), target)
    assert fileio.read_bytes(target) == data


def test_a_failed_publish_leaves_nothing(tmp_path):
    def fail(directory):
        open(os.path.join(directory, "partial"), "w").close()
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        fileio.publish_dir(str(tmp_path / "out" / "1"), fail)
    assert os.listdir(tmp_path / "out") == []


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = str(tmp_path / "summary.json")
    fileio.write_json(path, {"v": 1})

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        fileio.write_json(path, {"v": 2})
    monkeypatch.undo()
    assert fileio.read_json(path) == {"v": 1}
    assert os.listdir(tmp_path) == ["summary.json"]


def test_keras_model_saved_to_a_non_local_file_system_loads():
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    path = "ram://fileio-test/model.keras"
    fileio.save_keras(model, path)
    assert tf.io.gfile.exists(path)
    with fileio.local_scratch() as scratch:
        local = os.path.join(scratch, "m.keras")
        with open(local, "wb") as f:
            f.write(fileio.read_bytes(path))
        loaded = keras.saving.load_model(local)
    x = tf.ones((1, 3))
    assert float(tf.reduce_max(tf.abs(loaded(x) - model(x)))) == 0.0
