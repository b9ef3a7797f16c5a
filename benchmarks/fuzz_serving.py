"""Fuzzes a SavedModel's ``serving_default`` with mutated images and counts the outcomes.

    python benchmarks/fuzz_serving.py                      # 5,000 inputs, seed 0, a small model
    python benchmarks/fuzz_serving.py --inputs=400 --seed=1 --loader=object
    python benchmarks/fuzz_serving.py --saved_model=exports/irv2/1

Without ``--saved_model`` a small Inception-ResNet-v2 (width 0.1, one block per stage, 75x75,
3 classes, random weights) is exported with ``--max_pixels`` (default 300 x 300) into a temporary
directory, so that real, decodable images above the limit are cheap to make. The model is loaded
the way TF Serving loads it (``--loader=session``: TensorFlow's session loader,
``inception.export.session``) or with ``tf.saved_model.load`` (``--loader=object``).

The inputs are mutations of a few valid JPEG and PNG encodings of small images, one kind after
another (``KINDS``): bit flips, truncations, forged width/height fields (PNG IHDR, JPEG SOF0),
random bytes, a valid signature followed by random bytes, a corrupted body, UTF-8 text, empty
strings and images larger than the limit. Each is sent alone (a batch of 1); after each, a clean
image must still get the same answer. Every outcome is one of: ``answered`` (finite
probabilities of shape [1, C] summing to 1), ``answered_invalid`` (anything else returned),
``InvalidArgumentError`` (its message printable ASCII: what a gRPC status or a REST JSON body can
carry), ``InvalidArgumentError (non-ASCII message)``, or the class of any other exception (a
``UnicodeDecodeError`` means TensorFlow's Python layer could not even build the error). The
script prints the counts by kind and outcome; ``tests/test_serving_fuzz.py`` asserts on the
same generator and classifier.
"""

import os
import struct
import sys
import zlib

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
KINDS = (
    "bit_flip",
    "truncate",
    "png_dims",
    "jpeg_dims",
    "random_bytes",
    "signature_random",
    "corrupt_body",
    "text",
    "empty",
    "huge",
)
# The outcomes that are not failures of the serving graph.
GOOD_OUTCOMES = ("answered", "InvalidArgumentError")
NUM_CLASSES = 3
IMAGE_SIZE = 75
FUZZ_MAX_PIXELS = 300 * 300


# ---- inputs ------------------------------------------------------------------------------------


