"""One export from an ``ExportConfig``: the library side of ``export.py`` / ``inception-export``.

    from inception.config import ExportConfig
    from inception.export import job
    report = job.run(ExportConfig(export_dir="exports", model_dir="runs/demo"))
"""

import os

from inception.export import data, exporter, source


def load_source(config):
    """(ExportSource, model name) of ``config``; OSError or ValueError when they cannot be used."""
    if config.model_dir:
        src = source.from_run_dir(config.model_dir)
        default_name = src.config.get("model") or "model"
    else:
        src = source.from_keras_file(config.keras_model, config.labels)
        default_name = os.path.splitext(os.path.basename(config.keras_model))[0]
    return src, exporter.check_name(config.name or default_name)


def export(config, src, name, log=print):
    """Writes every format of ``config`` for ``src``; returns the report (also on disk)."""
    dataset = config.dataset or src.config.get("dataset")
    data_dir = config.data_dir or src.config.get("data_dir")
    calibration = eval_images = eval_labels = encoded = None
    if dataset:
        if config.eval_images:
            log(f"reading up to {config.eval_images} validation images of {dataset}")
            encoded, eval_labels = data.encoded_eval_images(dataset, config.eval_images, data_dir)
            eval_images = data.preprocess(encoded, src.image_size)
        if "tflite_int8" in config.formats:
            log(f"reading {config.calibration_images} calibration images of {dataset}")
            calibration = data.calibration_images(dataset, src.image_size,
                                                  config.calibration_images, data_dir)
    else:
        log("no --dataset: the report will have sizes and latencies only")
    return exporter.run_export(
        src, config.export_dir, name, version=config.version, formats=config.formats,
        int8_io=config.int8_io, calibration_images=calibration, eval_images=eval_images,
        eval_labels=eval_labels, eval_encoded=encoded, dataset=dataset, top_k=config.top_k,
        max_pixels=config.max_pixels, latency_repeats=config.latency_repeats, log=log)


def run(config, log=print):
    """``load_source`` then ``export``."""
    src, name = load_source(config)
    return export(config, src, name, log)
