"""A float32 Keras classifier rebuilt to compute in bfloat16, for the ``saved_model_bf16`` export.

``to_bfloat16(model)`` rebuilds ``model`` from its config under Keras' ``mixed_bfloat16`` dtype
policy (variables float32, computation bfloat16) and copies its weights: the network
``models.build`` makes under that policy, where only the classifier (``predictions``, with its
softmax) computes in float32. Inputs stay float32 (the first layer casts them) and so do the
probabilities.

A layer's config carries the dtype policy it was built with, so rebuilding a float32 model under
the global policy alone would change only the layers its blocks create themselves (their
convolutions), leaving every block and the head float32 with casts between them. The config is
therefore rewritten: every float32 policy becomes ``mixed_bfloat16`` except those of the layers
that produce the model's outputs. A config does not say whether a float32 layer was made float32
on purpose (``models.build``'s ``dtype="float32"`` classifier looks like every other layer of a
float32 model), and the output layers are exactly the ones ``models.build`` keeps float32 in an
inference model. Pure Keras 3.
"""

import copy

import keras

POLICY = "mixed_bfloat16"
COMPUTE_DTYPE = "bfloat16"


def _is_float32_policy(dtype):
    if dtype == "float32":
        return True
    return (
        isinstance(dtype, dict)
        and dtype.get("class_name") == "DTypePolicy"
        and dtype.get("config", {}).get("name") == "float32"
    )


def _rewrite(value, policy):
    """``value`` (a piece of a serialized config) with every float32 layer policy in it, nested
    layers' included, replaced by ``policy`` (the serialized policy); input layers keep theirs."""
    if isinstance(value, list):
        return [_rewrite(v, policy) for v in value]
    if not isinstance(value, dict):
        return value
    result = {k: _rewrite(v, policy) for k, v in value.items()}
    layer = result.get("config")
    if (
        isinstance(layer, dict)
        and "class_name" in result
        and result["class_name"] != "InputLayer"
        and _is_float32_policy(layer.get("dtype"))
    ):
        result["config"] = dict(layer, dtype=policy)
    return result


def mixed_config(model, policy=POLICY):
    """The config of ``model`` (Functional or Sequential) with its layers under ``policy`` and
    its output layers float32."""
    config = copy.deepcopy(model.get_config())
    keep = _output_layer_names(config)
    serialized = keras.dtype_policies.serialize(keras.dtype_policies.get(policy))
    config["layers"] = [
        layer if layer["config"].get("name") in keep else _rewrite(layer, serialized)
        for layer in config["layers"]
    ]
    return config


def _output_layer_names(config):
    """Names of the layers whose tensors are the model's outputs (a Functional config's
    ``output_layers`` holds [name, node index, tensor index] triples, nested when there are
    several outputs; a Sequential's output is its last layer)."""
    if "output_layers" not in config:
        return {config["layers"][-1]["config"]["name"]} if config.get("layers") else set()
    names = set()

    def collect(entry):
        if isinstance(entry, (list, tuple)) and len(entry) == 3 and isinstance(entry[0], str):
            names.add(entry[0])
        elif isinstance(entry, (list, tuple, dict)):
            for item in entry.values() if isinstance(entry, dict) else entry:
                collect(item)

    collect(config.get("output_layers", []))
    return names


def to_bfloat16(model, policy=POLICY):
    """``model`` rebuilt under ``policy`` (its output layers float32), with its weights.

    The global dtype policy is set only while the model is rebuilt (the layers its blocks create
    themselves take it), and restored afterwards whatever happens."""
    config = mixed_config(model, policy)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        rebuilt = model.__class__.from_config(config)
    finally:
        keras.config.set_dtype_policy(previous)
    source, target = model.weights, rebuilt.weights
    mismatch = [
        (s.path, t.path)
        for s, t in zip(source, target)
        if tuple(s.shape) != tuple(t.shape) or _layer_path(s, model) != _layer_path(t, rebuilt)
    ]
    if len(source) != len(target) or mismatch:
        raise ValueError(
            f"the {policy} rebuild of {model.name} has other weights than the model "
            f"({len(target)} for {len(source)}; first differences {mismatch[:3]})"
        )
    for s, t in zip(source, target):
        t.assign(s)
    return rebuilt


def _layer_path(variable, model):
    """A variable's path below its model (a Sequential built on an Input puts its own name in
    front of its variables' paths, a rebuilt one does not)."""
    return variable.path.removeprefix(f"{model.name}/")
