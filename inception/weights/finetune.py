"""Starting a training run from existing weights: published files or one of our ``.keras`` models.

The trainer calls ``load_initial_weights`` once, after building the model and before creating
the optimizer (trainable flags decide which variables the optimizer sees).
"""

import keras

from inception import keras_internals
from inception.weights import pretrained


def load_initial_weights(
    model, weights, *, new_head=True, freeze_up_to=None, bn_inference=False, cache_dir=None
):
    """Loads ``weights`` into the training ``model``; returns the import report plus what was frozen.

    Args:
        model: built by ``models.build`` for the dataset (its own num_classes, aux head or not).
        weights: a published file (see ``inception.weights``), "imagenet", or a ``.keras`` model
            of this project (e.g. a finished run's ``ema_model.keras``) of the same network.
        new_head: when the dataset's class count differs from the file's, keep the model's freshly
            initialized classifier (and auxiliary classifier) instead of failing. With equal class
            counts the file's classifier is loaded either way.
        freeze_up_to: name of a block (``stem``, ``inception_a_1`` ... ``reduction_b`` ...; see
            ``models.block_names``): that block and every block before it stop training. Their
            BatchNorm layers then run in inference mode too (Keras' rule for frozen layers).
        bn_inference: every BatchNorm layer of the network uses its moving statistics in training
            and keeps them (and its beta) fixed: Keras' non-trainable BatchNormalization. For
            small fine-tuning batches, whose statistics are noisier than ImageNet's.
    """
    if freeze_up_to:
        _blocks_up_to(model, freeze_up_to)  # a wrong name fails before anything is loaded
    report = pretrained.load_weights(
        model, weights, cache_dir=cache_dir, new_head=new_head, aux_optional=True
    )
    report["frozen_blocks"] = freeze(model, freeze_up_to) if freeze_up_to else []
    report["bn_inference"] = set_bn_inference(model) if bn_inference else []
    return report


def freeze(model, up_to):
    """Makes the blocks from the stem up to and including ``up_to`` non-trainable; returns their names."""
    frozen = _blocks_up_to(model, up_to)
    for name in frozen:
        model.get_layer(name).trainable = False
    return frozen


def _blocks_up_to(model, up_to):
    from inception import models

    order = models.block_names(model)
    if up_to not in order:
        raise ValueError(
            f"freeze_up_to={up_to!r} is not a block of {model.name}; blocks: {', '.join(order)}"
        )
    return order[: order.index(up_to) + 1]


def set_bn_inference(model):
    """Marks every BatchNormalization of the model non-trainable; returns their paths."""
    paths = []
    for layer in keras_internals.all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
            paths.append(layer.path)
    return paths
