"""Published-format files made from the reference fixtures (``../shared/reference``, its README):
what the weight-reference and keras-hub tests load, written the way each publisher writes them."""

import importlib.util
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = os.path.join(os.path.dirname(ROOT), "shared", "reference")


def refweights():
    """The fixtures' ``refweights.py`` (the released variables' values, the reference images)."""
    spec = importlib.util.spec_from_file_location("refweights", os.path.join(REF, "refweights.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_v2_checkpoint(prefix, keys, rw):
    """What tf.compat.v1.train.Saver writes by default: .index + .data-00000-of-00001."""
    import tensorflow as tf

    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=[k for k, _ in keys],
        shape_and_slices=[""] * len(keys),
        tensors=[tf.constant(rw.slim_value(k, s)) for k, s in keys],
    )


def timm_state(timm_ref, slim_ref, rw):
    """timm's state dict from its keys + key_to_slim + constant_keys, as the reference README says
    (timm's classifier has no background class: slim's column and bias 0 are dropped)."""
    slim_shapes = {k: s for k, s in slim_ref["variables"]}
    state = {}
    for key, shape in timm_ref["state_dict"]:
        slim = timm_ref["key_to_slim"].get(key)
        if slim is None:
            dtype = np.int64 if key.endswith("num_batches_tracked") else np.float32
            state[key] = np.full(shape, timm_ref["constant_keys"][key], dtype)
            continue
        value = rw.slim_value(slim, slim_shapes[slim])
        if slim.endswith("Logits/Logits/weights"):
            value = value[:, 1:]
        elif slim.endswith("Logits/Logits/biases"):
            value = value[1:]
        state[key] = rw.slim_to_torch(value)
        assert list(state[key].shape) == list(shape), key
    return state
