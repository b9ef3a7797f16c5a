"""What a training run shows and leaves behind: progress bars, TensorBoard, metrics.csv,
summary.json, and the paper's "died" signal (section 3.3).

Only the chief writes files; other workers get no-op writers.
"""

import csv
import math
import os
import time

import keras
import tensorflow as tf
from absl import logging
from tensorflow.core.framework import summary_pb2

from inception.train import rundir

# TensorBoard's scalar plugin reads summaries tagged with this metadata. Writing them through
# tf.summary.write keeps the tensorboard package out of the training dependencies (it is only
# needed to look at the logs).
_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))


def _scalar(name, value):
    tf.summary.write(name, tf.constant(float(value), tf.float32),
                     metadata=_SCALAR_METADATA.SerializeToString())

CSV_FIELDS = ("epoch", "step", "lr", "loss", "train_top1", "train_top3", "train_top5",
              "train_images_per_sec", "val_loss", "val_top1", "val_top3", "val_top5",
              "died_fraction", "dead_channels", "wall_time_s")


class StepStats:
    """Running sums of the train step's outputs: loss, top-1/3/5 hits, timed images and, when
    given, the died counts. The loop keeps one per epoch (reset at each epoch's start) and one
    for everything this process trained (the summary's images/s)."""

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

    def add(self, loss_sum, count, correct, seconds=None, died=None):
        self.loss_sum += loss_sum
        self.count += count
        self.steps += 1
        self.correct = [a + b for a, b in zip(self.correct, correct)]
        if died is not None:
            self.zeros += float(died["zeros"])
            self.size += float(died["size"])
            self.dead_channel_sum += float((died["channel_mass"] == 0.0).mean())
        if seconds is not None:
            self.images += count
            self.seconds += seconds

    def add_step(self, out, seconds=None, died=False):
        """Adds one train step's outputs (``out``); ``died``: also its died counts."""
        count = float(out["count"])
        correct = [float(out[f"top{k}"]) for k in (1, 3, 5)]
        self.add(float(out["loss"]) * count, count, correct, seconds, out if died else None)

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


class Observer:
    """TensorBoard writers, the epoch CSV, progress bars and the final summary."""

    def __init__(self, model_dir, chief, progress):
        self.model_dir = model_dir
        self.chief = chief
        self.progress = progress and chief
        if chief:
            tb = os.path.join(model_dir, "tensorboard")
            self.train_writer = tf.summary.create_file_writer(os.path.join(tb, "train"))
            self.val_writer = tf.summary.create_file_writer(os.path.join(tb, "validation"))
        else:
            self.train_writer = self.val_writer = tf.summary.create_noop_writer()
        self.csv_path = os.path.join(model_dir, "metrics.csv")
        self.start = time.time()

    def progbar(self, target, epoch, epochs):
        if not self.progress:
            return None
        print(f"Epoch {epoch + 1}/{epochs}", flush=True)
        return keras.utils.Progbar(target, stateful_metrics=["loss", "top1", "lr", "img/s"])

    def train_scalars(self, step, values):
        with self.train_writer.as_default(step=step):
            for name, value in values.items():
                _scalar(name, value)

    def train_step_scalars(self, step, stats, out):
        """The TensorBoard train scalars of the epoch so far (``stats``) at ``step``."""
        acc = stats.accuracy()
        self.train_scalars(step, {
            "loss": stats.loss(), "learning_rate": float(out["lr"]),
            "top1_accuracy": acc[0], "top3_accuracy": acc[1], "top5_accuracy": acc[2],
            "images_per_sec": stats.images_per_sec(), "grad_norm": float(out["grad_norm"])})

    def report_eval(self, step, epoch, result):
        """An epoch's validation result: TensorBoard, the log and (chief) the console."""
        self.val_scalars(step, {
            "loss": result["val_loss"], "top1_accuracy": result["val_top1"],
            "top3_accuracy": result["val_top3"], "top5_accuracy": result["val_top5"]})
        logging.info("epoch %g: val top-1 %.4f top-3 %.4f top-5 %.4f loss %.4f (%d images, "
                     "EMA weights)", epoch, result["val_top1"], result["val_top3"],
                     result["val_top5"], result["val_loss"], result["num_eval"])
        if self.chief:
            print(f"Epoch {epoch}: val top-1 {result['val_top1']:.4f}, top-5 "
                  f"{result['val_top5']:.4f} (EMA weights)", flush=True)

    def val_scalars(self, step, values):
        with self.val_writer.as_default(step=step):
            for name, value in values.items():
                _scalar(name, value)
        self.val_writer.flush()
        self.train_writer.flush()

    def _rows(self):
        if not os.path.exists(self.csv_path):
            return []
        with open(self.csv_path, newline="") as f:
            return [row for row in csv.DictReader(f) if row.get("epoch")]

    def logged_epochs(self):
        """Epoch numbers (1-based) that already have a CSV row."""
        return {int(row["epoch"]) for row in self._rows()}

    def logged_val_top1(self):
        """(epoch, validation top-1) of the CSV rows that have an evaluation."""
        return [(row["epoch"], float(row["val_top1"])) for row in self._rows()
                if row.get("val_top1")]

    def csv_row(self, row):
        if not self.chief:
            return
        new = not os.path.exists(self.csv_path)
        with open(self.csv_path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: _fmt(row.get(k)) for k in CSV_FIELDS})

    def write_json(self, name, payload):
        if self.chief:
            rundir.write_json(self.model_dir, name, payload)


def _fmt(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def epoch_row(stats):
    """The metrics.csv fields of an epoch's training ``stats``."""
    row = {"loss": stats.loss(), "train_images_per_sec": stats.images_per_sec(),
           "died_fraction": stats.died_fraction(), "dead_channels": stats.dead_channels()}
    row.update({f"train_top{k}": a for k, a in zip((1, 3, 5), stats.accuracy())})
    return row


def finite_or_none(x):
    return float(x) if x is not None and math.isfinite(x) else None


def check_died(fraction, dead_channels, threshold, epoch):
    """Logs the died signal; returns True when it crosses the threshold."""
    logging.info("epoch %d: %.4f of the activations before average pooling are exactly zero; "
                 "%.4f of the channels are zero on the whole batch", epoch, fraction, dead_channels)
    if fraction > threshold:
        logging.warning(
            "epoch %d: the network may have 'died' (paper section 3.3): %.2f%% of the activations "
            "of the last layer before average pooling are exactly zero (threshold %.2f%%). The "
            "paper's remedy is scaling the residuals down (--residual_scales, 0.1-0.3).",
            epoch, 100 * fraction, 100 * threshold)
        return True
    return False
