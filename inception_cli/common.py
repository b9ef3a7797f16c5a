"""What every entry point shares: the ``--verbose`` flag and a quiet start."""

from absl import app, flags

from inception import console

VERBOSE = flags.DEFINE_bool(
    "verbose", False,
    "Also show TensorFlow's C++ logs, absl INFO lines and deprecation notices (hidden by default).")


def start(main):
    """Runs ``main(argv)`` under absl's ``app.run``, quieting the console first unless --verbose.

    Entry-point modules must not import TensorFlow at module level: the quieting has to happen
    before TensorFlow loads."""
    def quiet_main(argv):
        console.quiet(VERBOSE.value)
        return main(argv)

    app.run(quiet_main)
