"""One export run: every requested format, checked against the Keras model, plus the report.

Layout under the export directory ``OUT``::

    OUT/<name>/<version>/                 SavedModel (point TF Serving's model_base_path here)
    OUT/<name>-bf16/<version>/            bfloat16 SavedModel (saved_model_bf16, opt-in): a
                                          servable of its own, since TF Serving serves one model
                                          per base directory (``Format.base_suffix``)
    OUT/<name>-artifacts/<version>/       <name>-fp32.tflite ... <name>.onnx and export_report.json

Every version directory is published whole (``versions.publish``), all under one version number,
claimed over every base directory the export writes and ``OUT/<name>``. TF Serving polls
``OUT/<name>`` (or ``OUT/<name>-bf16``) only, so the other files never sit inside a servable.
Every format goes through
the same steps (``formats.Format``): write, open its runner, measure it against Keras
(``agreement.Reference``), add its own fields.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from inception import fileio
from inception.export import agreement, versions
from inception.export import classifier as classifier_lib
from inception.export import formats as formats_lib
from inception.export.config import ExportOptions, check_export_name

ARTIFACTS_SUFFIX = "-artifacts"
REPORT_FILE = "export_report.json"


def _header(classifier, name, version, options, agreement_images, reference):
    return {
        # "source": the file exported (the report's field, kept for the reports already written).
        "source": classifier.model_path,
        "name": name,
        "version": version,
        "num_classes": classifier.num_classes,
        "image_size": classifier.image_size,
        "labels": list(classifier.labels),
        "formats": list(options.formats),
        "eval": {
            "dataset": agreement_images.dataset if agreement_images is not None else None,
            "num_images": reference.num_images,
        },
        "keras": reference.keras,
        "variants": {},
    }


def _row(fmt, inputs, path, reported_path, reference):
    """A format's report row: measured on its runner the same way for every format."""
    with fmt.open(path) as runner:
        row = {"path": reported_path, "size_bytes": agreement.path_size(path)}
        row.update(reference.measure(runner.predict))
        row.update(fmt.fields(inputs, runner, reference))
    return row


def _publish_servable(fmt, inputs, base, version, reference, log):
    log(f"{fmt.name} -> {fileio.join(base, str(version))}")
    path = versions.publish(base, version, lambda tmp: fmt.write(inputs, tmp))
    # Measured once published: what the server will load.
    return _row(fmt, inputs, path, path, reference)


def _publish_artifacts(files, inputs, base, version, rep, reference, log):
    final = fileio.join(base, str(version))

    def write(tmp):
        for fmt in files:
            filename = fmt.filename(inputs)
            log(f"{fmt.name} -> {fileio.join(final, filename)}")
            fmt.write(inputs, os.path.join(tmp, filename))
            rep["variants"][fmt.name] = _row(
                fmt, inputs, os.path.join(tmp, filename), fileio.join(final, filename), reference
            )
        rep["report_path"] = fileio.join(final, REPORT_FILE)
        agreement.write(rep, os.path.join(tmp, REPORT_FILE))

    versions.publish(base, version, write)


def run_export(
    classifier: classifier_lib.Classifier,
    export_dir: str,
    name: str,
    options: ExportOptions = ExportOptions(),  # noqa: B008 (frozen)
    *,
    agreement_images: agreement.AgreementImages | None = None,
    calibration_images: np.ndarray | None = None,
    log: Callable[[str], object] = print,
) -> dict[str, Any]:
    """Exports ``classifier`` (a ``classifier.Classifier``) in ``options.formats``; returns the
    report dict (also written as ``OUT/<name>-artifacts/<version>/export_report.json``).

    ``agreement_images`` (an ``agreement.AgreementImages``, possibly without images: then only
    its dataset is reported) is what every format is compared on;
    ``calibration_images`` (float32 [N, S, S, 3], preprocessed training images) feed int8."""
    check_export_name(name)
    selected = formats_lib.load_all(options.formats)
    with fileio.local_scratch() as scratch:
        inputs = formats_lib.Inputs(
            classifier=classifier,
            name=name,
            options=options,
            scratch=scratch,
            calibration_images=calibration_images,
            agreement_images=agreement_images,
        )
        for fmt in selected:
            fmt.check(inputs)
        servables = [f for f in selected if f.servable]
        base_of = {f.name: fileio.join(export_dir, name + f.base_suffix) for f in servables}
        artifacts = fileio.join(export_dir, name + ARTIFACTS_SUFFIX)
        # OUT/<name> always counts, written or not, so every servable keeps one numbering.
        bases = list(dict.fromkeys([fileio.join(export_dir, name), *base_of.values(), artifacts]))
        version = versions.claim(bases, options.version, log)
        reference = _reference(classifier, agreement_images, options.latency_repeats, log)
        rep = _header(classifier, name, version, options, agreement_images, reference)
        for fmt in servables:
            rep["variants"][fmt.name] = _publish_servable(
                fmt, inputs, base_of[fmt.name], version, reference, log
            )
        _publish_artifacts(
            [f for f in selected if not f.servable], inputs, artifacts, version, rep, reference, log
        )
    return rep


def _reference(classifier, agreement_images, latency_repeats, log):
    model = classifier.model
    keras_fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    if agreement_images is not None and len(agreement_images.images):
        log(f"Keras reference on {len(agreement_images.images)} validation images")
    return agreement.Reference(keras_fn, classifier.image_size, agreement_images, latency_repeats)
