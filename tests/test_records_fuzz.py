"""The input pipeline over damaged TFRecord files (issue 27): records whose image cannot be
decoded are skipped and counted; a damaged record framing (truncation, a flipped bit in a length,
a payload or a checksum) stops the pass with an error naming the file, never a hang.

Generators and outcome names: ``benchmarks/fuzz_records.py`` (its default run is 200 framing
cases and 10 passes of replaced images). Each case copies the embedded dataset prepared once for
the session and damages one validation file.
"""

import shutil

import numpy as np
import pytest

from benchmarks import fuzz_records as fr

FRAMING_CASES = 5  # one of each kind, about 1 s each here


def test_framing_damage_is_named_not_hung(digits_dir, tmp_path):
    results = fr.fuzz_framing(digits_dir, str(tmp_path), FRAMING_CASES, seed=0)
    assert {kind for kind, _, _ in results} == set(fr.FRAMING_KINDS)
    bad = [
        (kind, outcome, (message or "")[:300])
        for kind, outcome, message in results
        if outcome not in fr.GOOD_OUTCOMES
    ]
    assert not bad, bad
    named = [message for _, outcome, message in results if outcome == "named error"]
    assert named, "no case stopped with the named error"
    for message in named:
        assert "a TFRecord file is damaged" in message and "Prepare the dataset again" in message


def test_a_damaged_file_is_named_with_its_record(digits_dir, tmp_path):
    """A bit flipped in the payload of record 5 of one file: that file and record are named."""
    case = str(tmp_path / "case")
    shutil.copytree(digits_dir, case)
    path = fr.validation_files(case)[2]
    with open(path, "rb") as f:
        data = bytearray(f.read())
    start, length = fr.record_offsets(bytes(data))[5]
    data[start + 12 + length // 2] ^= 0x01
    with open(path, "wb") as f:
        f.write(bytes(data))
    _read, _skipped, error, expected = fr.one_pass(case)
    assert error is not None and error != "hung"
    assert f"{path}: record 5: corrupted record" in error.message, error.message[:800]
    assert f"gave {expected - fr.count_after(bytes(data), 5)} of the {expected} records" in (
        error.message
    )


def test_a_file_cut_at_a_record_boundary_is_named(digits_dir, tmp_path):
    """Nothing in the TFRecord format marks a file's end: TensorFlow reads the shorter file
    without an error, and only the count says it is short (found by the 200-case fuzz)."""
    case = str(tmp_path / "case")
    shutil.copytree(digits_dir, case)
    path = fr.validation_files(case)[0]
    with open(path, "rb") as f:
        data = f.read()
    start, _ = fr.record_offsets(data)[-3]
    with open(path, "wb") as f:
        f.write(data[:start])
    _read, skipped, error, expected = fr.one_pass(case)
    assert skipped == 0 and error is not None and error != "hung"
    assert f"gave {expected - 3} of the {expected} records" in error.message
    assert (
        f"{path}: {len(fr.record_offsets(data)) - 3} of its {len(fr.record_offsets(data))} "
        "records (cut short)" in error.message
    ), error.message[-800:]


def test_undecodable_images_at_a_fuzzers_rate_are_skipped_and_counted(digits_dir, tmp_path):
    [(replaced, bad, read, skipped, error, expected)] = fr.fuzz_jpeg(
        digits_dir, str(tmp_path), passes=1, seed=0, rate=0.2
    )
    assert error is None
    assert replaced > 40 and 0 < bad <= replaced  # the mutations mostly do not decode
    assert skipped == bad  # exactly the records the decoder refuses alone
    assert read + skipped == expected


@pytest.mark.slow
def test_the_longer_framing_fuzz(digits_dir, tmp_path):
    results = fr.fuzz_framing(digits_dir, str(tmp_path), 200, seed=1)
    assert all(outcome in fr.GOOD_OUTCOMES for _, outcome, _ in results), [
        (k, o) for k, o, _ in results if o not in fr.GOOD_OUTCOMES
    ]
    assert np.mean([o == "named error" for _, o, _ in results]) > 0.5
