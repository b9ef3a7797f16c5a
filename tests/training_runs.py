"""Helpers of the training tests: main.py in subprocesses and what a run directory holds."""

import contextlib
import os
import socket
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(REPO, "main.py")
# main.py plus injected faults and --test_no_grappler (test speed only).
FAULTY_MAIN = os.path.join(REPO, "tests", "faulty_main.py")

# The tests of the training loop take the paper's design with one block per stage (--repeats):
# tracing the train step costs about in proportion to depth, and a trained run takes 11 s here
# instead of 31 s with the 5, 10, 5 blocks of Inception-ResNet-v1. tests/test_models.py and
# tests/test_networks.py check the full networks.
SHALLOW = (1, 1, 1)
SHALLOW_FLAG = "--repeats=" + ",".join(map(str, SHALLOW))

# A small but real network: Inception-ResNet-v1 at a tenth of the width, one block per stage, no
# auxiliary head.
SMALL = [
    "--dataset=sklearn_digits",
    "--model=inception_resnet_v1",
    "--width_multiplier=0.1",
    SHALLOW_FLAG,
    "--image_size=75",
    "--noaux_logits",
    "--bn_momentum=0.9",
    "--ema_decay=0.9",
    "--progress=false",
    "--learning_rate=0.02",
]

# The same network as a Python config's fields (``small_config``).
SMALL_FIELDS = dict(
    dataset="sklearn_digits",
    model="inception_resnet_v1",
    width_multiplier=0.1,
    repeats=SHALLOW,
    image_size=75,
    aux_logits=False,
    bn_momentum=0.9,
    ema_decay=0.9,
    progress=False,
)


def small_config(data_dir, model_dir, **fields):
    """A ``TrainConfig`` of the small network on the embedded digits; ``fields`` (flat names)
    add to or override ``SMALL_FIELDS``."""
    from inception.train.config import TrainConfig

    return TrainConfig.from_flat(
        dict(SMALL_FIELDS, data_dir=data_dir, model_dir=model_dir, **fields)
    )


def env(extra=None):
    result = dict(
        os.environ,
        TF_CPP_MIN_LOG_LEVEL="2",
        KERAS_BACKEND="tensorflow",
        PYTHONPATH=REPO,
        CUDA_VISIBLE_DEVICES="",
    )
    result.pop("TF_CONFIG", None)
    result.update(extra or {})
    return result


def start(args, log_path, extra_env=None, program=FAULTY_MAIN):
    log = open(log_path, "w")
    return subprocess.Popen(
        [sys.executable, program] + list(args),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env(extra_env),
        cwd=REPO,
    )


def finish(proc, log_path, timeout=400):
    rc = proc.wait(timeout=timeout)
    with open(log_path) as f:
        return rc, f.read()


def run(args, log_path, extra_env=None, timeout=400, program=FAULTY_MAIN):
    return finish(start(args, log_path, extra_env, program), log_path, timeout)


def fingerprints(text):
    return [
        line.rsplit(":", 1)[1].strip()
        for line in text.splitlines()
        if "] final weights fingerprint:" in line
    ]


def checkpoint_steps(model_dir):
    import tensorflow as tf

    state = tf.train.get_checkpoint_state(os.path.join(str(model_dir), "checkpoints"))
    if state is None:
        return []
    return [int(p.rsplit("-", 1)[1]) for p in state.all_model_checkpoint_paths]


def model_weights(model_dir, step=None):
    """Model weights and BN statistics of a checkpoint (the newest by default), by key."""
    import tensorflow as tf

    directory = os.path.join(str(model_dir), "checkpoints")
    path = tf.train.latest_checkpoint(directory) if step is None else f"{directory}/ckpt-{step}"
    reader = tf.train.load_checkpoint(path)
    # Trainable weights are reached first through the optimizer, BN statistics through the model.
    keys = [
        k
        for k in reader.get_variable_to_shape_map()
        if k.endswith("VARIABLE_VALUE")
        and k.startswith(("model/", "optimizer/_trainable_variables/"))
        and "seed_generator" not in k
    ]
    return {k: reader.get_tensor(k) for k in keys}


@contextlib.contextmanager
def no_grappler():
    """Inside: Grappler's graph rewrites off in this process (test speed only: functions first
    called inside skip ~5-15 s of optimisation; what a test compares runs inside alike)."""
    import tensorflow as tf

    before = tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": before})


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports
