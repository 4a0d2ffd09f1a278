"""Command-line plumbing of the mobile tools (`python -m mobile.export`, `mobile.benchmark`,
`mobile.select`, `mobile.search`): flags, one-line errors (the traceback with --verbose) and
the absl entry point. Only the command-line modules import it; the library never does.

A tool is `main(argv, flag_values)` plus `define_flags(flag_values)`; in a test, or any
other program, it runs without absl's global flags:

    from mobile.export import __main__ as export_cli
    flag_values = cli.define(export_cli.define_flags, flags.FlagValues())
    cli.call(export_cli.main, cli.parse(flag_values, ["mobile.export", "--model_dir=..."]),
             flag_values)
"""

import os

from dynabert_tf.core import cli as core_cli
from dynabert_tf.core import errors


def fail(message):
    """One error line on stderr, exit status 1."""
    errors.fail(message)


def check_arguments(argv, flags_values, *required):
    """One error line for positional arguments, or for a `required` flag left empty."""
    if len(argv) > 1:
        fail(f"unexpected arguments: {' '.join(argv[1:])}")
    for name in required:
        if not getattr(flags_values, name):
            fail(f"--{name} is required")


def define(define_flags, flag_values):
    """`flag_values` with the tool's flags and --verbose defined."""
    from absl import flags

    flags.DEFINE_boolean("verbose", False, "On an error, show the full traceback (default: "
                         "one line naming the problem).", flag_values=flag_values)
    define_flags(flag_values)
    return flag_values


def parse(flag_values, argv):
    """The arguments left after parsing `argv`; a bad or unknown flag exits with one line
    (status 2) instead of absl's usage text (`dynabert_tf.core.cli.parse`)."""
    return core_cli.parse(flag_values, argv)


def call(main_fn, argv, flag_values):
    """`main_fn(argv, flag_values)`; any error ends it with one line (exit status 1), or its
    traceback with --verbose."""
    with errors.one_line_errors(flag_values.verbose):
        main_fn(argv, flag_values)


def run_main(main_fn, define_flags):
    """absl entry point with TensorFlow's C++ and Python INFO logs turned down."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from absl import app, flags
    from absl import logging as absl_logging

    flag_values = define(define_flags, flags.FLAGS)

    def run(argv):
        if not flag_values["verbosity"].present:
            absl_logging.set_verbosity(absl_logging.WARNING)
        call(main_fn, argv, flag_values)

    app.run(run, flags_parser=lambda argv: parse(flag_values, argv))
