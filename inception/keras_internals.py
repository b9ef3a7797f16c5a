"""The Keras internals this project relies on, in one place: every private name is used here only.

- ``all_layers(model)``: ``Layer._flatten_layers``, every layer nested in a model (blocks inside
  blocks), each once. Keras has no public equivalent (``model.layers`` does not reach the layers
  inside a layer).
- ``seed_generator(layer)``, ``wrap_draws(generator, wrap)``, ``draws_wrapped(generator)``: a
  dropout layer's random state is one ``keras.random.SeedGenerator`` (``layer.seed_generator``),
  and every draw takes its seed from ``generator.next(ordered)`` (``keras.random.dropout`` ->
  ``seed_generator.draw_seed``), looked up on the instance: ``wrap_draws`` replaces ``next`` there
  (``train.replicas.per_replica_dropout``) and marks the generator with ``_per_replica``, an
  attribute of ours, so a generator is wrapped once.

Checked: Keras 3.15.1 (installed when this was written) by running ``tests/
test_keras_internals.py``; Keras 3.10.0 (pyproject's lower bound) by reading its source only
(the same ``Layer._flatten_layers``, ``Dropout.seed_generator``, and the TensorFlow backend's
``dropout`` -> ``draw_seed`` -> ``seed.next()``). The test fails with a message naming what
changed when a Keras version renames or drops any of them.
"""

import keras

# Our mark on a SeedGenerator whose draws were made per replica (not a Keras attribute).
_PER_REPLICA = "_per_replica"


def all_layers(model):
    """Every layer inside ``model``, nested ones included, each once (``model`` itself not)."""
    return model._flatten_layers(include_self=False, recursive=True)


def seed_generator(layer):
    """The layer's own ``keras.random.SeedGenerator`` (dropout layers), else None."""
    generator = getattr(layer, "seed_generator", None)
    return generator if isinstance(generator, keras.random.SeedGenerator) else None


def draws_wrapped(generator):
    """True once ``wrap_draws`` replaced the generator's draws."""
    return hasattr(generator, _PER_REPLICA)


def wrap_draws(generator, wrap):
    """Every later draw of ``generator`` goes through ``wrap(its own next)``, a function of
    ``ordered=True`` that returns a seed; the generator is marked (``draws_wrapped``)."""
    generator.next = wrap(generator.next)
    setattr(generator, _PER_REPLICA, True)
