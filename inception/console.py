"""What the console shows: our progress and messages and real warnings, not library noise.

Progress (``progress_style``) follows Keras' two conventions: a live bar on a terminal (its
``verbose=1``), one line per epoch or evaluation pass elsewhere (its ``verbose=2``: a log file, a
pipe, CI), where a bar's every update would be a line of its own. ``INCEPTION_PROGRESS=bar`` or
``=line`` forces either; ``--progress=false`` shows neither.

``quiet()`` runs before TensorFlow is imported (every entry point calls it first; ``--verbose``
skips it). What it hides, and how:

- TensorFlow's C++ log lines: ``TF_CPP_MIN_LOG_LEVEL=3`` for those written after its logging is
  set up; the ones written while its libraries load (the CUDA probe on machines without a GPU,
  "All log messages before absl::InitializeLog()", oneDNN notices) bypass that setting, so file
  descriptor 2 points to a scratch file while those modules import and TensorFlow lists its
  devices. If the import fails, the scratch file is replayed to stderr before the exception.
- absl INFO lines of other libraries (TFDS's "Load dataset info", ...): a filter on absl's logger
  drops INFO and below unless the record comes from this project's packages; a converter's
  INFO lines are held back by its logger's level, which the export format using it asks for
  (``hold_info``: ``inception.export.onnx`` for tf2onnx's "Using opset", "Optimizing ONNX model").
- TFDS's own progress bars (dataset preparation), and deprecation notices: Python's
  DeprecationWarning and friends, and TensorFlow's "is deprecated" log warnings.
- Lines C++ code prints past logging: ``quiet_cpp_output(pattern)`` around the calls that print
  them, the pattern given by the code that calls (an export format: the TFLite quantizer's
  settings, once per int8 conversion, and LiteRT's "Created ... XNNPACK delegate" notice).
Our own ``warnings.warn`` and WARNING log lines still show.
"""

import contextlib
import importlib.abc
import importlib.machinery
import logging
import os
import re
import sys
import tempfile
import warnings

VERBOSE_HELP = (
    "Also show TensorFlow's C++ logs, absl INFO lines and deprecation notices (hidden by default)."
)
# Top-level modules whose import prints C++ noise (they load TensorFlow's or XLA's libraries).
NOISY_IMPORTS = ("tensorflow", "tensorflow_datasets", "keras", "ai_edge_litert", "jax")
_OURS = tuple(
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), package) + os.sep
    for package in ("inception", "inception_cli")
)
_NOT_OURS = r"(?!inception(_cli)?(\.|$))"  # a module-name pattern for warnings.filterwarnings
_state = {"quiet": False}
_held_info = set()  # library loggers held at WARNING when quiet (``hold_info``)
PROGRESS_ENV = "INCEPTION_PROGRESS"
PROGRESS_STYLES = ("bar", "line")


def quiet(verbose=False):
    """Hides library noise for the rest of the process; ``verbose=True`` changes nothing.
    Call before TensorFlow is imported (afterwards, the import-time lines are already out)."""
    if verbose:
        return
    _state["quiet"] = True
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    silence_deprecations()
    for name in ("absl", "tensorflow"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, LibraryNoise) for f in logger.filters):
            logger.addFilter(LibraryNoise())
    for name in _held_info:
        logging.getLogger(name).setLevel(logging.WARNING)
    if not any(isinstance(f, _QuietImports) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImports())
    if "tensorflow_datasets" in sys.modules:
        _after_import(sys.modules["tensorflow_datasets"])


def hold_info(logger_name):
    """Holds the INFO lines of a library's logger (and its children's) back when quiet, whether
    ``quiet()`` ran already or runs later. An export format calls it for its converter when its
    module loads (``inception.export.formats`` says what a format provides)."""
    _held_info.add(logger_name)
    if _state["quiet"]:
        logging.getLogger(logger_name).setLevel(logging.WARNING)


def progress_style():
    """'bar' (a live progress bar) or 'line' (one line per epoch or pass): ``INCEPTION_PROGRESS``
    when set, else 'bar' when standard output is a terminal. Keras' own test cannot tell: it
    takes every POSIX stdout for a terminal and fills log files with carriage-return updates."""
    forced = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if forced:
        if forced not in PROGRESS_STYLES:
            raise ValueError(
                f"{PROGRESS_ENV}={forced!r}: expected one of {PROGRESS_STYLES} "
                "(unset: a bar on a terminal, else one line per epoch)"
            )
        return forced
    isatty = getattr(sys.stdout, "isatty", None)
    return "bar" if isatty is not None and isatty() else "line"


def progbar_verbosity(progress):
    """Keras' ``Progbar(verbose=...)`` for ``progress`` on or off: 1 (the bar), 2 (one line when
    the bar completes) or 0."""
    if not progress:
        return 0
    return 1 if progress_style() == "bar" else 2


