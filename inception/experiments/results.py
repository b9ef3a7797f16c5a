"""Reads what the runs left in their directories: metrics.csv (one row per epoch), the TensorBoard
training scalars and the experiment status. The report is built only from these."""

import csv
import glob
import os

import numpy as np

from inception.experiments import runner
from inception.runfiles import METRICS_CSV, TENSORBOARD_DIR


def metrics(directory):
    """metrics.csv -> {column: float array} (empty cells become NaN)."""
    path = os.path.join(directory, METRICS_CSV)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path} has no rows")
    return {
        k: np.array([float(r[k]) if r[k] not in ("", None) else np.nan for r in rows])
        for k in rows[0]
    }


def scalars(directory, tag, split="train"):
    """(steps, values) of one TensorBoard scalar written by the trainer, sorted by step."""
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    points = {}
    for path in sorted(glob.glob(os.path.join(directory, TENSORBOARD_DIR, split, "events.*"))):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.tag == tag:
                    points[int(event.step)] = float(tf.make_ndarray(value.tensor))
    steps = np.array(sorted(points), dtype=np.int64)
    return steps, np.array([points[s] for s in steps], dtype=np.float64)


def speed_curves(root, specs):
    """{setting: {network: [per-seed dict(epoch, step, wall, top1_err, top5_err, seed,
    grad_norm)]}} of the finished runs (grad_norm: the logged global gradient norms)."""
    curves = {}
    for spec in specs:
        done = runner.status(root, spec)
        if not done or done["state"] != "finished":
            continue
        directory = runner.run_dir(root, spec)
        m = metrics(directory)
        by_network = curves.setdefault(spec.labels["setting"], {})
        by_network.setdefault(spec.labels["network"], []).append(
            {
                "seed": spec.labels["seed"],
                "epoch": m["epoch"],
                "step": m["step"],
                "wall": m["wall_time_s"],
                "top1_err": 1.0 - m["val_top1"],
                "top5_err": 1.0 - m["val_top5"],
                "grad_norm": scalars(directory, "grad_norm")[1],
            }
        )
    return curves


def died_series(root, specs):
    """{run name: dict(labels, state, step, died, loss_step, loss)} of the died runs."""
    series = {}
    for spec in specs:
        done = runner.status(root, spec)
        if not done:
            continue
        directory = runner.run_dir(root, spec)
        entry = {
            "labels": spec.labels,
            "state": done["state"],
            "step": np.array([]),
            "died": np.array([]),
        }
        if os.path.exists(os.path.join(directory, METRICS_CSV)):
            m = metrics(directory)
            entry.update(step=m["step"], died=m["died_fraction"])
        entry["loss_step"], entry["loss"] = scalars(directory, "loss")
        series[spec.name] = entry
    return series
