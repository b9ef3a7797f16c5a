"""The weight importers under damaged files (issue 27): a truncated, corrupt, random or
wrong-shaped slim checkpoint, timm safetensors or keras-applications .h5 file either loads or is a
WeightsError naming the file, and a refused file leaves every variable of the model as it was.

Generators, writers and outcome names: ``benchmarks/fuzz_weights.py`` (its default run is 300
inputs per format). Each format's complete file of a small network is written once per case from
the model's own values under the published names.
"""

import numpy as np
import pytest

from benchmarks import fuzz_weights as fw

INPUTS = {"slim": 30, "timm": 30, "keras_h5": 5}  # the .h5 reader takes about 1 s per file here


@pytest.fixture(scope="module")
def small_v4():
    return fw.build("slim")


@pytest.mark.parametrize("fmt", ["slim", "timm"])
def test_a_complete_file_loads_exactly(small_v4, fmt, tmp_path):
    from inception.weights import pretrained

    expected = fw._values(small_v4)
    path = fw.WRITERS[fmt](small_v4, str(tmp_path))
    for v in small_v4.weights:
        v.assign(np.zeros(v.shape, v.dtype))
    pretrained.load_weights(small_v4, path)
    after = fw._values(small_v4)
    assert all(np.array_equal(expected[k], after[k]) for k in expected)


@pytest.mark.parametrize("fmt", ["slim", "timm"])
def test_damaged_files_are_refused_naming_the_file(small_v4, fmt, tmp_path):
    results = fw.fuzz(fmt, INPUTS[fmt], seed=0, scratch=str(tmp_path), model=small_v4)
    bad = [
        (kind, outcome, (message or "")[:200])
        for kind, outcome, message in results
        if outcome not in fw.GOOD_OUTCOMES
    ]
    assert not bad, bad
    refused = [kind for kind, outcome, _ in results if outcome == "WeightsError"]
    assert {"truncate", "random_file", "wrong_shape"} <= set(refused)


def test_damaged_keras_h5_files(tmp_path):
    results = fw.fuzz("keras_h5", INPUTS["keras_h5"], seed=0, scratch=str(tmp_path))
    assert [kind for kind, _, _ in results] == list(fw.KINDS)
    assert all(outcome in fw.GOOD_OUTCOMES for _, outcome, _ in results), results


def test_a_truncated_data_file_names_the_tensor_and_changes_nothing(small_v4, tmp_path):
    """The checkpoint's index is intact, so the reader opens it and the damage shows only when
    a value is read: every value is read and checked before the first is assigned."""
    import os

    from inception.weights import WeightsError, pretrained

    prefix = fw.write_slim(small_v4, str(tmp_path))
    [data] = [os.path.join(tmp_path, f) for f in os.listdir(tmp_path) if ".data-" in f]
    with open(data, "rb") as f:
        content = f.read()
    with open(data, "wb") as f:
        f.write(content[: len(content) * 3 // 4])
    before = fw._values(small_v4)
    with pytest.raises(WeightsError, match=rf"^{prefix}: cannot read InceptionV4/\S+ "):
        pretrained.load_weights(small_v4, prefix)
    after = fw._values(small_v4)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_non_finite_values_are_refused(small_v4, tmp_path):
    from inception.weights import WeightsError, pretrained

    def poison(key, value):
        if key == "features.0.conv.weight":
            value = value.copy()
            value.flat[3] = np.nan
        return value

    path = fw.write_timm(small_v4, str(tmp_path), shape_of=poison)
    with pytest.raises(WeightsError, match=r"features\.0\.conv\.weight holds 1 NaN or infinite"):
        pretrained.load_weights(small_v4, path)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", fw.FORMATS)
def test_the_longer_weights_fuzz(fmt, tmp_path):
    results = fw.fuzz(fmt, 300, seed=1, scratch=str(tmp_path))
    bad = [(k, o, (m or "")[:300]) for k, o, m in results if o not in fw.GOOD_OUTCOMES]
    assert not bad, bad
