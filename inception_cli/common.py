"""What every entry point shares: the ``--verbose`` flag and a quiet start."""

import dataclasses
import os
import sys

from absl import app, flags

from inception import console

VERBOSE = flags.DEFINE_bool("verbose", False, console.VERBOSE_HELP)


def start(main):
    """Runs ``main(argv)`` under absl's ``app.run``, quieting the console first unless --verbose.

    Entry-point modules must not import TensorFlow at module level: the quieting has to happen
    before TensorFlow loads."""

    def quiet_main(argv):
        setup_process(VERBOSE.value)
        return main(argv)

    # --helpshort lists the flags of the script being run: here those of main's module.
    for module in (sys.modules[main.__module__], sys.modules[__name__]):
        for flag in flags.FLAGS.get_key_flags_for_module(module):
            flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    app.run(quiet_main)


def setup_process(verbose):
    """Keras on TensorFlow (the entry points use tf.data and tf.distribute) and a quiet console
    unless ``verbose``; before anything imports TensorFlow."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    console.quiet(verbose)


def check_no_arguments(argv):
    """absl leaves non-flag words in argv: they are mistakes (a flag without its dashes)."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])} (flags start with --)")


def config_from_flags(argv, config_class, **values):
    """A ``config_class`` of the flags named like its fields, plus ``values`` (or callables
    returning them), checked with no TensorFlow loaded; a ValueError becomes app.UsageError
    (absl prints the message and exits 1)."""
    check_no_arguments(argv)
    fields = {
        f.name: flags.FLAGS[f.name].value
        for f in dataclasses.fields(config_class)
        if f.name in flags.FLAGS
    }
    try:
        fields.update({k: v() if callable(v) else v for k, v in values.items()})
        return config_class(**fields)
    except ValueError as err:
        raise app.UsageError(str(err)) from None


def error_line(err):
    """``<command>: error: <err>``, for failures found once the work has started."""
    return f"{os.path.basename(sys.argv[0])}: error: {err}"


def add_verbose_argument(parser):
    """``--verbose`` for the argparse entry points; they call ``setup_process`` after parsing."""
    parser.add_argument("--verbose", action="store_true", help=console.VERBOSE_HELP)


def setup_script():
    """``setup_process`` for scripts that import TensorFlow at module level, before their
    argparse runs: ``--verbose`` is read from the command line directly."""
    setup_process("--verbose" in sys.argv[1:])
