"""Trains the runs of ``runs``, each an ordinary training run directory, and skips the ones
already finished, so an interrupted experiment resumes where it stopped (a run cut off midway
resumes from its own last checkpoint, as ``main.py`` does)."""

import os
import time

from inception import fileio

STATUS = "experiment_status.json"


def run_dir(root, spec):
    return os.path.join(root, "runs", *spec.name.split("/"))


def status(root, spec):
    """The recorded outcome of a run ({"state": "finished" | "diverged", ...}), or None."""
    path = os.path.join(run_dir(root, spec), STATUS)
    return fileio.read_json(path) if os.path.exists(path) else None


def train_one(spec, directory):
    """Trains ``spec`` into ``directory`` in this process; returns its status dict.

    A run that diverges is an outcome of the experiment (the paper's wide unscaled networks may),
    so it is recorded rather than raised.
    """
    import keras

    from inception import train
    from inception.train.config import TrainConfig

    config = TrainConfig.from_flat(dict(spec.flags, model_dir=directory))
    strategy = train.setup(config)
    started = time.time()
    try:
        summary = train.run(config, strategy)
        result = {"state": "finished", "steps": summary["steps"]}
    except train.TrainingError as err:
        result = {"state": "diverged", "reason": str(err)}
    finally:
        keras.backend.clear_session()
    result["wall_time_s"] = time.time() - started
    return result


def run_all(root, specs, log=print):
    """Runs every spec that has no recorded outcome yet; returns {name: status}."""
    outcomes = {}
    for i, spec in enumerate(specs, 1):
        directory = run_dir(root, spec)
        done = status(root, spec)
        if done is not None:
            log(f"[{i}/{len(specs)}] {spec.name}: {done['state']} earlier, skipped")
            outcomes[spec.name] = done
            continue
        os.makedirs(directory, exist_ok=True)
        log(f"[{i}/{len(specs)}] {spec.name}: training ({spec.claim})")
        result = train_one(spec, directory)
        fileio.write_json(
            os.path.join(directory, STATUS), dict(result, name=spec.name, labels=spec.labels)
        )
        log(f"[{i}/{len(specs)}] {spec.name}: {result['state']} in {result['wall_time_s']:.0f} s")
        outcomes[spec.name] = result
    return outcomes
