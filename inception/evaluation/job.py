"""One evaluation from an ``EvaluateConfig``: the library side of ``evaluate.py`` /
``inception-evaluate``.

    from inception.evaluation.config import EvaluateConfig
    from inception.evaluation import job
    result = job.run(EvaluateConfig(models=("runs/demo",), protocols=(1, 10), data_dir="data"))
"""

from __future__ import annotations

from typing import Any

from inception.evaluation import report, runner
from inception.evaluation.config import EvaluateConfig
from inception.train import devices


def prepare(config):
    """(strategy, Evaluation) for ``config``; OSError or ValueError when the members, the dataset
    or the strategy cannot be used."""
    devices.split_cpu(config.num_cpu_devices)
    strategy = devices.make_strategy(
        devices.resolve_strategy_name(config.strategy, config.tpu), config.tpu
    )
    run_dataset, run_data_dir = runner.default_dataset(config.models)
    evaluation = runner.MultiCropEvaluation(
        config.models,
        config.protocols,
        config.dataset or run_dataset or "imagenet2012",
        strategy=strategy,
        data_dir=config.data_dir or run_data_dir or "data",
        manual_dir=config.manual_dir or None,
        batch_size=config.batch_size,
        max_images=config.max_images,
        central_fraction=config.central_fraction,
    )
    return strategy, evaluation


def evaluate(config, strategy, evaluation):
    """Runs the pass over the data and writes ``config.output`` (and the probabilities, if asked)
    on the chief; returns the results without the per-image arrays."""
    keep = bool(config.save_probabilities)
    result = evaluation.run(progress=config.progress, keep_probabilities=keep)
    if keep:
        if devices.is_chief(strategy):
            report.write_probabilities(result, config.save_probabilities)
        result = {k: v for k, v in result.items() if k not in ("probabilities", "labels")}
    if devices.is_chief(strategy):
        report.write_json(result, config.output)
    return result


def run(config: EvaluateConfig) -> dict[str, Any]:
    """``prepare`` then ``evaluate``."""
    return evaluate(config, *prepare(config))
