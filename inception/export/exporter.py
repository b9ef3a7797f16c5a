"""One export run: every requested format, checked against the Keras model, plus the report.

Layout under the export directory ``OUT``::

    OUT/<name>/<version>/                 SavedModel (point TF Serving's model_base_path here)
    OUT/<name>-artifacts/<version>/       <name>-fp32.tflite ... and export_report.json

Both version directories are written under a temporary name and renamed into place when
complete. TF Serving polls ``OUT/<name>`` only, so TFLite files never sit inside a servable.
"""

import os
import re
import tempfile

import numpy as np
import tensorflow as tf

from inception.config import EXPORT_FORMATS as FORMATS
from inception.config import EXPORT_TOP_K, MAX_PIXELS
from inception.export import litert, report, saved_model, session, tflite

ARTIFACTS_SUFFIX = "-artifacts"
REPORT_FILE = "export_report.json"
_NAME = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.\-]*$")


def check_formats(formats):
    formats = list(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"unknown export format(s) {unknown or formats}; choose from {', '.join(FORMATS)}")
    return formats


def check_name(name):
    if not _NAME.match(name or "") or name.isdigit() or name.startswith("."):
        raise ValueError(f"--name {name!r} must be a non-numeric file name of letters, digits, "
                         "'_', '-' or '.' (it becomes the directory TF Serving serves)")
    return name


def _batched(fn, images, batch_size=32):
    outputs = [np.asarray(fn(images[i:i + batch_size])) for i in range(0, len(images), batch_size)]
    return np.concatenate(outputs) if outputs else np.zeros((0,), np.float32)


def run_export(source, export_dir, name, *, version=None, formats=FORMATS, int8_io="float",
               calibration_images=None, eval_images=None, eval_labels=None, eval_encoded=None,
               dataset=None, top_k=EXPORT_TOP_K,
               max_pixels=MAX_PIXELS, latency_repeats=20, log=print):
    """Exports ``source`` (an ExportSource) and returns the report dict (also written to disk).

    ``eval_images`` float32 [N, S, S, 3] (preprocessed) and optionally ``eval_encoded`` (the same
    images encoded) are what every variant is compared on; ``calibration_images`` feed int8.
    """
    formats = check_formats(formats)
    check_name(name)
    if "tflite_int8" in formats and (calibration_images is None or len(calibration_images) == 0):
        raise ValueError("tflite_int8 needs calibration images (training images of the dataset; "
                         "pass --dataset for a .keras file)")
    sm_base = os.path.join(export_dir, name)
    art_base = os.path.join(export_dir, name + ARTIFACTS_SUFFIX)
    for base in (sm_base, art_base):
        for stale in saved_model.remove_stale_temporaries(base):
            log(f"removed {os.path.join(base, stale)} left by an interrupted export")
    version = saved_model.next_version(sm_base, art_base) if version is None else int(version)
    if version < 1:
        raise ValueError(f"--version must be a positive integer; got {version}")
    for base in (sm_base, art_base):
        if os.path.exists(os.path.join(base, str(version))):
            raise FileExistsError(f"version {version} already exists in {base}; pick another --version")

    model = source.model
    keras_fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    rep = {
        "source": source.model_path, "name": name, "version": version,
        "num_classes": source.num_classes, "image_size": source.image_size,
        "labels": list(source.labels), "formats": formats,
        "eval": {"dataset": dataset, "num_images": 0}, "keras": {}, "variants": {},
    }
    have_eval = eval_images is not None and len(eval_images) > 0
    sample = np.zeros((1, source.image_size, source.image_size, 3), np.float32)
    if have_eval:
        eval_images = np.asarray(eval_images, np.float32)
        sample = eval_images[:1]
        log(f"Keras reference on {len(eval_images)} validation images")
        reference = _batched(keras_fn, eval_images)
        rep["eval"]["num_images"] = int(len(eval_images))
        if eval_labels is not None:
            rep["keras"]["top1_accuracy"] = float(np.mean(reference.argmax(1) == eval_labels))
    rep["keras"]["latency_ms_per_image"] = report.latency_ms(lambda: keras_fn(sample), latency_repeats)

    def compare(probabilities):
        return report.agreement(reference, probabilities, eval_labels) if have_eval else {}

    if "saved_model" in formats:
        log(f"SavedModel -> {os.path.join(sm_base, str(version))}")
        warm = list(eval_encoded[:8]) if eval_encoded else None
        path = saved_model.publish(sm_base, version, lambda tmp: saved_model.write_saved_model(
            tmp, source, name, top_k=top_k, max_pixels=max_pixels, warmup_images=warm))
        # Measured through the session loader, the path TF Serving and saved_model_cli take.
        with session.SessionModel(path) as served:
            def by_images(x):
                return served.run(saved_model.SIGNATURE_IMAGES, images=x)["probabilities"]

            def by_bytes(b):
                return served.run(saved_model.SIGNATURE_BYTES, image_bytes=list(b))["probabilities"]

            entry = {"path": path, "size_bytes": report.path_size(path),
                     "signatures": list(saved_model.SIGNATURES), "loader": "tf.compat.v1 session"}
            if have_eval:
                entry.update(compare(_batched(by_images, eval_images)))
            entry["latency_ms_per_image"] = report.latency_ms(lambda: by_images(sample),
                                                              latency_repeats)
            if eval_encoded:
                entry["image_bytes"] = compare(_batched(by_bytes, list(eval_encoded)))
                entry["image_bytes"]["latency_ms_per_image"] = report.latency_ms(
                    lambda: by_bytes(eval_encoded[:1]), latency_repeats)
        rep["variants"]["saved_model"] = entry

    art_final = os.path.join(art_base, str(version))

    def write_artifacts(tmp):
        with tempfile.TemporaryDirectory() as scratch:
            if any(fmt.startswith("tflite_") for fmt in formats):
                tflite.write_probabilities_saved_model(source.model, source.image_size, scratch)
            write_tflite(tmp, scratch)
        rep["report_path"] = os.path.join(art_final, REPORT_FILE)
        report.write(rep, os.path.join(tmp, REPORT_FILE))

    def write_tflite(tmp, probabilities_saved_model):
        for fmt in formats:
            if not fmt.startswith("tflite_"):
                continue
            variant = fmt[len("tflite_"):]
            suffix = "-int8io" if variant == "int8" and int8_io == "int8" else ""
            filename = f"{name}-{variant}{suffix}.tflite"
            log(f"TFLite {variant} -> {os.path.join(art_final, filename)}")
            data = tflite.export_variant(source, variant, calibration_images, int8_io,
                                         saved_model_dir=probabilities_saved_model)
            tmp_path = os.path.join(tmp, filename)
            with open(tmp_path, "wb") as f:
                f.write(data)
            runner = litert.LiteRTClassifier(tmp_path)
            entry = {"path": os.path.join(art_final, filename), "size_bytes": len(data),
                     "runtime": "ai_edge_litert.interpreter.Interpreter"}
            if variant == "int8":
                entry["int8_io"] = int8_io
                entry["calibration_images"] = int(len(calibration_images))
            if have_eval:
                entry.update(compare(runner.predict(eval_images)))
            entry["latency_ms_per_image"] = report.latency_ms(
                lambda: runner.predict(sample), latency_repeats)
            rep["variants"][fmt] = entry

    saved_model.publish(art_base, version, write_artifacts)
    return rep
