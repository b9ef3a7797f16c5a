"""The export report: for every exported variant its size, how far it is from the Keras model on
the validation images (top-1 agreement, largest probability difference, accuracy) and its latency
per image. Written as ``export_report.json`` next to the artifacts and printed as a table."""

import json
import os
import time

import numpy as np


def path_size(path):
    """Bytes of a file, or of all files under a directory."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


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


def write(report, path):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    return path


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
            f"{_fmt(v.get('max_abs_prob_diff'), '.2e'):>11}{_fmt(v.get('top1_accuracy'), '.4f'):>10}"
            f"{_fmt(v.get('latency_ms_per_image'), '.2f'):>10}  {v['path']}")
    return "\n".join(lines)
