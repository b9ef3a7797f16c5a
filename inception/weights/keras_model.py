"""Reader for a ``.keras`` model saved by this project (a converted file, or a training run's model).

Variables are matched by their paths, so it works for all three networks and any width, as long
as the file holds the same network as the model it is loaded into.
"""

import keras
import numpy as np

from inception.weights.file import FORMAT_KERAS_MODEL, Entry, WeightsError, WeightsFile


def from_keras_file(path):
    from inception import models  # noqa: F401  (registers our layers for safe-mode loading)

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as err:  # noqa: BLE001 -- Keras raises many types for a bad archive
        raise WeightsError(
            f"{path}: not a .keras model of this project that loads in safe mode ({err})"
        ) from None
    return from_model(model, path)


def from_model(model, path="<in memory>"):
    """WeightsFile for a built model (its current values)."""
    title = model.name
    source = WeightsFile(
        FORMAT_KERAS_MODEL,
        path,
        model.name,
        title,
        f"Keras model {model.name!r}",
        {},
        files=[path] if path != "<in memory>" else [],
        expected_key=lambda p: p,
    )
    for variable in model.weights:
        if "seed_generator" in variable.path:  # dropout's RNG state: nothing learned
            source.ignored.append((variable.path, "random-number generator state"))
            continue
        source.entries[variable.path] = Entry(
            variable.path,
            tuple(variable.shape),
            (lambda v=variable: np.asarray(keras.ops.convert_to_numpy(v), dtype=np.float32)),
        )
    classes = source.classes()
    names = getattr(model.get_layer("predictions"), "class_names", None) if classes else None
    source.background = bool(names) and names[0] == "background"
    source.model = model
    return source
