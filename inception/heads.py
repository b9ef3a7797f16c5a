"""What sits on the backbone's feature map: the classifier of Figures 9 and 15, or a pooling.

One model, one head: ``models.build`` and ``inception.applications`` put a head on
``models.backbone``'s feature map with ``head`` (or ``pooled`` without the top), and swapping the
classifier (class names of imported weights, a fine-tune to another class count) builds a new
one on the output of the head's dropout (``replace_classifier``), through Keras' public graph
API only. ``LabeledDense`` is the classifier that carries its class names in its config.
Pure Keras 3: no TensorFlow import.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import keras

from inception.layers import XAVIER, ConvOptions

CLASSIFIER = "predictions"  # the classifier's layer name (keras.applications' too)
POOLED = "dropout"  # the layer whose output the classifier reads
# A classifier's activation: a Keras activation's name, a callable, or None for logits.
Activation: TypeAlias = str | Callable[..., Any] | None


@keras.saving.register_keras_serializable(package="inception")
class LabeledDense(keras.layers.Dense):
    """``keras.layers.Dense`` plus ``class_ids`` (e.g. WordNet synsets) and ``class_names``.

    They are saved in the layer's config (so in the ``.keras`` file) and change nothing in the
    computation. ``class_names(model)`` reads them back.
    """

    def __init__(
        self,
        units: int,
        class_ids: Sequence[Any] | None = None,
        class_names: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(units, **kwargs)
        for what, values in (("class_ids", class_ids), ("class_names", class_names)):
            if values is not None and len(values) != units:
                raise ValueError(f"{what} has {len(values)} entries for {units} units")
        self.class_ids = None if class_ids is None else [str(c) for c in class_ids]
        self.class_names = None if class_names is None else [str(c) for c in class_names]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "class_ids": self.class_ids,
            "class_names": self.class_names,
        }


def classifier(
    num_classes: int,
    activation: Activation = "softmax",
    options: ConvOptions | None = None,
    class_ids: Sequence[Any] | None = None,
    class_names: Sequence[Any] | None = None,
) -> keras.layers.Dense:
    """The fully connected classifier layer, named ``predictions``.

    float32 even under mixed precision: logits and softmax in bfloat16 lose the small
    probabilities the loss and the top-k metrics read. Glorot uniform, as slim's
    fully_connected; ``options`` (layers.ConvOptions) give the weight decay.
    """
    settings = dict(
        activation=activation,
        kernel_initializer=XAVIER,
        kernel_regularizer=options.kernel_regularizer() if options else None,
        bias_regularizer=options.bias_regularizer() if options else None,
        dtype="float32",
        name=CLASSIFIER,
    )
    if class_ids is None and class_names is None:
        return keras.layers.Dense(num_classes, **settings)
    return LabeledDense(num_classes, class_ids=class_ids, class_names=class_names, **settings)


def head(
    features: keras.KerasTensor,
    num_classes: int,
    activation: Activation = "softmax",
    dropout_rate: float = 0.2,
    options: ConvOptions | None = None,
    data_format: str | None = None,
) -> keras.KerasTensor:
    """Figures 9 and 15's top on the feature map: average pooling, dropout, the classifier."""
    x = keras.layers.GlobalAveragePooling2D(data_format=data_format, name="avg_pool")(features)
    x = keras.layers.Dropout(dropout_rate, name=POOLED)(x)
    return classifier(num_classes, activation, options)(x)


def pooled(
    features: keras.KerasTensor, pooling: str | None, data_format: str | None = None
) -> keras.KerasTensor:
    """Without the top: the feature map itself (None), or its global average or maximum."""
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(data_format=data_format, name="avg_pool")(
            features
        )
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(data_format=data_format, name="max_pool")(features)
    if pooling is None:
        return features
    raise ValueError(f"pooling must be 'avg', 'max' or None, got {pooling!r}")


def replace_classifier(model: keras.Model, new: keras.layers.Layer) -> keras.Model:
    """The same network with the layer ``new`` as its classifier, on the head's pooled features.

    Every other layer (and its weights) is shared with ``model``; the outputs keep their order
    (main, then aux). ``new`` must be named ``predictions`` (``classifier`` makes one).
    """
    if new.name != CLASSIFIER:
        raise ValueError(f"the new classifier must be named {CLASSIFIER!r}, got {new.name!r}")
    old = _classifier_layer(model)
    replaced = new(model.get_layer(POOLED).output)
    outputs = [replaced if out is old.output else out for out in model.outputs]
    return keras.Model(_one_or_list(model.inputs), _one_or_list(outputs), name=model.name)


def with_class_names(
    model: keras.Model, class_ids: Sequence[Any] | None, class_names_: Sequence[Any] | None
) -> keras.Model:
    """The same network with its classifier replaced by a LabeledDense holding the names; the
    classifier's weights are copied."""
    old = _classifier_layer(model)
    config = {
        k: v for k, v in old.get_config().items() if k not in ("name", "class_ids", "class_names")
    }
    new = LabeledDense(class_ids=class_ids, class_names=class_names_, name=CLASSIFIER, **config)
    model = replace_classifier(model, new)
    new.set_weights(old.get_weights())
    return model


def class_names(model: keras.Model) -> tuple[list[str] | None, list[str] | None]:
    """(ids, names) stored in the model's classifier, or (None, None) for an unlabeled one."""
    try:
        dense = model.get_layer(CLASSIFIER)
    except ValueError:
        return None, None
    return getattr(dense, "class_ids", None), getattr(dense, "class_names", None)


def _one_or_list(tensors):
    """A single tensor as itself (a list of one makes Keras warn when the model is called)."""
    return tensors[0] if len(tensors) == 1 else list(tensors)


def _classifier_layer(model):
    try:
        return model.get_layer(CLASSIFIER)
    except ValueError:
        raise ValueError(
            f"{model.name} has no classifier ({CLASSIFIER!r}): built with include_top=False?"
        ) from None
