"""What a training run shows and leaves behind: progress bars, TensorBoard and metrics.csv (the
``Metrics`` action), the step statistics behind them, and the paper's "died" signal (section 3.3).

Only the chief writes files; other workers get no-op writers. The writers are made when the
loop starts (``on_start``), never for ``--mode=eval``. Files go through ``inception.fileio``, so the
run directory may be on any TensorFlow file system; ``metrics.csv`` is rewritten whole at every
row (object stores cannot append).
"""

import csv
import io
import math
import time

import keras
import tensorflow as tf
from absl import logging
from tensorflow.core.framework import summary_pb2

from inception import console, fileio
from inception.runfiles import METRICS_CSV, TENSORBOARD_DIR
from inception.train.loop import Action
from inception.train.steps import TOP_K

# TensorBoard's scalar plugin reads summaries tagged with this metadata. Writing them through
# tf.summary.write keeps the tensorboard package out of the training dependencies (it is only
# needed to look at the logs).
_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
)

CSV_FIELDS = (
    "epoch",
    "step",
    "lr",
    "loss",
    "train_top1",
    "train_top3",
    "train_top5",
    "train_images_per_sec",
    "val_loss",
    "val_top1",
    "val_top3",
    "val_top5",
    "died_fraction",
    "dead_channels",
    "wall_time_s",
)


def _scalar(name, value):
    tf.summary.write(
        name, tf.constant(float(value), tf.float32), metadata=_SCALAR_METADATA.SerializeToString()
    )


class StepStats:
    """Running sums of the train step's outputs: loss, top-1/3/5 hits, timed images and, when
    given, the died counts. The loop's actions keep one per epoch (reset at each epoch's start)
    and one for everything this process trained (the summary's images/s)."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.loss_sum = 0.0
        self.count = 0
        self.correct = [0.0, 0.0, 0.0]
        self.images = 0
        self.seconds = 0.0
        self.zeros = 0.0
        self.size = 0.0
        self.dead_channel_sum = 0.0
        self.steps = 0

    def add(self, loss_sum, count, correct, seconds=None, died=None, steps=1):
        """Adds ``steps`` updates' sums: loss, images, top-1/3/5 hits, their time and, when
        given, their died counts (``zeros``, ``size``, ``dead_channels``: the sum over the steps
        of the fraction of channels that are zero on the whole global batch)."""
        self.loss_sum += loss_sum
        self.count += count
        self.steps += steps
        self.correct = [a + b for a, b in zip(self.correct, correct)]
        if died is not None:
            self.zeros += float(died["zeros"])
            self.size += float(died["size"])
            self.dead_channel_sum += float(died["dead_channels"])
        if seconds is not None:
            self.images += count
            self.seconds += seconds

    def add_step(self, out, seconds=None, died=False):
        """Adds one call's outputs (``out``, ``steps.SUMMED``); ``died``: also its died counts."""
        correct = [float(out[f"top{k}"]) for k in TOP_K]
        self.add(
            float(out["loss_sum"]),
            float(out["count"]),
            correct,
            seconds,
            out if died else None,
            steps=int(out.get("steps", 1)),
        )

    def loss(self):
        return self.loss_sum / max(self.count, 1)

    def accuracy(self):
        return [c / max(self.count, 1) for c in self.correct]

    def died_fraction(self):
        """Fraction of exactly-zero activations before average pooling over the steps so far."""
        return self.zeros / self.size if self.size else float("nan")

    def dead_channels(self):
        """Mean fraction of channels that are zero on a whole global batch."""
        return self.dead_channel_sum / self.steps if self.steps else float("nan")

    def images_per_sec(self):
        return self.images / self.seconds if self.seconds > 0 else float("nan")


def epoch_label(epoch):
    """An epoch as metrics.csv, TensorBoard and the console show it: 3, or 1.5 for a run that
    ends inside an epoch."""
    return int(epoch) if float(epoch).is_integer() else float(epoch)


