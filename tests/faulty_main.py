"""main.py for tests: faults injected, and TensorFlow's graph rewrites off for speed. The
production flags and train step know nothing of either; ``inception.train.run``'s ``loss_hook``
carries the fault into the step.

    python tests/faulty_main.py <main.py flags> [--inject_nan_at_step=4] [--test_no_grappler]
"""

from absl import flags

from inception_cli import common
from inception_cli import train as train_cli

NAN_AT_STEP = flags.DEFINE_integer(
    "inject_nan_at_step", -1, "Make the loss NaN at this global step (0-based; -1: never)."
)
NO_GRAPPLER = flags.DEFINE_bool(
    "test_no_grappler",
    False,
    "Test speed only: switch off Grappler's graph rewrites (about 15 s "
    "of the first training step of a test-sized run here). Runs compared with each other must "
    "all set it or none.",
)


def nan_at(step):
    """A loss hook that turns the loss into NaN at global step ``step``."""

    def hook(loss, iterations):
        import tensorflow as tf

        return tf.where(tf.equal(iterations, step), tf.constant(float("nan")), loss)

    return hook


def main(argv):
    if NO_GRAPPLER.value:
        import tensorflow as tf

        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    hook = nan_at(NAN_AT_STEP.value) if NAN_AT_STEP.value >= 0 else None
    return train_cli.run(argv, loss_hook=hook)


if __name__ == "__main__":
    common.start(main)
