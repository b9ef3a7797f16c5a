"""Fuzzes the training input pipeline's TFRecord files and counts the outcomes.

    python benchmarks/fuzz_records.py                 # 200 damaged copies + 10 JPEG passes, seed 0
    python benchmarks/fuzz_records.py --damaged=50 --seed=1

The embedded dataset (``sklearn_digits``) is prepared once in a temporary directory; each case
copies it and damages one of its validation TFRecord files, then reads one pass of the eval
input pipeline (``inception.data.InputPipeline``). Two kinds of damage:

- ``framing`` (``FRAMING_KINDS``): a truncated file, or a bit flipped in a record's length, the
  length's checksum, the payload or the payload's checksum. TensorFlow's reader cannot read past
  such a record, so the rest of the file is lost: the pass must stop with an InvalidArgumentError naming
  the file, or (when nothing after the damaged record was lost) finish with it counted as skipped;
- ``jpeg``: a file rewritten with valid framing whose records' images are replaced, at
  ``--jpeg_rate``, by the serving fuzz's mutations (``fuzz_serving.mutate``): every record the
  decoder refuses is skipped and counted, every other one comes out.

Outcomes: ``named error``, ``skipped and counted`` (the pass finished and the counts add
up), or anything else by class, ``hung`` included (no pass within ``TIMEOUT_S``: before issue 27
every framing case hung, with TFDS's count check failing on every call under ``ignore_errors``).
``tests/test_records_fuzz.py`` asserts on the same generators.
"""

import glob
import os
import shutil
import struct
import sys
import threading

import numpy as np

FRAMING_KINDS = ("truncate", "length", "length_crc", "payload", "payload_crc")
GOOD_OUTCOMES = ("named error", "skipped and counted")
TIMEOUT_S = 60.0
SIZE = 32  # the pipeline's output side: small, the decoding is what is fuzzed


def record_offsets(data):
    """(start, payload length) of each record of a TFRecord file's bytes: 8-byte length, 4-byte
    length checksum, payload, 4-byte payload checksum."""
    out, i = [], 0
    while i + 12 <= len(data):
        length = struct.unpack("<Q", data[i : i + 8])[0]
        out.append((i, length))
        i += 16 + length
    return out


def count_after(data, index):
    """Records of a TFRecord file's bytes after record ``index``: what a damaged record there
    takes with it (the damaged one itself comes out as one skipped position)."""
    return len(record_offsets(data)) - index - 1


def damage_framing(kind, rng, data):
    """``data`` (one TFRecord file) with one ``kind`` of damage (``FRAMING_KINDS``)."""
    if kind == "truncate":
        return data[: int(rng.integers(1, len(data)))]
    start, length = record_offsets(data)[int(rng.integers(len(record_offsets(data))))]
    region = {
        "length": (start, 8),
        "length_crc": (start + 8, 4),
        "payload": (start + 12, length),
        "payload_crc": (start + 12 + length, 4),
    }[kind]
    out = bytearray(data)
    out[region[0] + int(rng.integers(region[1]))] ^= 1 << int(rng.integers(8))
    return bytes(out)


def replace_images(path, rng, rate, seeds, huge):
    """Rewrites the TFRecord file ``path`` (valid framing) with each record's image replaced by a
    serving-fuzz mutation with probability ``rate``; returns the replaced images."""
    import tensorflow as tf

    from benchmarks import fuzz_serving

    records, replaced = list(tf.compat.v1.io.tf_record_iterator(path)), []
    with tf.io.TFRecordWriter(path) as writer:
        for record in records:
            if rng.random() < rate:
                example = tf.train.Example.FromString(record)
                kind = fuzz_serving.KINDS[int(rng.integers(len(fuzz_serving.KINDS)))]
                image = fuzz_serving.mutate(kind, rng, seeds, huge)
                example.features.feature["image"].bytes_list.value[:] = [image]
                record = example.SerializeToString()
                replaced.append(image)
            writer.write(record)
    return replaced


def decodes(image):
    """Whether the eval preprocessing accepts ``image`` on its own (the ground truth)."""
    import tensorflow as tf

    from inception.data import preprocessing

    try:
        preprocessing.preprocess_for_eval(tf.constant(image), SIZE)
        return True
    except tf.errors.OpError:
        return False


def validation_files(data_dir):
    return sorted(glob.glob(os.path.join(data_dir, "**", "*validation.tfrecord*"), recursive=True))