class MetricsLog:
    """metrics.csv of a run directory: one row per epoch end, read back on resume."""

    def __init__(self, model_dir, chief):
        self.path = fileio.join(model_dir, METRICS_CSV)
        self.chief = chief
        self.kept_aside = None  # where a damaged metrics.csv's bytes were copied

    def _read(self):
        """(the whole rows, the file's bytes when some could not be read, else None)."""
        if not fileio.exists(self.path):
            return [], None
        data = fileio.read_bytes(self.path)
        rows, whole = parse_rows(data)
        return rows, None if whole else data

    def rows(self):
        return self._read()[0]

    def logged_epochs(self):
        """Epochs (1-based; 1.5 for a run that ended inside its second epoch) with a row."""
        return {float(row["epoch"]) for row in self.rows()}

    def logged_val_top1(self):
        """(epoch, validation top-1) of the rows that have an evaluation."""
        return [
            (epoch_label(float(row["epoch"])), float(row["val_top1"]))
            for row in self.rows()
            if row.get("val_top1")
        ]

    def append(self, row):
        """Rewrites metrics.csv with ``row`` after the whole rows of other epochs (an epoch
        trained again after a fall back to an older checkpoint replaces its row)."""
        if not self.chief:
            return
        rows, damaged = self._read()
        if damaged is not None:
            self._keep_aside(damaged, len(rows))
        out = io.StringIO()
        writer = csv.DictWriter(
            out, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\r\n"
        )
        writer.writeheader()
        for old in rows:
            if float(old["epoch"]) != float(row["epoch"]):
                writer.writerow({k: old.get(k, "") for k in CSV_FIELDS})
        writer.writerow({k: _fmt(row.get(k)) for k in CSV_FIELDS})
        fileio.write_text(self.path, out.getvalue())

    def _keep_aside(self, data, whole_rows):
        # A damaged log is never lost: its bytes go beside it before the first rewrite.
        self.kept_aside = f"{self.path}.damaged-{int(time.time())}"
        fileio.write_bytes(self.kept_aside, data)
        print(
            f"Warning: {self.path} had lines that cannot be read (cut short or overwritten); "
            f"its bytes are kept in {self.kept_aside}, and it goes on with its {whole_rows} "
            "whole rows",
            flush=True,
        )


def parse_rows(data):
    """(the whole rows of metrics.csv's bytes, whether every line was whole). A row is whole
    when it has every column, a numeric epoch and step, and its line ended (the file always
    ends with a line break, so a cut last line has none)."""
    try:
        text = data.decode("utf-8")
        reader = csv.DictReader(io.StringIO(text))
        parsed = list(reader)
    except (UnicodeDecodeError, csv.Error):
        return [], not data
    if text and not text.endswith("\n"):
        parsed = parsed[:-1]
        cut = True
    else:
        cut = False
    rows = [row for row in parsed if _whole_row(row)]
    header_ok = not text or set(reader.fieldnames or ()) >= {"epoch", "step"}
    return rows, header_ok and not cut and len(rows) == len(parsed)


def _whole_row(row):
    if None in row or None in row.values():  # extra or missing columns
        return False
    try:
        epoch, step = float(row["epoch"]), int(row["step"])
    except (KeyError, ValueError):
        return False
    return math.isfinite(epoch) and epoch > 0 and step >= 0


