"""The SavedModel's serving signatures under bad input (issue 27): every error an
InvalidArgumentError whose message is printable ASCII, and the model still answering afterwards.

One small Inception-ResNet-v2 (width 0.1, one block per stage, 75x75, 3 classes, random weights)
is exported once per module with a pixel limit of 300 x 300 (so that real, decodable images above
the limit are small) and loaded the way TF Serving loads it, through TensorFlow's session loader
(``inception.export.session``); one test loads it with ``tf.saved_model.load`` as well. Named
cases cover every error path of both signatures; the fuzz tests send a few hundred mutated images
from ``benchmarks/fuzz_serving.py`` (bit flips, truncations, forged IHDR and SOF0 sizes, random
bytes, text, empty strings, images above the limit), alone and in batches mixing good and bad.

What a message must be: TF Serving puts it into a gRPC status or a REST JSON body
(``{"error": message}``), so valid UTF-8 and, here, printable ASCII plus newlines (TensorFlow's
own ``\\n\\t [[{{node ...}}]]`` suffix keeps its tab). Shapes are sent the way TF Serving's C++
session takes them, without the Python client's check against the signature (``_raw_run``).
"""

import functools
import json
import re

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import fuzz_serving as fz

FUZZ_INPUTS = 400  # 40 of each kind; about 3 s here
SLOW_FUZZ_INPUTS = 5000
SIZE = fz.IMAGE_SIZE
C = fz.NUM_CLASSES


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return fz.write_small_saved_model(str(tmp_path_factory.mktemp("fuzz") / "1"))


@pytest.fixture(scope="module")
def server(exported):
    """serving_default through the session loader: [bytes] -> probabilities."""
    serve = fz.SessionServer(exported)
    yield serve
    serve.close()


@pytest.fixture(scope="module")
def seeds():
    return fz.seed_images()


@pytest.fixture(scope="module")
def clean(seeds, server):
    """A clean image and its answer, for checking that nothing changed after a bad input."""
    image = seeds["a.jpg"]
    return image, server([image])


def check_message(message):
    """Printable ASCII (plus newlines, and TensorFlow's own tab) and the REST layer's JSON body
    round-trips, also written as UTF-8."""
    assert isinstance(message, str)
    assert fz.printable(message), ascii(message[:500])
    body = json.dumps({"error": message})
    assert json.loads(body) == {"error": message}
    assert json.loads(json.dumps({"error": message}, ensure_ascii=False).encode("utf-8")) == {
        "error": message
    }


def expect_invalid(call, pattern):
    """Runs ``call``; it must raise InvalidArgumentError with a checked message matching
    ``pattern``. Returns the message."""
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        call()
    check_message(info.value.message)
    assert re.search(pattern, info.value.message), info.value.message[:500]
    return info.value.message


def _raw_run(model, signature, key, value):
    """Runs a signature feeding ``value`` as TF Serving's C++ session does: no check of its shape
    against the signature's (``tf.compat.v1.Session.run`` refuses a mismatch in Python)."""
    definition = model.signatures[signature]
    feed = model.graph.get_tensor_by_name(definition.inputs[key].name)
    fetch = model.graph.get_tensor_by_name(definition.outputs["probabilities"].name)
    return model.session._call_tf_sessionrun(  # pylint: disable=protected-access
        None, {feed._as_tf_output(): value}, [fetch._as_tf_output()], [], None
    )[0]


