"""One export from an ``ExportConfig``: the library side of ``export.py`` / ``inception-export``.

from inception.export.config import ExportConfig
from inception.export import job
report = job.run(ExportConfig(export_dir="exports", model_dir="runs/demo"))
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from inception.export import agreement, classifier, data, exporter, formats
from inception.export.config import ExportConfig, check_export_name


def load_classifier(config):
    """(Classifier, model name) of ``config``; OSError or ValueError when they cannot be used,
    a format's missing package included."""
    formats.load_all(config.formats)
    if config.model_dir:
        src = classifier.from_run_dir(config.model_dir)
        default_name = src.run_record.get("model") or "model"
    else:
        src = classifier.from_keras_file(config.keras_model, config.labels)
        default_name = os.path.splitext(os.path.basename(config.keras_model))[0]
    return src, check_export_name(config.name or default_name)


def _agreement_images(config, src, dataset, data_dir, log):
    log(f"reading up to {config.eval_images} validation images of {dataset}")
    encoded, labels = data.encoded_eval_images(dataset, config.eval_images, data_dir)
    return agreement.AgreementImages(
        data.preprocess(encoded, src.image_size), labels, encoded, dataset
    )


def export(config, src, name, log=print):
    """Writes every format of ``config`` for ``src``; returns the report (also on disk)."""
    dataset = config.dataset or src.run_record.get("dataset")
    data_dir = config.data_dir or src.run_record.get("data_dir")
    compared_on = calibration = None
    if dataset:
        compared_on = (
            _agreement_images(config, src, dataset, data_dir, log)
            if config.eval_images
            else agreement.AgreementImages(images=[], dataset=dataset)
        )
        if any(f.needs_calibration for f in formats.load_all(config.formats)):
            log(f"reading {config.calibration_images} calibration images of {dataset}")
            calibration = data.calibration_images(
                dataset, src.image_size, config.calibration_images, data_dir
            )
    else:
        log("no --dataset: the report will have sizes and latencies only")
    return exporter.run_export(
        src,
        config.export_dir,
        name,
        config,
        agreement_images=compared_on,
        calibration_images=calibration,
        log=log,
    )


def run(config: ExportConfig, log: Callable[[str], object] = print) -> dict[str, Any]:
    """``load_classifier`` then ``export``."""
    src, name = load_classifier(config)
    return export(config, src, name, log)