def seed_images():
    """{name: encoded bytes}: JPEG and PNG encodings of three small, structured images (RGB and
    greyscale), deterministic."""
    import tensorflow as tf

    rng = np.random.default_rng(1234)
    images = {}
    for name, (height, width, channels) in {
        "a": (32, 40, 3),
        "b": (57, 31, 3),
        "g": (23, 23, 1),
    }.items():
        y, x = np.mgrid[:height, :width]
        base = (x * 255 // max(width - 1, 1) + y * 3) % 256
        pixels = np.stack([(base + 80 * c) % 256 for c in range(channels)], axis=-1)
        pixels = np.clip(pixels + rng.integers(-20, 21, pixels.shape), 0, 255).astype(np.uint8)
        images[f"{name}.jpg"] = tf.io.encode_jpeg(pixels).numpy()
        images[f"{name}.png"] = tf.io.encode_png(pixels).numpy()
    return images


def huge_images(max_pixels):
    """Real, decodable JPEG and PNG files just above ``max_pixels`` (flat grey: small files)."""
    import tensorflow as tf

    side = int(np.sqrt(max_pixels)) + 8
    pixels = tf.fill([side, side + 3, 3], tf.constant(128, tf.uint8))
    return [tf.io.encode_jpeg(pixels).numpy(), tf.io.encode_png(pixels).numpy()]


def png_with_ihdr(png, width, height, fix_crc):
    """``png`` with the IHDR width and height (bytes 16..24) replaced; the chunk's CRC (bytes
    29..33) recomputed when ``fix_crc``, so only the decoder's size checks are left to fail."""
    data = bytearray(png)
    data[16:24] = struct.pack(">II", width, height)
    if fix_crc:
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def jpeg_sof(jpeg):
    """Offset of the first SOFn marker segment of a JPEG, or None."""
    i = 2
    while i + 4 <= len(jpeg):
        if jpeg[i] != 0xFF:
            return None
        marker, length = jpeg[i + 1], struct.unpack(">H", jpeg[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            return i
        i += 2 + length
    return None


def jpeg_with_size(jpeg, height, width):
    """``jpeg`` whose SOF marker claims ``height`` x ``width`` (16-bit fields)."""
    data = bytearray(jpeg)
    i = jpeg_sof(jpeg)
    data[i + 5 : i + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _dimension(rng, bits):
    """A forged width or height: small (decodable sizes), an edge value, or anything."""
    choice = rng.integers(4)
    if choice == 0:
        return int(rng.integers(0, 400))
    if choice == 1:
        edges = (
            [0, 1, 2, 0xFFFF, 0x8000]
            if bits == 16
            else [0, 1, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1, 3037000500]
        )
        return int(rng.choice(edges))
    return int(rng.integers(0, 2**bits))


def mutate(kind, rng, seeds, huge):
    """One input of ``kind`` (bytes)."""
    names = sorted(seeds)
    pick = seeds[names[rng.integers(len(names))]]
    pngs = [seeds[n] for n in names if n.endswith(".png")]
    jpegs = [seeds[n] for n in names if n.endswith(".jpg")]
    if kind == "bit_flip":
        data = bytearray(pick)
        for _ in range(rng.integers(1, 9)):
            # Half of the flips in the first 64 bytes: the signature and the headers.
            limit = min(64, len(data)) if rng.integers(2) else len(data)
            position = rng.integers(limit)
            data[position] ^= 1 << int(rng.integers(8))
        return bytes(data)
    if kind == "truncate":
        return pick[: rng.integers(0, len(pick))]
    if kind == "png_dims":
        png = pngs[rng.integers(len(pngs))]
        return png_with_ihdr(
            png, _dimension(rng, 32), _dimension(rng, 32), fix_crc=bool(rng.integers(4))
        )
    if kind == "jpeg_dims":
        jpeg = jpegs[rng.integers(len(jpegs))]
        return jpeg_with_size(jpeg, _dimension(rng, 16), _dimension(rng, 16))
    if kind == "random_bytes":
        return rng.integers(0, 256, rng.integers(1, 100), dtype=np.uint8).tobytes()
    if kind == "signature_random":
        head = [PNG_SIGNATURE, b"\xff\xd8\xff", PNG_SIGNATURE + b"\0\0\0\rIHDR"][rng.integers(3)]
        return head + rng.integers(0, 256, rng.integers(0, 200), dtype=np.uint8).tobytes()
    if kind == "corrupt_body":
        data = bytearray(pick)
        start = int(rng.integers(2, len(data) - 1))
        length = int(rng.integers(1, min(64, len(data) - start) + 1))
        data[start : start + length] = rng.integers(0, 256, length, dtype=np.uint8).tobytes()
        return bytes(data)
    if kind == "text":
        words = [
            "hello",
            "héllo wörld",
            "画像",
            '{"b64": "AAAA"}',
            "GIF89a",
            "BM\x00\x00",
            "\x00\x01\x02",
            "ÿØÿ",
            "\u2028\u2029",
            "\ud7ff",
        ]
        return words[rng.integers(len(words))].encode("utf-8")
    if kind == "empty":
        return b""
    if kind == "huge":
        choice = rng.integers(3)
        if choice == 0:
            return huge[rng.integers(len(huge))]
        if choice == 1:
            png = pngs[rng.integers(len(pngs))]
            side = int(rng.integers(20000, 2**32))
            return png_with_ihdr(png, side, int(rng.integers(20000, 2**32)), fix_crc=True)
        return jpeg_with_size(
            jpegs[rng.integers(len(jpegs))],
            int(rng.integers(1000, 65536)),
            int(rng.integers(1000, 65536)),
        )
    raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")


def inputs(count, seed, seeds, huge, kinds=KINDS):
    """``count`` (kind, bytes) pairs, the kinds in turn, deterministic for a seed."""
    rng = np.random.default_rng(seed)
    return [
        (kinds[i % len(kinds)], mutate(kinds[i % len(kinds)], rng, seeds, huge))
        for i in range(count)
    ]


# ---- outcomes ----------------------------------------------------------------------------------


def printable(message):
    """True when ``message`` is printable ASCII plus newlines. TensorFlow itself ends an op's
    error with ``"\\n\\t [[{{node NAME}}]]"``: that tab is allowed, no other."""
    text = message.replace("\n\t [[", "\n [[")
    return all(32 <= ord(c) < 127 or c == "\n" for c in text)


def classify(error):
    """The outcome name of an exception raised by a serving call."""
    import tensorflow as tf

    if isinstance(error, tf.errors.InvalidArgumentError):
        return (
            "InvalidArgumentError"
            if printable(error.message)
            else "InvalidArgumentError (non-ASCII message)"
        )
    return type(error).__name__


def valid_answer(probabilities, batch, num_classes):
    p = np.asarray(probabilities)
    return (
        p.shape == (batch, num_classes)
        and bool(np.isfinite(p).all())
        and bool(np.allclose(p.sum(axis=1), 1.0, atol=1e-4))
    )


class SessionServer:
    """``serving_default`` through the session loader (what TF Serving runs)."""

    def __init__(self, path):
        from inception.export import session

        self.model = session.SessionModel(path)

    def __call__(self, batch):
        return self.model.run("serving_default", image_bytes=list(batch))["probabilities"]

    def close(self):
        self.model.close()


class ObjectServer:
    """``serving_default`` through ``tf.saved_model.load``."""

    def __init__(self, path):
        import tensorflow as tf

        self.tf = tf
        self.model = tf.saved_model.load(path)

    def __call__(self, batch):
        fn = self.model.signatures["serving_default"]
        return fn(image_bytes=self.tf.constant(list(batch), self.tf.string))[
            "probabilities"
        ].numpy()


def run_one(serve, batch, num_classes=NUM_CLASSES):
    """(outcome, error message or None) of one request."""
    try:
        probabilities = serve(batch)
    except Exception as error:  # noqa: BLE001 -- every failure is counted by its class
        message = getattr(error, "message", None)
        return classify(error), message if isinstance(message, str) else repr(error)
    return (
        "answered" if valid_answer(probabilities, len(batch), num_classes) else "answered_invalid"
    ), None


def fuzz(serve, cases, clean, num_classes=NUM_CLASSES):
    """Sends each case alone, then ``clean``; returns [(kind, outcome, message, clean_same)]."""
    expected = serve([clean])
    results = []
    for kind, data in cases:
        outcome, message = run_one(serve, [data], num_classes)
        try:
            same = bool(np.array_equal(serve([clean]), expected))
        except Exception:  # noqa: BLE001
            same = False
        results.append((kind, outcome, message, same))
    return results


def counts(results):
    """{kind: {outcome: n}}, plus 'clean image changed' counts."""
    table = {}
    for kind, outcome, _, same in results:
        row = table.setdefault(kind, {})
        row[outcome] = row.get(outcome, 0) + 1
        if not same:
            row["clean image changed"] = row.get("clean image changed", 0) + 1
    return table


def format_counts(table):
    outcomes = sorted({o for row in table.values() for o in row})
    width = max([len(k) for k in table] + [5])
    lines = [" ".join([f"{'kind':<{width}}"] + [f"{o:>{max(len(o), 6)}}" for o in outcomes])]
    total = {}
    for kind in sorted(table):
        cells = []
        for o in outcomes:
            n = table[kind].get(o, 0)
            total[o] = total.get(o, 0) + n
            cells.append(f"{n:>{max(len(o), 6)}}")
        lines.append(" ".join([f"{kind:<{width}}"] + cells))
    lines.append(
        " ".join(
            [f"{'total':<{width}}"] + [f"{total.get(o, 0):>{max(len(o), 6)}}" for o in outcomes]
        )
    )
    return "\n".join(lines)


# ---- the model ---------------------------------------------------------------------------------


def write_small_saved_model(directory, max_pixels=FUZZ_MAX_PIXELS, seed=0):
    """A small Inception-ResNet-v2 with random weights, exported with the serving signatures."""
    import keras

    from inception import models
    from inception.export import classifier, saved_model

    keras.utils.set_random_seed(seed)
    model = models.build(
        "inception_resnet_v2",
        width_multiplier=0.1,
        repeats=(1, 1, 1),
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
        num_classes=NUM_CLASSES,
        dropout_rate=0.0,
    )
    labels = [f"class_{i}" for i in range(NUM_CLASSES)]
    return saved_model.write_saved_model(
        directory, classifier.from_model(model, labels), "fuzz", max_pixels=max_pixels
    )


def main():
    import argparse
    import tempfile
    import time

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--loader", choices=("session", "object"), default="session")
    parser.add_argument(
        "--saved_model",
        help="a SavedModel version directory (default: a small model exported here)",
    )
    parser.add_argument(
        "--max_pixels",
        type=int,
        default=FUZZ_MAX_PIXELS,
        help="the pixel limit of the small model, and the size of the 'huge' "
        "images (with --saved_model: the limit it was exported with)",
    )
    parser.add_argument(
        "--show",
        type=int,
        default=3,
        help="example messages printed per outcome other than 'answered'",
    )
    args = parser.parse_args()

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        path = args.saved_model
        num_classes = NUM_CLASSES
        if path is None:
            path = write_small_saved_model(os.path.join(scratch, "1"), args.max_pixels)
        server = (SessionServer if args.loader == "session" else ObjectServer)(path)
        seeds = seed_images()
        clean = seeds["a.jpg"]
        if args.saved_model:
            num_classes = int(np.asarray(server([clean])).shape[-1])
        cases = inputs(args.inputs, args.seed, seeds, huge_images(args.max_pixels))
        ready = time.perf_counter()
        results = fuzz(server, cases, clean, num_classes)
        elapsed = time.perf_counter() - ready
    print(
        f"{len(cases)} inputs, seed {args.seed}, {args.loader} loader; {elapsed:.1f} s "
        f"({time.perf_counter() - start:.1f} s with the export)"
    )
    print(format_counts(counts(results)))
    shown = {}
    for kind, outcome, message, _ in results:
        if outcome != "answered" and shown.get(outcome, 0) < args.show:
            shown[outcome] = shown.get(outcome, 0) + 1
            print(f"\n{outcome} ({kind}): {message[:300]!r}")
    failures = sum(1 for _, outcome, _, same in results if outcome not in GOOD_OUTCOMES or not same)
    return 1 if failures else 0


if __name__ == "__main__":
    # This checkout's packages first (an editable install may point at another checkout).
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from inception_cli import common

    common.setup_script()  # before TensorFlow loads
    sys.exit(main())
