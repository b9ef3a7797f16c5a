"""A lost worker of a multi-worker run: a short message instead of TensorFlow's traceback.

When a worker dies (``kill -9``, a crashed host), TensorFlow's coordination service stops
receiving its heartbeats and, after its timeout (about 10-20 s here), fails the collective ops of
the survivors with ``UnavailableError: ... The following tasks are unhealthy (stopped sending
heartbeats): /job:worker/replica:0/task:1``. ``lost_worker_guard`` turns that into
``errors.WorkerLost``: which worker, the last complete checkpoint and its step, and that
restarting every worker with the same command resumes from it.
"""

import contextlib
import re

import tensorflow as tf

from inception.train import rundir
from inception.train.errors import WorkerLost

# The errors a collective raises when a peer is gone (a timed-out or aborted collective included).
_PEER_ERRORS = (
    tf.errors.UnavailableError,
    tf.errors.AbortedError,
    tf.errors.DeadlineExceededError,
    tf.errors.CancelledError,
)
_TASK = re.compile(r"/job:(\w+)/replica:\d+/task:(\d+)")


def _is_multi_worker(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return False
    return sum(len(tasks) for tasks in resolver.cluster_spec().as_dict().values()) > 1


def lost_worker(error, strategy):
    """The name of the worker ``error`` says stopped answering ('worker 1'), or None."""
    resolver = strategy.cluster_resolver
    own = (resolver.task_type, str(resolver.task_id))
    for job, task in _TASK.findall(str(error)):
        if (job, task) != own:
            return f"{job} {task}"
    return None


@contextlib.contextmanager
def lost_worker_guard(strategy, checkpoint_dir):
    """Inside: a peer's failure under a multi-worker strategy raises ``WorkerLost``."""
    try:
        yield
    except _PEER_ERRORS as err:
        if not _is_multi_worker(strategy):
            raise
        candidates = rundir.checkpoint_candidates(checkpoint_dir)
        path = candidates[0] if candidates else None
        raise WorkerLost(
            lost_worker(err, strategy), path, rundir.checkpoint_step(path), err
        ) from err
