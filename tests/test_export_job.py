"""The export job (``export.py``, ``inception.export.job``) as a whole: its report, the registry
of formats and the options it checks, the layout it publishes, version numbers, atomic
publishing, a killed export and the command's flags. Each format's own checks:
test_export_saved_model.py, test_export_tflite.py, test_export_onnx.py; the shared export they
read: tests/export_fixtures.py.
"""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from export_fixtures import (
    CALIBRATION_IMAGES,
    ENV,
    NAME,
    PROGRAMS,
    ROOT,
    SIZE,
    run_python,
    tree_size,
)
from inception.export import config, formats, litert, versions

FORMATS = formats.DEFAULT_EXPORT_FORMATS
FILES = tuple(f for f in FORMATS if f != "saved_model")  # the files of OUT/<name>-artifacts


# ---- the export and its report ---------------------------------------------------------------


def test_report_covers_every_variant_with_real_measurements(exported, validation, reference):
    _, report_, printed = exported
    _, labels, _ = validation
    assert sorted(report_["variants"]) == sorted(FORMATS)
    assert report_["eval"]["num_images"] == len(labels) == 359
    assert report_["labels"] == [str(d) for d in range(10)]
    assert report_["keras"]["top1_accuracy"] == pytest.approx(
        np.mean(reference.argmax(1) == labels)
    )
    # A trained model (chance is 0.1), or agreement means little.
    assert report_["keras"]["top1_accuracy"] > 0.8
    for name, entry in report_["variants"].items():
        assert entry["size_bytes"] == tree_size(entry["path"]) > 0, name
        assert entry["latency_ms_per_image"] > 0, name
        assert 0 <= entry["max_abs_prob_diff"] <= 1, name
        assert entry["num_images"] == 359, name
        # the printed table
        assert re.search(rf"^{name} .* {re.escape(entry['path'])}$", printed, re.M), name
    variants = report_["variants"]
    assert variants["tflite_fp32"]["top1_agreement"] >= 0.999
    assert variants["tflite_fp16"]["top1_agreement"] >= 0.999
    assert variants["tflite_int8"]["top1_agreement"] >= 0.98
    assert variants["onnx"]["top1_agreement"] >= 0.999
    assert variants["onnx"]["max_abs_prob_diff"] <= 1e-4  # float32 throughout, ops reordered
    assert variants["saved_model"]["loader"] == "tf.compat.v1 session"  # as TF Serving loads it
    assert variants["saved_model"]["max_abs_prob_diff"] <= 1e-5
    assert variants["saved_model"]["image_bytes"]["max_abs_prob_diff"] <= 1e-5
    assert variants["tflite_int8"]["calibration_images"] == CALIBRATION_IMAGES
    assert variants["onnx"]["opset"] >= 13 and variants["onnx"]["runtime"].startswith("onnxruntime")
    # Quantisation is visible: fp16 weights halve the file, int8 quarters it.
    assert variants["tflite_fp16"]["size_bytes"] < 0.6 * variants["tflite_fp32"]["size_bytes"]
    assert variants["tflite_int8"]["size_bytes"] < 0.4 * variants["tflite_fp32"]["size_bytes"]


# ---- formats, options and their checks -----------------------------------------------------


@pytest.mark.parametrize(
    "name, module, package",
    [
        ("tflite_fp16", "tflite", "ai_edge_litert"),
        ("onnx", "onnx", "tf2onnx"),
    ],
)
def test_a_missing_package_is_named_before_any_work(monkeypatch, name, module, package):
    monkeypatch.delitem(sys.modules, f"inception.export.{module}", raising=False)
    monkeypatch.setitem(sys.modules, package, None)  # importing the package now fails
    with pytest.raises(ValueError, match=rf"--formats={name} needs the Python package '{package}'"):
        formats.load(name)


def test_every_registered_format_loads_under_its_name():
    """The registry (formats.EXPORT_FORMATS): each name finds its module's Format of that name."""
    for name in formats.EXPORT_FORMATS:
        fmt = formats.load(name)
        assert isinstance(fmt, formats.Format) and fmt.name == name
    assert [f.name for f in formats.load_all(["onnx", "saved_model", "onnx"])] == [
        "onnx",
        "saved_model",
    ]
    assert [f.name for f in formats.load_all(FORMATS) if f.servable] == ["saved_model"]
    assert [f.name for f in formats.load_all(formats.EXPORT_FORMATS) if f.servable] == [
        "saved_model",
        "saved_model_bf16",
    ]
    assert [f.name for f in formats.load_all(FORMATS) if f.needs_calibration] == ["tflite_int8"]


def test_every_format_names_its_extra_kind_and_noun(tmp_path):
    """What each registered format provides besides its writer and runner (inception.export.formats
    lists it): the pyproject extra that installs its packages (one of pyproject.toml's), its file
    kind and its noun, and a ``find`` that claims no path of another kind."""
    tomllib = pytest.importorskip("tomllib")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    for name in formats.EXPORT_FORMATS:
        fmt = formats.load(name)
        assert fmt.extra in extras, (name, fmt.extra)
        assert fmt.kind and fmt.noun, name
        assert fmt.find(str(tmp_path)) is None and fmt.find(str(tmp_path / "x.keras")) is None
    assert [kind for kind, _ in formats.kinds()] == ["saved_model", "tflite", "onnx"]


