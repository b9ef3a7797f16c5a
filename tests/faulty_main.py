"""main.py with faults injected, for tests only: the production flags and train step know
nothing of them. ``inception.train.run``'s ``loss_hook`` carries the fault into the step.

    python tests/faulty_main.py <main.py flags> --inject_nan_at_step=4
"""

from absl import flags

from inception_cli import common
from inception_cli import train as train_cli

NAN_AT_STEP = flags.DEFINE_integer(
    "inject_nan_at_step", -1, "Make the loss NaN at this global step (0-based; -1: never).")


def nan_at(step):
    """A loss hook that turns the loss into NaN at global step ``step``."""
    def hook(loss, iterations):
        import tensorflow as tf

        return tf.where(tf.equal(iterations, step), tf.constant(float("nan")), loss)

    return hook


def main(argv):
    hook = nan_at(NAN_AT_STEP.value) if NAN_AT_STEP.value >= 0 else None
    return train_cli.run(argv, loss_hook=hook)


if __name__ == "__main__":
    common.start(main)