@contextlib.contextmanager
def quiet_cpp_output(*noise):
    """After ``quiet()``: file descriptors 1 and 2 go to scratch files while inside, and on the
    way out every line of them but those a ``noise`` pattern (compiled bytes regex) matches
    reaches its stream (Python's own writes inside included, after the block). Without ``quiet()``
    (``--verbose``) it changes nothing."""
    if not _state["quiet"]:
        yield
        return

    def without_noise(written, failed):
        return b"".join(
            line
            for line in written.splitlines(keepends=True)
            if not any(pattern.match(line) for pattern in noise)
        )

    with _fd_to_scratch(1, sys.stdout, without_noise), _fd_to_scratch(2, sys.stderr, without_noise):
        yield


@contextlib.contextmanager
def quiet_decoder_output():
    """After ``quiet()``: what C code prints on stderr while inside is dropped, unless an
    exception leaves. For image decoding: libjpeg prints its own warnings ("Corrupt JPEG data:
    premature end of data segment", "Unsupported marker type 0x13") past logging, without the
    file's name, and the caller reports each refused image itself. Without ``quiet()``
    (``--verbose``) it changes nothing."""
    if not _state["quiet"]:
        yield
        return
    with _fd_to_scratch(2, sys.stderr, lambda written, failed: written if failed else b""):
        yield


@contextlib.contextmanager
def _fd_to_scratch(fd, stream, replay):
    """File descriptor ``fd`` points at a scratch file while inside (``stream``, Python's writer
    to it, flushed at both ends); yields the descriptor of the real target. On the way out the
    descriptor is restored and ``replay(what was written, whether an exception left)`` says what
    of it to write there."""
    stream.flush()
    saved, failed = os.dup(fd), True
    with tempfile.TemporaryFile() as scratch:
        os.dup2(scratch.fileno(), fd)
        try:
            yield saved
            failed = False
        finally:
            stream.flush()
            os.dup2(saved, fd)
            os.close(saved)
            scratch.seek(0)
            kept = replay(scratch.read(), failed)
            if kept:
                os.write(fd, kept)


def silence_deprecations():
    """Deprecation notices of other packages are ignored; ours, and every other warning, show."""
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=_NOT_OURS)


# TFDS warns "Variant folder <data_dir>/<name>/<version> has no dataset_info.json" when it looks
# at a dataset that is not prepared yet, i.e. on every first use of the embedded dataset, just
# before inception.data says it prepares it; a dataset that stays unprepared is our own error.
_UNPREPARED_VARIANT = re.compile(r"^Variant folder .* has no dataset_info\.json$")


class LibraryNoise(logging.Filter):
    """Keeps warnings and errors, and every record logged from this project's packages."""

    def filter(self, record):
        if record.pathname.startswith(_OURS):
            return True
        message = record.getMessage()
        if "deprecat" in message.lower() or _UNPREPARED_VARIANT.match(message):
            return False
        return record.levelno >= logging.WARNING


class _QuietImports(importlib.abc.MetaPathFinder):
    """Loads the NOISY_IMPORTS with file descriptor 2 pointing to a scratch file."""

    def find_spec(self, name, path, target=None):
        if name not in NOISY_IMPORTS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        # The module keeps its real loader (importlib.resources and friends ask it for files).
        module.__loader__ = module.__spec__.loader = self.loader
        with _StderrToScratch():
            self.loader.exec_module(module)
            _after_import(module)

    def __getattr__(self, name):
        return getattr(self.loader, name)


def _after_import(module):
    if module.__name__ == "tensorflow":
        module.config.list_physical_devices()  # the CUDA probe: its "failed call to cuInit" line
    elif module.__name__ == "tensorflow_datasets":
        module.disable_progress_bar()


class _StderrToScratch:
    """Points file descriptor 2 at a scratch file (nestable); replays it if an exception leaves."""

    depth = 0

    def __enter__(self):
        cls = _StderrToScratch
        cls.depth += 1
        if cls.depth == 1:
            cls.stack = contextlib.ExitStack()
            console = cls.stack.enter_context(
                _fd_to_scratch(2, sys.stderr, lambda written, failed: written if failed else b"")
            )
            # Python's own writes (a real warning during the import) still reach the console.
            if _writes_to_fd2(sys.stderr):
                python_stderr = sys.stderr
                sys.stderr = open(
                    console,
                    "w",
                    buffering=1,
                    closefd=False,
                    encoding=python_stderr.encoding,
                    errors="backslashreplace",
                )
                cls.stack.callback(_restore_stderr, python_stderr)
        return self

    def __exit__(self, kind, value, traceback):
        cls = _StderrToScratch
        cls.depth -= 1
        if cls.depth == 0:
            cls.stack.__exit__(kind, value, traceback)
        return False


def _restore_stderr(python_stderr):
    sys.stderr.close()
    sys.stderr = python_stderr


def _writes_to_fd2(stream):
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False