@pytest.mark.parametrize(
    "options, message",
    [
        (
            dict(formats=("saved_model", "tflite_int4")),
            r"unknown --formats \['tflite_int4'\]; choose from saved_model, tflite_fp32",
        ),
        (dict(formats=()), r"unknown --formats \[\]"),
        (dict(version=0), r"--version must be a positive integer; got 0"),
        (dict(int8_io="uint8"), r"--int8_io must be one of float, int8"),
        (dict(latency_repeats=0), r"--latency_repeats must be positive"),
    ],
)
def test_export_options_are_checked_once_with_the_flags_messages(options, message):
    with pytest.raises(ValueError, match=message):
        config.ExportOptions(**options)
    with pytest.raises(ValueError, match=message):  # the command's config is an ExportOptions
        config.ExportConfig(export_dir="out", model_dir="run", **options)


def test_export_names_and_sources_are_checked():
    for bad in ("", "7", ".hidden", "a/b", "a b"):
        with pytest.raises(ValueError, match="must be a non-numeric file name"):
            config.check_export_name(bad)
    assert config.check_export_name("irv2-v1.0") == "irv2-v1.0"
    with pytest.raises(ValueError, match="must be a non-numeric file name"):
        config.ExportConfig(export_dir="out", model_dir="run", name="12")
    with pytest.raises(ValueError, match="exactly one of --model_dir"):
        config.ExportConfig(export_dir="out", model_dir="run", keras_model="m.keras")
    assert config.ExportOptions(formats=["onnx", "onnx"]).formats == ("onnx",)


# ---- layout, atomic publishing -----------------------------------------------------------------


def test_layout_labels_asset_and_file_metadata(exported):
    from inception.export import onnx as onnx_export

    out, report_, _ = exported
    assert sorted(os.listdir(out)) == [NAME, f"{NAME}-artifacts"]
    assert os.listdir(os.path.join(out, NAME)) == ["1"]
    assert sorted(os.listdir(os.path.join(out, f"{NAME}-artifacts", "1"))) == sorted(
        ["export_report.json", f"{NAME}.onnx"]
        + [f"{NAME}-{v}.tflite" for v in formats.TFLITE_VARIANTS]
    )
    labels = open(os.path.join(out, NAME, "1", "assets", "labels.txt")).read().split()
    assert labels == [str(d) for d in range(10)]
    for fmt in FILES:
        path = report_["variants"][fmt]["path"]
        meta = (onnx_export.read_metadata if fmt == "onnx" else litert.read_metadata)(path)
        assert meta["labels"] == labels and meta["image_size"] == SIZE, fmt


def test_export_prints_no_spurious_tensorflow_warning(exported):
    """Freezing the ONNX graph after the SavedModel in one process used to print TensorFlow's
    "Issue encountered when serializing table_initializer" (saved_model.ClassNames says why)."""
    _, _, output = exported
    assert "onnx" in output and "Issue encountered when serializing" not in output


def test_versions_increment_and_existing_versions_are_refused(tmp_path):
    base = tmp_path / "m"
    assert versions.next_version(str(base)) == 1
    (base / "3").mkdir(parents=True)
    (base / "notes").mkdir()
    (tmp_path / "m-artifacts" / "7").mkdir(parents=True)
    assert versions.next_version(str(base)) == 4
    assert versions.next_version(str(base), str(tmp_path / "m-artifacts")) == 8
    with pytest.raises(FileExistsError, match="version 3 already exists"):
        versions.publish(str(base), 3, lambda d: None)
    with pytest.raises(FileExistsError, match=r"version 7 already exists in .*m-artifacts"):
        versions.claim([str(base), str(tmp_path / "m-artifacts")], 7)
    assert versions.claim([str(base), str(tmp_path / "m-artifacts")]) == 8


def test_failed_write_publishes_nothing(tmp_path):
    def write(directory):
        open(os.path.join(directory, "saved_model.pb"), "wb").write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        versions.publish(str(tmp_path), 1, write)
    assert os.listdir(tmp_path) == []


def test_killed_export_leaves_no_version_directory(run_dir, tmp_path):
    out = tmp_path / "out"
    marker = tmp_path / "writing"
    process = subprocess.Popen(
        [
            sys.executable,
            os.path.join(PROGRAMS, "killed_export.py"),
            str(marker),
            f"--model_dir={run_dir}",
            f"--export_dir={out}",
            f"--name={NAME}",
            "--formats=saved_model",
            "--eval_images=0",
            "--latency_repeats=1",
        ],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 300
        while not marker.exists():
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            assert time.time() < deadline, "export never reached the rename"
            time.sleep(0.5)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        process.stderr.close()
    base = out / NAME
    temporaries = [n for n in os.listdir(base) if n.startswith(".tmp-")]
    assert len(temporaries) == 1  # killed mid-export: the files exist, under a temporary name
    assert (base / temporaries[0] / "saved_model.pb").exists()
    assert not [n for n in os.listdir(base) if n.isdigit()]
    # The next export removes the dead process's leftovers and publishes version 1.
    assert versions.remove_stale_temporaries(str(base)) == temporaries
    assert os.listdir(base) == []
    live = base / f".tmp-1-{os.getpid()}-0123abcd"  # a running export's temporary is left alone
    live.mkdir()
    assert versions.remove_stale_temporaries(str(base)) == []


# ---- the command -------------------------------------------------------------------------------


def test_export_command_rejects_bad_flags(tmp_path):
    """Refused before TensorFlow loads. (A run directory without a model is refused by the
    command too: tests/test_console_packaging.py, test_entry_point_is_quiet_unless_verbose.)"""
    result = run_python(["export.py", f"--export_dir={tmp_path}"], timeout=120)
    assert result.returncode != 0
    assert "exactly one of --model_dir" in result.stderr
    result = run_python(
        [
            "export.py",
            f"--model_dir={tmp_path}",
            f"--export_dir={tmp_path}",
            "--formats=saved_model,tflite_int4",
        ],
        timeout=120,
    )
    assert result.returncode != 0 and "unknown --formats ['tflite_int4']" in result.stderr
