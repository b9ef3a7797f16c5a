"""The training console (issue 28, item 9): a live bar on a terminal, one line per epoch in a log
file or a pipe (Keras' verbose=2), INCEPTION_PROGRESS to force either. tests/progress_run.py
drives ``observe.Metrics`` through two epochs per case in a real process, its standard output a
pipe or a pseudo-terminal (one process for each: a TensorFlow import costs ~5 s)."""

import os
import pty
import re
import subprocess
import sys

import pytest

from inception import console

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAM = os.path.join(ROOT, "tests", "progress_run.py")
VALIDATION = "val_loss: 1.5000 - val_top1: 0.5000 - val_top5: 0.9000 (EMA weights)"


def _env():
    env = {k: v for k, v in os.environ.items() if k != console.PROGRESS_ENV}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _cases(out):
    """{case: its output} of progress_run.py's output (a "#### CASE" line before each)."""
    parts = re.split(r"#### (\w+)\r?\n", out)
    assert parts[0] == "", repr(out)
    return dict(zip(parts[1::2], parts[2::2]))


@pytest.fixture(scope="module")
def through_pipe(tmp_path_factory):
    """Each case's standard output through a pipe, from one process."""
    proc = subprocess.run(
        [sys.executable, PROGRAM, str(tmp_path_factory.mktemp("pipe")), "auto", "bar", "off"],
        env=_env(),
        capture_output=True,
        timeout=120,
    )  # bytes: "\r" as written
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _cases(proc.stdout.decode())


@pytest.fixture(scope="module")
def through_terminal(tmp_path_factory):
    """Each case's standard output as a terminal shows it (stderr apart, through a pipe), from
    one process whose standard output is a pseudo-terminal."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, PROGRAM, str(tmp_path_factory.mktemp("terminal")), "auto", "line"],
        env=_env(),
        stdout=follower,
        stderr=subprocess.PIPE,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the program closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()[-3000:]
    return _cases(b"".join(chunks).decode())


def test_a_pipe_gets_one_line_per_epoch_with_its_figures(through_pipe):
    out = through_pipe["auto"]
    assert "\r" not in out and "\b" not in out and "\x1b" not in out, repr(out)
    lines = out.splitlines()
    assert len(lines) == 2, out
    for epoch, line in enumerate(lines, 1):
        assert line.startswith(f"Epoch {epoch}/2 - 5/5 - "), line
        # The metrics.csv row's figures: the first step of the process is not timed (it compiles).
        assert line.endswith(
            " - loss: 2.0000 - top1: 0.5000 - lr: 0.0100 - img/s: 400.0000 - " + VALIDATION
        ), line


def test_a_terminal_gets_the_live_bar_and_then_the_validation(through_terminal):
    out = through_terminal["auto"]
    # The bar redrawn within each epoch (a terminal also writes "\r\n" for each line break).
    assert out.replace("\r\n", "\n").count("\r") >= 2 * 3, repr(out)
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "5/5" in out
    assert "Epoch 1: val top-1 0.5000, top-5 0.9000 (EMA weights)" in out
    assert "Epoch 2: val top-1 0.5000, top-5 0.9000 (EMA weights)" in out


def test_the_environment_forces_either_style(through_pipe, through_terminal):
    out = through_pipe["bar"]
    assert "\r" in out and "Epoch 2: val top-1 0.5000" in out
    out = through_terminal["line"]
    assert "\r" not in out.replace("\r\n", "\n") and len(out.splitlines()) == 2, repr(out)


def test_without_progress_only_the_validation_figures_show(through_pipe):
    out = through_pipe["off"]
    assert out.splitlines() == [
        f"Epoch {e}: val top-1 0.5000, top-5 0.9000 (EMA weights)" for e in (1, 2)
    ]


class _Stdout:
    def __init__(self, tty):
        self.tty = tty

    def isatty(self):
        return self.tty


@pytest.mark.parametrize(
    "tty,forced,style",
    [
        (True, None, "bar"),
        (False, None, "line"),
        (True, "line", "line"),
        (False, "bar", "bar"),
        (False, " BAR ", "bar"),
    ],
)
def test_progress_style(monkeypatch, tty, forced, style):
    monkeypatch.setattr(sys, "stdout", _Stdout(tty))
    if forced is None:
        monkeypatch.delenv(console.PROGRESS_ENV, raising=False)
    else:
        monkeypatch.setenv(console.PROGRESS_ENV, forced)
    assert console.progress_style() == style
    assert console.progbar_verbosity(True) == (1 if style == "bar" else 2)
    assert console.progbar_verbosity(False) == 0


def test_an_unknown_progress_style_is_refused(monkeypatch):
    monkeypatch.setenv(console.PROGRESS_ENV, "fancy")
    with pytest.raises(ValueError, match="INCEPTION_PROGRESS='fancy': expected one of"):
        console.progress_style()