def _named_bad_inputs(seeds):
    """{case: (bytes, pattern of the message when the image is image_bytes[1])}."""
    png, jpeg = seeds["a.png"], seeds["a.jpg"]
    huge_jpeg, huge_png = fz.huge_images(fz.FUZZ_MAX_PIXELS)  # 308 x 311
    sof = fz.jpeg_sof(jpeg)
    corrupt_jpeg = bytearray(jpeg)
    corrupt_jpeg[sof + 30 :] = b"\xff\x01" * ((len(jpeg) - sof - 30) // 2 + 1)
    corrupt_png = bytearray(png)
    corrupt_png[40:104] = b"\xff" * 64
    too_large = r"image_bytes\[1\]: image too large or empty: its header declares height x width = "
    return {
        "empty": (b"", r"image_bytes\[1\]: empty string; expected an encoded JPEG or PNG image"),
        "utf8_text": (
            "héllo wörld".encode(),
            r"image_bytes\[1\]: not a JPEG or PNG image "
            r"\(unrecognised file signature\); 13 bytes, first bytes \(hex\): "
            r"68 c3 a9 6c 6c 6f 20 77 c3 b6 72 6c 64\]",
        ),
        "high_bytes": (
            b"\x89\xff\xfe\x00abc",
            r"7 bytes, first bytes \(hex\): "
            r"89 ff fe 00 61 62 63\]",
        ),
        "gif": (
            b"GIF89a" + b"\0" * 40,
            r"not a JPEG or PNG.*46 bytes, first bytes \(hex\): "
            r"47 49 46 38 39 61( 00){18} \.\.\.\]",
        ),
        "png_signature_only": (
            png[:8],
            r"image_bytes\[1\]: PNG header is truncated or has no "
            r"IHDR chunk; 8 bytes, first bytes \(hex\): "
            r"89 50 4e 47 0d 0a 1a 0a\]",
        ),
        "truncated_png_header": (png[:20], r"PNG header is truncated.*20 bytes"),
        "png_without_ihdr": (png[:12] + b"IDAT" + png[16:], r"no IHDR chunk"),
        "huge_png": (
            fz.png_with_ihdr(png, 90000, 100000, fix_crc=True),
            too_large + r"100000 x 90000 = 9000000000 pixels; the limit is 90000 pixels "
            r"\(refused before decoding\)",
        ),
        # 2^32-1 squared overflows int64: the old check let it through to the decoder.
        "overflowing_png": (
            fz.png_with_ihdr(png, 2**32 - 1, 2**32 - 1, fix_crc=True),
            too_large + r"4294967295 x 4294967295 = 18446744065119617025 pixels",
        ),
        "zero_width_png": (
            fz.png_with_ihdr(png, 0, 40, fix_crc=True),
            too_large + r"40 x 0 = 0 pixels",
        ),
        "huge_jpeg": (fz.jpeg_with_size(jpeg, 65000, 64000), too_large + r"65000 x 64000"),
        "real_jpeg_above_limit": (huge_jpeg, too_large + r"308 x 311 = 95788 pixels"),
        "real_png_above_limit": (huge_png, too_large + r"308 x 311 = 95788 pixels"),
        # The decoders' own errors: they do not name the image, but they are ASCII.
        "truncated_jpeg": (jpeg[: len(jpeg) // 3], r"(?i)jpeg"),
        "corrupt_jpeg": (bytes(corrupt_jpeg), r"(?i)jpeg"),
        "truncated_png": (png[:60], r"Invalid PNG data, size 60"),
        "corrupt_png": (bytes(corrupt_png), r"(?i)png"),
    }


NAMED_CASES = [
    "empty",
    "utf8_text",
    "high_bytes",
    "gif",
    "png_signature_only",
    "truncated_png_header",
    "png_without_ihdr",
    "huge_png",
    "overflowing_png",
    "zero_width_png",
    "huge_jpeg",
    "real_jpeg_above_limit",
    "real_png_above_limit",
    "truncated_jpeg",
    "corrupt_jpeg",
    "truncated_png",
    "corrupt_png",
]


def test_every_named_case_is_run(seeds):
    assert sorted(_named_bad_inputs(seeds)) == sorted(NAMED_CASES)


@pytest.mark.parametrize("case", NAMED_CASES)
def test_each_bad_image_is_named_in_an_ascii_error_and_the_model_keeps_answering(
    server, seeds, clean, case
):
    data, pattern = _named_bad_inputs(seeds)[case]
    image, answer = clean
    # Alone: its index is 0.
    alone = pattern.replace(r"image_bytes\[1\]", r"image_bytes\[0\]")
    expect_invalid(lambda: server([data]), alone)
    np.testing.assert_array_equal(server([image]), answer)
    # Between two good images: the batch fails, naming the bad one.
    expect_invalid(lambda: server([image, data, seeds["b.png"]]), pattern)
    np.testing.assert_array_equal(server([image]), answer)


def test_empty_batch_is_an_invalid_argument_in_both_signatures(server, clean):
    """Decided (inception/export/decoding.py): an empty batch is refused, not answered."""
    expect_invalid(
        lambda: server([]),
        r"image_bytes: expected a batch of encoded JPEG or PNG "
        r"images, shape \[N\] with N >= 1; got shape \[0\] \(an empty batch\)",
    )
    images = np.zeros((0, SIZE, SIZE, 3), np.float32)
    expect_invalid(
        lambda: server.model.run("predict_images", images=images),
        r"images: expected a batch of preprocessed images \(float32 in \[-1, 1\]\), "
        rf"shape \[N, {SIZE}, {SIZE}, 3\] with N >= 1; "
        rf"got shape \[0, {SIZE}, {SIZE}, 3\] \(an empty batch\)",
    )
    np.testing.assert_array_equal(server([clean[0]]), clean[1])


@pytest.mark.parametrize("shape, got", [((), r"\[\]"), ((1, 2), r"\[1, 2\]")])
def test_image_bytes_of_another_rank_is_refused_in_the_graph(server, clean, shape, got):
    value = np.full(shape, clean[0], dtype=object)
    expect_invalid(
        lambda: _raw_run(server.model, "serving_default", "image_bytes", value),
        r"image_bytes: expected a batch of encoded JPEG or PNG images, shape \[N\] "
        rf"with N >= 1; got shape {got}",
    )


@pytest.mark.parametrize(
    "shape",
    [
        (SIZE, SIZE, 3),
        (1, 10, 10, 3),
        (1, SIZE + 5, SIZE + 5, 3),
        (2, SIZE, SIZE, 4),
        (1, 1, SIZE, SIZE, 3),
    ],
)
def test_predict_images_of_another_shape_is_refused_in_the_graph(server, shape):
    """Without the check, [1, 80, 80, 3] was answered (global pooling takes any side) and
    [1, 10, 10, 3] raised an AbortedError from oneDNN's pooling."""
    model = server.model
    ok = _raw_run(model, "predict_images", "images", np.zeros((2, SIZE, SIZE, 3), np.float32))
    assert ok.shape == (2, C)
    got = re.escape("[" + ", ".join(map(str, shape)) + "]")
    expect_invalid(
        lambda: _raw_run(model, "predict_images", "images", np.zeros(shape, np.float32)),
        rf"images: expected .* shape \[N, {SIZE}, {SIZE}, 3\] with N >= 1; got shape " + got,
    )
    np.testing.assert_array_equal(
        _raw_run(model, "predict_images", "images", np.zeros((2, SIZE, SIZE, 3), np.float32)), ok
    )


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_predict_images_refuses_nan_and_inf(server, value):
    images = np.zeros((2, SIZE, SIZE, 3), np.float32)
    images[1, 3, 3, 1] = value
    images[0, 0, 0, 0] = value
    expect_invalid(
        lambda: server.model.run("predict_images", images=images),
        r"images: NaN or Inf in 2 of the values; expected preprocessed pixels in "
        r"\[-1, 1\]",
    )
    answer = server.model.run("predict_images", images=np.zeros((1, SIZE, SIZE, 3), np.float32))
    assert fz.valid_answer(answer["probabilities"], 1, C)


def test_unknown_signature_is_a_key_error_naming_the_signatures(server, exported):
    """Not a graph error: the session loader (inception.export.session) and the object loader
    refuse it in Python, as TF Serving refuses it before running anything."""
    with pytest.raises(KeyError) as info:
        server.model.run("classify", image_bytes=[b""])
    message = str(info.value)
    check_message(message)
    assert "predict_images" in message and "serving_default" in message
    with pytest.raises(KeyError):
        _ = tf.saved_model.load(exported).signatures["classify"]


def _check_fuzz(results):
    """Every input answered properly or refused with a checked InvalidArgumentError, and the
    clean image answered identically after each."""
    by_outcome = {}
    for kind, outcome, message, same in results:
        by_outcome[outcome] = by_outcome.get(outcome, 0) + 1
        assert outcome in fz.GOOD_OUTCOMES, (kind, outcome, ascii(message)[:500])
        assert same, (kind, outcome)
        if message is not None:
            check_message(message)
    return by_outcome


def test_fuzzed_images_answer_or_raise_ascii_invalid_argument(server, seeds, clean):
    cases = fz.inputs(FUZZ_INPUTS, 0, seeds, fz.huge_images(fz.FUZZ_MAX_PIXELS))
    results = fz.fuzz(server, cases, clean[0])
    by_outcome = _check_fuzz(results)
    table = fz.counts(results)
    # Each kind that can never be an image is always refused; the fuzz reaches the decoders
    # (some bit flips and corrupted bodies still decode).
    for kind in ("empty", "huge", "random_bytes", "signature_random", "text", "truncate"):
        assert table[kind] == {"InvalidArgumentError": FUZZ_INPUTS // len(fz.KINDS)}, kind
    assert by_outcome["answered"] > 0
    messages = [m for _, _, m, _ in results if m is not None]
    assert any("first bytes (hex)" in m for m in messages)
    assert any("Invalid PNG data" in m for m in messages)
    assert any("Invalid JPEG data" in m for m in messages)
    assert any("refused before decoding" in m for m in messages)


def test_batches_mixing_good_and_bad_images(server, seeds, clean):
    """A batch with a bad image fails as that image does alone; an all-good batch answers each
    image as it is answered alone."""
    image, answer = clean
    good = [seeds["b.jpg"], seeds["g.png"]]
    cases = fz.inputs(60, 7, seeds, fz.huge_images(fz.FUZZ_MAX_PIXELS))
    alone = {"b.jpg": server([good[0]]), "g.png": server([good[1]])}
    for kind, data in cases:
        outcome, _ = fz.run_one(server, [data])
        batch = [good[0], data, good[1]]
        if outcome == "answered":
            out = server(batch)
            assert fz.valid_answer(out, 3, C), kind
            np.testing.assert_allclose(out[0], alone["b.jpg"][0], atol=1e-5)
            np.testing.assert_allclose(out[2], alone["g.png"][0], atol=1e-5)
        else:
            assert outcome == "InvalidArgumentError", kind
            message = expect_invalid(functools.partial(server, batch), r".")
            if "assertion failed: [image_bytes" in message:
                assert "image_bytes[1]" in message, message[:300]
        np.testing.assert_array_equal(server([image]), answer)


def test_object_loader_gives_the_same_answers_and_errors(exported, server, seeds, clean):
    """tf.saved_model.load (TensorFlow's object loader) on a shorter fuzz run and the named
    cases: the same outcomes as the session loader."""
    loaded = fz.ObjectServer(exported)
    np.testing.assert_allclose(loaded([clean[0]]), clean[1], atol=1e-6)
    named = [(case, data) for case, (data, _) in _named_bad_inputs(seeds).items()]
    cases = named + fz.inputs(100, 3, seeds, fz.huge_images(fz.FUZZ_MAX_PIXELS))
    results = fz.fuzz(loaded, cases, clean[0])
    _check_fuzz(results)
    for (kind, data), (_, outcome, _, _) in zip(cases, results):
        assert fz.run_one(server, [data])[0] == outcome, kind
    expect_invalid(lambda: loaded([]), r"got shape \[0\] \(an empty batch\)")


@pytest.mark.slow
def test_fuzzed_images_long_run(server, seeds, clean):
    """5,000 inputs (25 s here); ``python benchmarks/fuzz_serving.py`` prints the counts by
    kind and outcome."""
    cases = fz.inputs(SLOW_FUZZ_INPUTS, 1, seeds, fz.huge_images(fz.FUZZ_MAX_PIXELS))
    _check_fuzz(fz.fuzz(server, cases, clean[0]))
