"""The installable project and the quiet console (issues 10, 21): pyproject's commands import;
the wheel declares compatible ranges (the tested lock in requirements.txt lies inside them) and
optional parts as extras, and ships the configs and data files; --config=NAME reads a shipped
config from any directory; downloads use TLS; no file patches the import path; an entry point
hides TensorFlow's noise unless --verbose."""

import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap
import warnings

import pytest

from inception import console

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# TensorFlow's C++ log lines ("I0000 00:00:1795465350.779071    3394 port.cc:153] ..."), its note
# about them, the CUDA probe of machines without a GPU.
NOISE = re.compile(
    r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ \S+:\d+\]|absl::InitializeLog|cuInit"
    r"|cuda drivers",
    re.M,
)


def _pyproject():
    tomllib = pytest.importorskip("tomllib")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def test_pyproject_commands_resolve_to_callables():
    scripts = _pyproject()["project"]["scripts"]
    assert {
        "inception-train",
        "inception-export",
        "inception-evaluate",
        "inception-convert-weights",
        "inception-predict",
        "inception-experiments",
    } <= set(scripts)
    # One process per command: the absl entry points define flags of the same names.
    for name, target in scripts.items():
        module, attr = target.split(":")
        check = (
            "import importlib, inspect; "  # the generated script calls it with no arguments
            f"inspect.signature(getattr(importlib.import_module({module!r}), {attr!r})).bind()"
        )
        result = subprocess.run(
            [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"{name} = {target}: {result.stderr[-2000:]}"
        assert "tensorflow" not in result.stderr.lower()


def _normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins():
    """requirements.txt: {normalised name: version} (the exact lock)."""
    pins = {}
    with open(os.path.join(ROOT, "requirements.txt")) as f:
        for line in f:
            line = line.split("#", 1)[0].split(";", 1)[0].strip()  # without an environment marker
            if line:
                name, _, version = line.partition("==")
                assert version, f"requirements.txt: {line!r} is not an exact pin"
                pins[_normalise(name)] = version.strip()
    return pins


# Pinned in the lock without being declared: installed through a declared package.
TRANSITIVE_PINS = {
    "jaxlib": "jax's compiled half, pinned with jax (the [test] extra)",
    "execnet": "pytest-xdist's transport, pinned with it (the [test] extra)",
}
# The library's hard requirements; every other package is optional (an extra).
HARD = {"tensorflow", "keras", "tensorflow-datasets", "importlib-resources", "absl-py", "numpy"}
EXTRAS = {"digits", "serving", "tflite", "onnx", "weights", "report", "hub", "test", "all"}


def _declared():
    """(extra or None, Requirement) of every package pyproject declares, without the
    self-references of the extras that combine others."""
    from packaging.requirements import Requirement

    project = _pyproject()["project"]
    declared = [(None, Requirement(r)) for r in project["dependencies"]]
    for extra, requirements in project["optional-dependencies"].items():
        declared += [(extra, Requirement(r)) for r in requirements]
    return [(extra, r) for extra, r in declared if r.name != project["name"]]


def test_declared_ranges_contain_the_tested_lock():
    """Compatible ranges in pyproject, one exact lock in requirements.txt, and they agree: every
    declared package is pinned inside its range, every pin is declared (or a known transitive
    one), and every range is bounded below and below the next major version."""
    pins = _pins()
    declared = _declared()
    for extra, requirement in declared:
        name = _normalise(requirement.name)
        assert name in pins, f"{requirement} ([{extra}]) has no pin in requirements.txt"
        assert requirement.specifier.contains(pins[name]), (
            f"requirements.txt pins {name}=={pins[name]} outside pyproject's {requirement}"
        )
        operators = {spec.operator for spec in requirement.specifier}
        assert {">=", "<"} <= operators, f"{requirement}: give a lower bound and the next major"
    names = {_normalise(r.name) for _, r in declared}
    assert set(pins) - names == set(TRANSITIVE_PINS)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel of this checkout (tracked and new files), built offline with the environment's
    setuptools: (zipfile, {member name: bytes}); a copy of the tree keeps build/ and egg-info out
    of the checkout."""
    import zipfile

    source = tmp_path_factory.mktemp("source")
    out = tmp_path_factory.mktemp("wheel")
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        origin, target = os.path.join(ROOT, name), source / name
        if not os.path.lexists(origin):
            continue  # deleted in the work tree
        target.parent.mkdir(parents=True, exist_ok=True)
        if os.path.islink(origin):
            os.symlink(os.readlink(origin), target)
        elif os.path.isfile(origin):
            shutil.copyfile(origin, target)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    [built] = [p for p in os.listdir(out) if p.endswith(".whl")]
    with zipfile.ZipFile(out / built) as archive:
        return built, {n: archive.read(n) for n in archive.namelist()}


def _metadata(members):
    import email.parser

    from packaging.requirements import Requirement

    [name] = [n for n in members if n.endswith(".dist-info/METADATA")]
    message = email.parser.BytesParser().parsebytes(members[name])
    return set(message.get_all("Provides-Extra")), [
        Requirement(r) for r in message.get_all("Requires-Dist")
    ]


def test_wheel_requires_the_library_only_and_offers_extras(wheel):
    _, members = wheel
    extras, requirements = _metadata(members)
    hard = {_normalise(r.name) for r in requirements if r.marker is None}
    assert hard == HARD  # no test runner, plotting library, second framework or optional runtime
    for requirement in requirements:
        if requirement.marker is None:
            assert requirement.specifier and "==" not in str(requirement.specifier), requirement
    assert extras == EXTRAS
    by_extra = {
        extra: {
            _normalise(r.name)
            for r in requirements
            if r.marker and r.marker.evaluate({"extra": extra})
        }
        for extra in extras
    }
    assert {"pytest", "tensorboard"} <= by_extra["test"]
    assert {"matplotlib"} == by_extra["report"] and {"scikit-learn"} == by_extra["digits"]
    assert {"tensorflow-serving-api"} == by_extra["serving"] and {"ai-edge-litert"} == by_extra[
        "tflite"
    ]
    assert {"tf2onnx", "onnxruntime", "onnx"} == by_extra["onnx"] and {"safetensors"} == by_extra[
        "weights"
    ]
    # keras-hub 0.32 needs Python 3.11+: the extra is marked so, and is empty on 3.10.
    hub = [
        r
        for r in requirements
        if r.marker and r.marker.evaluate({"extra": "hub", "python_version": "3.11"})
    ]
    assert {_normalise(r.name) for r in hub} == {"keras-hub"}
    assert not [r for r in hub if r.marker.evaluate({"extra": "hub", "python_version": "3.10"})]


def test_wheel_holds_the_code_configs_and_data_files(wheel):
    built, members = wheel
    assert built.endswith("-py3-none-any.whl")
    for package in ("inception", "inception_cli"):
        for directory, _, names in os.walk(os.path.join(ROOT, package)):
            for name in names:
                if name.endswith(".py"):
                    member = os.path.relpath(os.path.join(directory, name), ROOT)
                    assert member.replace(os.sep, "/") in members, member
    configs = sorted(n for n in os.listdir(os.path.join(ROOT, "configs")) if n.endswith(".cfg"))
    assert configs
    for name in configs:  # the clone's configs/ and the package's are one set of files
        with open(os.path.join(ROOT, "configs", name), "rb") as f:
            assert members[f"inception/configs/{name}"] == f.read()
    for data in (
        "inception/weights/imagenet_classes.tsv",
        "inception/applications/imagenet_class_index.tsv",
    ):
        with open(os.path.join(ROOT, *data.split("/")), "rb") as f:
            assert members[data] == f.read()
    [entry_points] = [n for n in members if n.endswith(".dist-info/entry_points.txt")]
    scripts = _pyproject()["project"]["scripts"]
    text = members[entry_points].decode()
    assert all(f"{name} = {target}" in text for name, target in scripts.items())


_PARSE = (
    "import sys; from absl import flags; from inception_cli import train_flags; "
    "argv = train_flags.expand_config(sys.argv); flags.FLAGS(argv); "
    "print(sorted(train_flags.to_config().to_flat().items())); "
    "assert 'tensorflow' not in sys.modules"
)


def _parse_flags(args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = ROOT  # the checkout's packages, from any working directory
    return subprocess.run(
        [sys.executable, "-c", _PARSE, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_config_by_name_from_any_directory_equals_the_clones_flagfile(tmp_path):
    from inception_cli import train_flags

    assert set(train_flags.CONFIG_NAMES) == {
        n[:-4] for n in os.listdir(os.path.join(ROOT, "configs")) if n.endswith(".cfg")
    }
    for name in train_flags.CONFIG_NAMES:
        override = ["--init_weights="] if name == "finetune_demo" else []  # needs the demo's run
        by_name = _parse_flags([f"--config={name}", "--epochs=3", *override], cwd=tmp_path)
        by_file = _parse_flags(
            [f"--flagfile=configs/{name}.cfg", "--epochs=3", *override], cwd=ROOT
        )
        assert by_name.returncode == 0, by_name.stderr[-2000:]
        assert by_name.stdout == by_file.stdout and "('epochs', 3.0)" in by_name.stdout
    # The spelling with a space works too, and a flag before --config is overridden by it.
    spaced = _parse_flags(["--epochs=3", "--config", "demo"], cwd=tmp_path)
    assert spaced.returncode == 0 and "('epochs', 5.0)" in spaced.stdout


def test_unknown_config_name_fails_at_once_with_the_names(tmp_path):
    result = _parse_flags(["--config=irv3"], cwd=tmp_path)
    assert result.returncode != 0
    assert (
        "--config=irv3" in result.stderr
        and "demo|finetune_demo|irv1|irv2|irv2_paper|v4" in result.stderr
    )
    nested = tmp_path / "nested.cfg"
    nested.write_text("--config=demo\n")
    result = _parse_flags([f"--flagfile={nested}"], cwd=tmp_path)
    assert result.returncode != 0 and "inside a config file use --flagfile" in result.stderr


# What the extras add, by top-level module (the [test] extra's tools included).
OPTIONAL_MODULES = (
    "sklearn",
    "tensorflow_serving",
    "ai_edge_litert",
    "tf2onnx",
    "onnxruntime",
    "onnx",
    "safetensors",
    "matplotlib",
    "PIL",
    "jax",
    "tensorboard",
    "pytest",
    "keras_hub",
    "grain",
)


def test_the_core_imports_without_any_extra():
    """`pip install inception` without extras: training, evaluation, the weight importers and
    the predictor of .keras models import (the optional modules load only where they are used)."""
    code = textwrap.dedent(f"""
        import importlib.abc, sys
        class NotInstalled(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {OPTIONAL_MODULES!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (an extra)")
        sys.meta_path.insert(0, NotInstalled())
        import inception.train, inception.evaluation.job, inception.prediction, inception.weights
        import inception.weights.pretrained, inception.export.classifier, inception.export.decoding
        import inception_cli.train, inception_cli.predict  # (the absl commands: one per process)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {OPTIONAL_MODULES!r})
        assert not loaded, loaded
    """)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_downloads_use_tls():
    """No plain-http URL in the code or the docs (the weight downloads included), but TF
    Serving's REST port on the local host."""
    plain = "http" + "://"  # spelled apart, so that this file passes its own check
    loopback = re.compile(re.escape(plain) + r"(localhost|127\.0\.0\.1|host)[:/]")
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "inception/weights/fetch.py" in tracked
    offenders = []
    for path in tracked:
        if path.endswith((".py", ".md", ".cfg", ".toml", ".txt", "Makefile")):
            with open(os.path.join(ROOT, path), encoding="utf-8", errors="replace") as f:
                offenders += [
                    f"{path}:{i}: {line.strip()}"
                    for i, line in enumerate(f, 1)
                    if plain in loopback.sub("", line)
                ]
    assert not offenders


def _record(pathname, level=logging.INFO, message="Load dataset info from data/x"):
    return logging.LogRecord("absl", level, pathname, 1, message, None, None)


def test_library_info_lines_are_dropped_ours_and_warnings_kept():
    keep = console.LibraryNoise().filter
    tfds = os.path.join(sys.prefix, "lib", "site-packages", "tensorflow_datasets", "core", "x.py")
    ours = os.path.join(ROOT, "inception", "training.py")
    assert not keep(_record(tfds))
    assert keep(_record(tfds, logging.WARNING, "the archive is missing"))
    assert not keep(_record(tfds, logging.WARNING, "foo is deprecated and will be removed"))
    assert keep(_record(ours))
    assert keep(_record(ours, logging.WARNING, "deprecated flag"))


def test_deprecation_notices_of_other_packages_only_are_silenced():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        console.silence_deprecations()
        for module in (
            "tensorflow.python.util",
            "keras.src.x",
            "inception.models",
            "inception_cli.export",
        ):
            warnings.warn_explicit("old API", DeprecationWarning, "x.py", 1, module=module)
        warnings.warn_explicit("a real warning", UserWarning, "x.py", 1, module="tensorflow.x")
    assert sorted(str(w.message) + " " + w.filename for w in caught) == [
        "a real warning x.py",
        "old API x.py",
        "old API x.py",
    ]


def test_verbose_changes_nothing():
    before = (
        list(warnings.filters),
        list(sys.meta_path),
        os.environ.get("TF_CPP_MIN_LOG_LEVEL"),
        list(logging.getLogger("absl").filters),
    )
    console.quiet(verbose=True)
    after = (
        list(warnings.filters),
        list(sys.meta_path),
        os.environ.get("TF_CPP_MIN_LOG_LEVEL"),
        list(logging.getLogger("absl").filters),
    )
    assert after == before


def _export(tmp_path, *flags):
    """export.py on an empty directory: flags pass, TensorFlow loads, then the run is refused."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [
            sys.executable,
            "export.py",
            f"--model_dir={tmp_path}",
            f"--export_dir={tmp_path}",
            *flags,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_entry_point_is_quiet_unless_verbose(tmp_path):
    quiet = _export(tmp_path)
    assert quiet.returncode != 0 and "missing ema_model.keras" in quiet.stderr  # our message
    output = quiet.stdout + quiet.stderr
    assert not NOISE.search(output), output[-3000:]
    assert len(output.strip().splitlines()) == 1, output[-3000:]
    verbose = _export(tmp_path, "--verbose")
    assert verbose.returncode != 0 and "missing ema_model.keras" in verbose.stderr
    if not NOISE.search(verbose.stdout + verbose.stderr):
        pytest.skip("this TensorFlow build prints no start-up noise to hide")


def test_quiet_cpp_output_drops_the_noise_line_and_keeps_every_other(capfd, monkeypatch):
    """The patterns are the export formats' own (the TFLite quantizer's, LiteRT's)."""
    from inception import console
    from inception.export import litert, tflite

    noise = (
        b"fully_quantize: 0, inference_type: 6, input_inference_type: FLOAT32, "
        b"output_inference_type: FLOAT32\n"
    )
    monkeypatch.setitem(console._state, "quiet", True)
    with console.quiet_cpp_output(tflite.QUANTIZER_SETTINGS, litert.DELEGATE_NOTICE):
        os.write(1, b"before\n" + noise + b"fully_quantize is a word\n")
        os.write(
            2, noise + b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\na real warning\n"
        )
        print("from Python", flush=True)
    printed = capfd.readouterr()  # (pytest captures Python's print apart from the descriptors)
    assert "from Python\n" in printed.out and printed.err == "a real warning\n"
    assert printed.out.replace("from Python\n", "") == "before\nfully_quantize is a word\n"
    monkeypatch.setitem(console._state, "quiet", False)  # --verbose: everything shows
    with console.quiet_cpp_output(tflite.QUANTIZER_SETTINGS):
        os.write(2, noise)
    assert capfd.readouterr().err == noise.decode()


def test_import_time_stderr_is_hidden_unless_the_import_fails(capfd):
    from inception import console

    with console._StderrToScratch(), console._StderrToScratch():  # nested: one scratch file
        os.write(2, b"a C++ start-up line\n")
    assert capfd.readouterr().err == ""
    with pytest.raises(ImportError), console._StderrToScratch():
        os.write(2, b"why the library failed to load\n")
        raise ImportError("broken build")
    assert capfd.readouterr().err == "why the library failed to load\n"


def test_tfds_warning_of_an_unprepared_dataset_is_hidden_and_its_other_warnings_kept(tmp_path):
    """TFDS's "Variant folder ... has no dataset_info.json" came before every first use of the
    embedded dataset (inception.data then says it prepares it); its other warnings still show."""
    from etils import epath
    from tensorflow_datasets.core.utils import file_utils

    class Messages(logging.Handler):
        def __init__(self, *filters):
            super().__init__(logging.DEBUG)
            self.messages = []
            for f in filters:
                self.addFilter(f)

        def emit(self, record):
            self.messages.append(record.getMessage())

    everything, shown = Messages(), Messages(console.LibraryNoise())
    logger = logging.getLogger("absl")
    for handler in (everything, shown):
        logger.addHandler(handler)
    try:
        for variant in ("1.0.0", "not_a_version"):
            (tmp_path / variant).mkdir()
            assert not file_utils.is_valid_variant_dir(epath.Path(tmp_path / variant))
    finally:
        for handler in (everything, shown):
            logger.removeHandler(handler)
    invalid = f"Variant folder {tmp_path / 'not_a_version'} has invalid version not_a_version"
    assert everything.messages == [
        f"Variant folder {tmp_path / '1.0.0'} has no dataset_info.json",
        invalid,
    ]
    assert shown.messages == [invalid]


def test_the_embedded_dataset_is_prepared_with_our_line_and_a_download_keeps_tfds_lines(
    tmp_path, capfd
):
    """TFDS printed "Downloading and preparing dataset Unknown size (download: Unknown size, ...)"
    and "Dataset sklearn_digits downloaded and prepared" on the embedded dataset's first use,
    though nothing is downloaded; other datasets keep them (a download says its size there)."""
    from inception import data
    from inception.data import catalogue

    data.prepare(data.EMBEDDED_DATASET, data_dir=str(tmp_path / "digits"))
    printed = capfd.readouterr()
    assert "Downloading and preparing" not in printed.out + printed.err
    assert "downloaded and prepared" not in printed.out + printed.err
    assert (
        f"inception.data: preparing 'sklearn_digits' from scikit-learn's copy under "
        f"{tmp_path / 'digits'} (first use only)\n"
    ) in printed.err
    # TFDS's own builders print them through the same two hooks (the ones our builder replaces).
    imagenet = catalogue.get_builder("imagenet2012", str(tmp_path / "imagenet"))
    imagenet._log_download_bytes()
    imagenet._log_download_done()
    printed = capfd.readouterr().out
    assert "Downloading and preparing dataset " in printed
    assert "Dataset imagenet2012 downloaded and prepared" in printed
