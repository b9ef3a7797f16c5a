import json
import os

# Quiet TensorFlow's C++ logging (pytest.ini puts the repository root on sys.path).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest

# The export tests' session fixtures, each built once per run across pytest-xdist workers.
from export_fixtures import (  # noqa: F401
    data_dir,
    exported,
    keras_model,
    loaded,
    reference,
    run_dir,
    validation,
)


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory):
    """The embedded dataset, prepared once for the session before any subprocess could race to
    prepare it."""
    from inception import data

    path = str(tmp_path_factory.mktemp("tfds"))
    data.describe(data.EMBEDDED_DATASET, data_dir=path)
    return path


def _trained_config(digits_dir, model_dir):
    from training_runs import small_config

    return small_config(
        digits_dir,
        model_dir,
        mode="train_and_eval",
        batch_size=32,
        steps_per_epoch=20,
        epochs=3,
        learning_rate=0.045,
        aux_logits=True,
        checkpoint_every_steps=25,
        keep_checkpoints=2,
        log_every_steps=5,
        warmup_epochs=0.5,
        seed=3,
    )


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, digits_dir):
    """One in-process train_and_eval run shared by the training, evaluation and fine-tuning tests
    (graph tracing makes every training run cost ~11-40 s here): IRv1 x0.1 with one block per
    stage (training_runs.SHALLOW) and the aux head, 3 epochs of 20 steps. Returns (config,
    strategy, summary); the run directory is named 'demo'.

    Trained once per pytest run across xdist workers (export_fixtures.built_once): every test
    only reads the run directory (one that writes, such as --mode=eval's eval.json, works on a
    copy); the summary is the run's summary.json."""
    from export_fixtures import built_once
    from inception import train

    strategies = []

    def build(directory):
        config = _trained_config(digits_dir, str(directory / "demo"))
        strategies.append(train.setup(config))
        train.run(config, strategies[0])

    directory = built_once(tmp_path_factory, "trained", build)
    config = _trained_config(digits_dir, str(directory / "demo"))
    strategy = strategies[0] if strategies else train.setup(config)
    with open(os.path.join(config.run.model_dir, "summary.json")) as f:
        summary = json.load(f)
    return config, strategy, summary