def one_pass(data_dir, timeout=TIMEOUT_S):
    """(images read, records skipped, error or None) of one pass of the eval pipeline; the
    error is 'hung' when no pass ends within ``timeout`` (the reading thread is left behind)."""
    from inception import data

    pipe = data.InputPipeline(
        data.EMBEDDED_DATASET,
        split="eval",
        image_size=SIZE,
        global_batch_size=64,
        is_training=False,
        data_dir=data_dir,
    )
    result = {}

    def drain():
        count = 0
        try:
            for _, labels in pipe.input_fn():
                count += int(labels.shape[0])
        except Exception as error:  # noqa: BLE001 -- every failure is classified
            result["error"] = error
        result["count"] = count

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return 0, pipe.num_skipped(), "hung", pipe.num_examples
    return result["count"], pipe.num_skipped(), result.get("error"), pipe.num_examples


def framing_outcome(path, read, skipped, error, expected):
    """The outcome name of a framing case whose damaged file is ``path``."""
    import tensorflow as tf

    if error is None:
        return (
            "skipped and counted"
            if skipped >= 1 and read + skipped == expected
            else (f"finished: {read} read + {skipped} skipped of {expected}")
        )
    if error == "hung":
        return "hung"
    if isinstance(error, tf.errors.InvalidArgumentError) and path in error.message:
        return "named error"
    return type(error).__name__


def fuzz_framing(clean_dir, scratch, count, seed):
    """``count`` framing cases: [(kind, outcome, message)]."""
    rng = np.random.default_rng(seed)
    results = []
    for i in range(count):
        kind = FRAMING_KINDS[i % len(FRAMING_KINDS)]
        case = os.path.join(scratch, f"framing-{i}")
        shutil.copytree(clean_dir, case)
        files = validation_files(case)
        path = files[int(rng.integers(len(files)))]
        with open(path, "rb") as f:
            damaged = damage_framing(kind, rng, f.read())
        with open(path, "wb") as f:
            f.write(damaged)
        read, skipped, error, expected = one_pass(case)
        message = getattr(error, "message", None)
        results.append((kind, framing_outcome(path, read, skipped, error, expected), message))
        shutil.rmtree(case, ignore_errors=True)
    return results


def fuzz_jpeg(clean_dir, scratch, passes, seed, rate):
    """``passes`` copies whose images are replaced at ``rate``: [(replaced, undecodable,
    read, skipped, error)]."""
    from benchmarks import fuzz_serving

    rng = np.random.default_rng(seed)
    seeds = fuzz_serving.seed_images()
    huge = fuzz_serving.huge_images(fuzz_serving.FUZZ_MAX_PIXELS)
    results = []
    for i in range(passes):
        case = os.path.join(scratch, f"jpeg-{i}")
        shutil.copytree(clean_dir, case)
        replaced = [
            image
            for path in validation_files(case)
            for image in replace_images(path, rng, rate, seeds, huge)
        ]
        bad = sum(not decodes(image) for image in replaced)
        read, skipped, error, expected = one_pass(case)
        results.append((len(replaced), bad, read, skipped, error, expected))
        shutil.rmtree(case, ignore_errors=True)
    return results


def prepare(directory):
    from inception import data

    data.describe(data.EMBEDDED_DATASET, data_dir=directory)
    return directory


def main():
    import argparse
    import collections
    import tempfile
    import time

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--damaged", type=int, default=200, help="framing cases")
    parser.add_argument("--jpeg_passes", type=int, default=10)
    parser.add_argument("--jpeg_rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        clean = prepare(os.path.join(scratch, "clean"))
        start = time.perf_counter()
        framing = fuzz_framing(clean, scratch, args.damaged, args.seed)
        table = collections.Counter((kind, outcome) for kind, outcome, _ in framing)
        print(
            f"{args.damaged} framing cases, seed {args.seed}: {time.perf_counter() - start:.0f} s"
        )
        for (kind, outcome), n in sorted(table.items()):
            print(f"  {kind:<12} {outcome:<40} {n}")
        shown = next((m for _, o, m in framing if o == "named error"), None)
        print(f"  e.g. {shown[:400] if shown else None}")
        jpeg = fuzz_jpeg(clean, scratch, args.jpeg_passes, args.seed, args.jpeg_rate)
        for replaced, bad, read, skipped, error, expected in jpeg:
            print(
                f"  jpeg pass: {replaced} replaced, {bad} undecodable alone; read {read}, "
                f"skipped {skipped}, of {expected}; error {type(error).__name__ if error else None}"
            )
    failures = sum(o not in GOOD_OUTCOMES for _, o, _ in framing) + sum(
        e is not None or s != b or r + s != x for _, b, r, s, e, x in jpeg
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from inception_cli import common

    common.setup_script()
    sys.exit(main())