class Metrics(Action):
    """The console's progress, TensorBoard's train and validation scalars and metrics.csv.

    Every step: the epoch's running statistics, the progress bar, and every ``log_every_steps``
    the train scalars. Each epoch end: the row of the epoch's logs (what the other actions put
    there: evaluation, died signal) in metrics.csv and TensorBoard, and its validation figures
    on the console. Progress (``console.progress_style``): on a terminal, "Epoch 2/5" and a live
    bar; elsewhere one line per epoch with the metrics.csv row's figures, validation included
    (Keras' ``verbose=2``)."""

    def __init__(self, model_dir, chief, progress, log_every_steps, num_epochs, schedule):
        self.model_dir, self.chief = model_dir, chief
        self.progress = progress and chief
        self.log_every, self.num_epochs, self.schedule = log_every_steps, num_epochs, schedule
        self.log = MetricsLog(model_dir, chief)
        self.epoch_stats, self.session_stats = StepStats(), StepStats()
        self.train_writer = self.val_writer = None
        self.first_step = self.bar = self.epoch_start = None
        self.style = None  # console.progress_style(), chosen at on_start
        self.shown_epoch = None  # (epoch number, its start time) while its line is due
        self.start = time.time()

    def on_start(self, loop, step):
        if self.chief:
            tb = fileio.join(self.model_dir, TENSORBOARD_DIR)
            self.train_writer = tf.summary.create_file_writer(fileio.join(tb, "train"))
            self.val_writer = tf.summary.create_file_writer(fileio.join(tb, "validation"))
        else:
            self.train_writer = self.val_writer = tf.summary.create_noop_writer()
        self.first_step, self.start = step, time.time()
        self.style = console.progress_style() if self.progress else None

    def missed_epoch_end(self, epoch):
        return float(epoch) not in self.log.logged_epochs()

    def on_epoch_begin(self, loop, epoch, step):
        self.epoch_stats.reset()
        self.epoch_start = epoch * loop.steps_per_epoch
        if self.style == "bar":
            print(f"Epoch {epoch + 1}/{self.num_epochs}", flush=True)
            self.bar = keras.utils.Progbar(
                loop.steps_per_epoch, stateful_metrics=["loss", "top1", "lr", "img/s"]
            )
        elif self.style == "line":
            self.shown_epoch = (epoch + 1, time.time())

    def next_moment(self, step):
        return (step // self.log_every + 1) * self.log_every

    def on_step(self, loop, step, out):
        seconds = out["seconds"]
        # The first call compiles the step.
        timed = seconds if step - int(out["steps"]) > self.first_step else None
        self.epoch_stats.add_step(out, timed)
        self.session_stats.add_step(out, timed)
        stats = self.epoch_stats
        if self.bar is not None:
            self.bar.update(
                step - self.epoch_start,
                [
                    ("loss", stats.loss()),
                    ("top1", stats.accuracy()[0]),
                    ("lr", float(out["lr"])),
                    ("img/s", float(out["count"]) / seconds),
                ],
            )
        if step % self.log_every == 0 or step == loop.epoch_end:
            acc = stats.accuracy()
            self._scalars(
                self.train_writer,
                step,
                {
                    "loss": stats.loss(),
                    "learning_rate": float(out["lr"]),
                    "top1_accuracy": acc[0],
                    "top3_accuracy": acc[1],
                    "top5_accuracy": acc[2],
                    "images_per_sec": stats.images_per_sec(),
                    "grad_norm": float(out["grad_norm"]),
                },
            )

    def on_epoch_end(self, loop, epoch, step, logs):
        row = dict(
            logs,
            epoch=epoch,
            step=step,
            lr=float(self.schedule(max(step - 1, 0))),
            wall_time_s=time.time() - self.start,
        )
        stats = self.epoch_stats
        if stats.count:
            row.update(loss=stats.loss(), train_images_per_sec=stats.images_per_sec())
            row.update({f"train_top{k}": a for k, a in zip(TOP_K, stats.accuracy())})
        if "died_fraction" in logs:
            self._scalars(
                self.train_writer, step, {k: logs[k] for k in ("died_fraction", "dead_channels")}
            )
        if "val_top1" in logs:
            self._scalars(
                self.val_writer,
                step,
                {
                    "loss": logs["val_loss"],
                    "top1_accuracy": logs["val_top1"],
                    "top3_accuracy": logs["val_top3"],
                    "top5_accuracy": logs["val_top5"],
                },
            )
        self.flush()
        self.log.append(row)
        self._show(loop, step, row)
        stats.reset()

    def on_stop(self, loop, step, stop):
        self._show(loop, step, {})  # the figures of an epoch stopped part way
        self.flush()

    def _show(self, loop, step, row):
        """The console at an epoch's end (or a stop): its line when one is due, else the
        validation figures alone (after the bar, or with --progress=false)."""
        if not self.chief:
            return
        if self.shown_epoch is not None:
            print(self._epoch_line(loop, step, row), flush=True)
            self.shown_epoch = None
        elif "val_top1" in row:
            print(
                f"Epoch {epoch_label(row['epoch'])}: val top-1 {row['val_top1']:.4f}, top-5 "
                f"{row['val_top5']:.4f} (EMA weights)",
                flush=True,
            )

    def _epoch_line(self, loop, step, row):
        """ "Epoch 2/5 - 44/44 - 79s - loss: 3.0945 - top1: 0.3686 - lr: 0.0450 - img/s:
        217.2030 - val_loss: ... - val_top1: ... - val_top5: ... (EMA weights)": the epoch's
        metrics.csv figures in Keras' verbose=2 form."""
        number, started = self.shown_epoch
        stats = self.epoch_stats
        parts = [
            f"Epoch {number}/{self.num_epochs}",
            f"{step - self.epoch_start}/{loop.steps_per_epoch}",
            f"{time.time() - started:.0f}s",
        ]
        figures = {"lr": float(self.schedule(max(step - 1, 0)))}
        if stats.count:
            figures = {
                "loss": stats.loss(),
                "top1": stats.accuracy()[0],
                **figures,
                "img/s": stats.images_per_sec(),
            }
        figures.update({k: row[k] for k in ("val_loss", "val_top1", "val_top5") if k in row})
        parts += [
            f"{name}: {_keras_number(value)}"
            for name, value in figures.items()
            if math.isfinite(value)
        ]
        return " - ".join(parts) + (" (EMA weights)" if "val_top1" in row else "")

    def on_run_end(self, loop, step):
        self.flush()

    def flush(self):
        for writer in (self.train_writer, self.val_writer):
            if writer is not None:
                writer.flush()

    @staticmethod
    def _scalars(writer, step, values):
        with writer.as_default(step=step):
            for name, value in values.items():
                _scalar(name, value)


def _keras_number(value):
    """A figure as Keras' progress bar writes it."""
    return f"{value:.4f}" if value > 1e-3 else f"{value:.4e}"


def _fmt(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def finite_or_none(x):
    return float(x) if x is not None and math.isfinite(x) else None


def check_died(fraction, dead_channels, threshold, epoch):
    """Logs the died signal; returns True when it crosses the threshold."""
    logging.info(
        "epoch %g: %.4f of the activations before average pooling are exactly zero; "
        "%.4f of the channels are zero on the whole batch",
        epoch,
        fraction,
        dead_channels,
    )
    if fraction > threshold:
        logging.warning(
            "epoch %g: the network may have 'died' (paper section 3.3): %.2f%% of the activations "
            "of the last layer before average pooling are exactly zero (threshold %.2f%%). The "
            "paper's remedy is scaling the residuals down (--residual_scales, 0.1-0.3).",
            epoch,
            100 * fraction,
            100 * threshold,
        )
        return True
    return False
