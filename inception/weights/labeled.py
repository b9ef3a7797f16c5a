"""A Dense classifier that carries its class names, so a converted ``.keras`` file names its classes.

Pure Keras 3. models.py imports this module so that ``keras.saving.load_model(path,
safe_mode=True)`` finds the layer once ``inception.models`` is imported.
"""

import keras


@keras.saving.register_keras_serializable(package="inception")
class LabeledDense(keras.layers.Dense):
    """``keras.layers.Dense`` plus ``class_ids`` (e.g. WordNet synsets) and ``class_names``.

    They are saved in the layer's config (so in the ``.keras`` file) and change nothing in the
    computation. ``class_names(model)`` reads them back.
    """

    def __init__(self, units, class_ids=None, class_names=None, **kwargs):
        super().__init__(units, **kwargs)
        for what, values in (("class_ids", class_ids), ("class_names", class_names)):
            if values is not None and len(values) != units:
                raise ValueError(f"{what} has {len(values)} entries for {units} units")
        self.class_ids = None if class_ids is None else [str(c) for c in class_ids]
        self.class_names = None if class_names is None else [str(c) for c in class_names]

    def get_config(self):
        return {**super().get_config(), "class_ids": self.class_ids, "class_names": self.class_names}


def class_names(model, layer="predictions"):
    """(ids, names) stored in the model's classifier, or (None, None) for an unlabeled one."""
    try:
        dense = model.get_layer(layer)
    except ValueError:
        return None, None
    return getattr(dense, "class_ids", None), getattr(dense, "class_names", None)


def with_class_names(model, class_ids, class_names_, layer="predictions"):
    """The same network with its classifier replaced by a LabeledDense holding the names.

    Every other layer (and its weights) is shared with ``model``; the classifier's weights are
    copied. The outputs keep their order (main, then aux).
    """
    old = model.get_layer(layer)
    config = old.get_config()
    config.pop("name", None)
    new = LabeledDense(class_ids=class_ids, class_names=class_names_, name=layer,
                       **{k: v for k, v in config.items() if k not in ("class_ids", "class_names")})
    inbound = old._inbound_nodes[0].input_tensors[0]
    replaced = new(inbound)
    new.set_weights(old.get_weights())
    outputs = [replaced if out is old.output else out for out in model.outputs]
    return keras.Model(model.inputs, outputs if len(outputs) > 1 else outputs[0], name=model.name)
