"""Process-level setup for training: devices, the tf.distribute strategy, precision, determinism.

Everything here must run before TensorFlow executes its first op (a multi-worker strategy and
logical devices cannot be configured later): ``setup`` is the first thing ``inception.train.run``
does when it is not given a strategy (``evaluate.py`` uses the pieces directly).
"""

import json
import os

import keras
import tensorflow as tf
from absl import logging

from inception.train.rundir import precision_name


def split_cpu(num_devices):
    """Splits the host CPU into ``num_devices`` logical devices (tests of the mirrored strategy).
    A second run in the same process with the same split leaves the devices as they are (they
    cannot change once TensorFlow has started)."""
    if num_devices <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    if len(tf.config.get_logical_device_configuration(cpu) or ()) == num_devices:
        return
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)]
    )


def _tf_config_tasks():
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except ValueError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON: {err}") from None
    return sum(len(v) for k, v in cluster.items() if k in ("chief", "worker"))


def resolve_strategy_name(name, tpu):
    """'auto' -> the concrete strategy name this machine calls for."""
    if name != "auto":
        return name
    if tpu:
        return "tpu"
    if _tf_config_tasks() > 1:
        return "multi_worker_mirrored"
    if (
        len(tf.config.list_physical_devices("GPU")) > 1
        or len(tf.config.list_logical_devices("CPU")) > 1
    ):
        return "mirrored"
    return "one_device"


def make_strategy(name, tpu=""):
    """Creates the tf.distribute strategy ``name`` (already resolved from 'auto')."""
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker_mirrored":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError(
                "--strategy=multi_worker_mirrored reads the cluster from the TF_CONFIG "
                "environment variable, which is not set; see README 'Training on "
                "several hosts'"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu="" if tpu == "local" else tpu
        )
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"unknown strategy {name!r}")


def is_chief(strategy):
    """True on the worker that writes checkpoints, logs and summaries."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None:
        return True
    cluster = resolver.cluster_spec().as_dict()
    if "chief" in cluster:
        return task_type == "chief"
    return task_type == "worker" and task_id == 0


def worker_name(strategy):
    """This process's name in the cluster ("chief" alone; "worker_1" under multi-worker
    training): tf.distribute's task type and id, called the worker here so that "task" keeps one
    meaning (``task.Task``, the job)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and resolver is not None:
        return f"{resolver.task_type}_{resolver.task_id}"
    return "chief"


def set_precision(mixed_precision):
    """Keras' global dtype policy: mixed_bfloat16 (bfloat16 compute, float32 variables) or
    float32; with bfloat16 on a CPU without native bfloat16 arithmetic, one warning."""
    keras.mixed_precision.set_dtype_policy(precision_name(mixed_precision))
    if (
        mixed_precision
        and not tf.config.list_physical_devices("GPU")
        and bf16_native_cpu() is False
    ):
        print(
            "Warning: this CPU has no native bfloat16 arithmetic (AVX512_BF16 or AMX): "
            "--mixed_precision will likely be slower than float32 here",
            flush=True,
        )


def bf16_native_cpu(cpuinfo="/proc/cpuinfo"):
    """True when the CPU reports AVX512_BF16 or AMX_BF16 (Linux); None when it cannot tell."""
    try:
        with open(cpuinfo) as f:
            text = f.read()
    except OSError:
        return None
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def set_determinism(seed, deterministic):
    """Seeds Python, NumPy, TensorFlow and Keras; with ``deterministic`` also TF op determinism."""
    reseed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
        logging.info("deterministic: op determinism on, seed %d", seed)


def reseed(seed):
    """Seeds Python, NumPy, TensorFlow and Keras again, without touching op determinism.

    Preparing a TFDS dataset draws from Python's global ``random`` (its temporary folder names)
    and Keras draws the seeds of unseeded initializers from there: ``run`` calls this after the
    dataset is described, so the first run on a fresh --data_dir builds the same weights as a
    later run on the prepared one."""
    keras.utils.set_random_seed(seed)


def setup(config):
    """Devices, strategy, precision and seeds of ``config`` (a ``config.TrainConfig``): call
    before anything else touches TensorFlow. Returns the strategy."""
    c = config.run
    split_cpu(c.num_cpu_devices)
    name = resolve_strategy_name(c.strategy, c.tpu)
    strategy = make_strategy(name, c.tpu)
    set_precision(c.mixed_precision)
    set_determinism(c.seed, c.deterministic)
    logging.info("strategy %s with %d replica(s)", name, strategy.num_replicas_in_sync)
    return strategy
