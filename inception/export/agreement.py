"""How far every exported format is from the Keras model, and the export report that says it:
for every format its size, its agreement with Keras on the agreement images (validation images
of the dataset: top-1 agreement, largest probability difference, accuracy) and its latency per
image. Written as ``export_report.json`` next to the artifacts and printed as a table.

``AgreementImages`` are the images compared on; ``Reference`` holds the Keras model's answers on
them and measures every format's runner the same way.
"""

import dataclasses
import os
import time

import numpy as np

from inception import fileio

BATCH = 32  # images per call when a runtime answers the validation images


def path_size(path):
    """Bytes of a file, or of all files under a directory."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def batched(fn, items, batch_size=BATCH):
    """``fn`` over ``items`` in slices of ``batch_size``, the answers concatenated."""
    outputs = [np.asarray(fn(items[i : i + batch_size])) for i in range(0, len(items), batch_size)]
    return np.concatenate(outputs) if outputs else np.zeros((0,), np.float32)


def agreement(reference, probabilities, labels=None):
    """Compares probabilities [N, C] with the Keras reference [N, C]."""
    reference = np.asarray(reference, np.float32)
    probabilities = np.asarray(probabilities, np.float32)
    if reference.shape != probabilities.shape:
        raise ValueError(f"shape mismatch: reference {reference.shape} vs {probabilities.shape}")
    diff = np.abs(reference - probabilities)
    result = {
        "num_images": int(len(reference)),
        "top1_agreement": float(np.mean(reference.argmax(1) == probabilities.argmax(1))),
        "max_abs_prob_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_prob_diff": float(diff.mean()) if diff.size else 0.0,
    }
    if labels is not None:
        result["top1_accuracy"] = float(np.mean(probabilities.argmax(1) == np.asarray(labels)))
    return result


def latency_ms(fn, repeats=20, warmup=3):
    """Median wall time of ``fn()`` in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000.0)


@dataclasses.dataclass
class AgreementImages:
    """The images every format is compared on (the first validation images of ``dataset``):
    ``images`` float32 [N, S, S, 3] eval-preprocessed, their ``labels`` (or None) and
    ``encoded`` bytes (or None)."""

    images: np.ndarray
    labels: np.ndarray | None = None
    encoded: list | None = None
    dataset: str | None = None

    def __post_init__(self):
        self.images = np.asarray(self.images, np.float32)


class Reference:
    """The Keras model's probabilities on the agreement images, and the one way every format's
    row is measured against them (``measure``: agreement, then batch-1 latency)."""

    def __init__(self, keras_predict, image_size, images=None, repeats=20):
        self.images = images if images is not None and len(images.images) else None
        self.repeats = int(repeats)
        self.sample = np.zeros((1, image_size, image_size, 3), np.float32)
        self.probabilities = None
        if self.images is not None:
            self.sample = self.images.images[:1]
            self.probabilities = batched(keras_predict, self.images.images)
        self.keras = self._keras_row(keras_predict)

    def _keras_row(self, keras_predict):
        row = {}
        if self.images is not None and self.images.labels is not None:
            row["top1_accuracy"] = float(
                np.mean(self.probabilities.argmax(1) == self.images.labels)
            )
        row["latency_ms_per_image"] = self.latency(lambda: keras_predict(self.sample))
        return row

    @property
    def num_images(self):
        return 0 if self.images is None else int(len(self.images.images))

    def agreement(self, probabilities):
        """Agreement of probabilities on the agreement images ({} without them)."""
        if self.images is None:
            return {}
        return agreement(self.probabilities, probabilities, self.images.labels)

    def latency(self, fn):
        return latency_ms(fn, self.repeats)

    def measure(self, predict):
        """A format's row: ``predict`` (float images -> probabilities) on the agreement images,
        then its batch-1 latency."""
        row = {}
        if self.images is not None:
            row.update(self.agreement(predict(self.images.images)))
        row["latency_ms_per_image"] = self.latency(lambda: predict(self.sample))
        return row


def write(report, path):
    return fileio.write_json(path, report)


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def format_table(report):
    """Human-readable summary of a report dict."""
    lines = [
        f"export of {report['source']} ({report['num_classes']} classes, "
        f"{report['image_size']}x{report['image_size']}), version {report['version']}",
        f"compared with Keras on {report.get('eval', {}).get('num_images', 0)} validation images "
        f"of {report.get('eval', {}).get('dataset') or '-'}; Keras top-1 accuracy "
        f"{_fmt(report.get('keras', {}).get('top1_accuracy'), '.4f')}, latency "
        f"{_fmt(report.get('keras', {}).get('latency_ms_per_image'), '.2f')} ms/image",
        f"{'variant':<16}{'size MB':>10}{'top-1 agree':>13}{'max |dp|':>11}{'accuracy':>10}"
        f"{'ms/image':>10}  path",
    ]
    for name, v in report["variants"].items():
        lines.append(
            f"{name:<16}{v['size_bytes'] / 1e6:>10.2f}{_fmt(v.get('top1_agreement'), '.4f'):>13}"
            f"{_fmt(v.get('max_abs_prob_diff'), '.2e'):>11}"
            f"{_fmt(v.get('top1_accuracy'), '.4f'):>10}"
            f"{_fmt(v.get('latency_ms_per_image'), '.2f'):>10}  {v['path']}"
        )
    return "\n".join(lines)
