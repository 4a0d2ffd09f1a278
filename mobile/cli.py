"""Command-line plumbing of the mobile tools (`python -m mobile.export`, `mobile.benchmark`,
`mobile.select`, `mobile.search`): flags, one-line errors (the traceback with --verbose) and
the absl entry point. Only the command-line modules import it; the library never does.

A tool is `main(argv, flag_values)` plus `define_flags(flag_values)`; in a test, or any
other program, it runs without absl's global flags:

    from mobile.export import __main__ as export_cli
    flag_values = cli.define(export_cli.define_flags, flags.FlagValues())
    cli.call(export_cli.main, cli.parse(flag_values, ["mobile.export", "--model_dir=..."]),
             flag_values)

Exit status 2 for a flag or argument that cannot work (`UsageError`, as `train.run`), 1 for
any other failure. A tool checks its flags, then the inputs it can read without TensorFlow
(a manifest, a model dir's config.json and eval grid), before anything imports TensorFlow:
an error is the `error:` line alone, without TensorFlow's start-up logging.
"""

import os

from dynabert_tf.core import cli as core_cli
from dynabert_tf.core import errors


UsageError = core_cli.UsageError  # a flag value that cannot work: one line, exit status 2


def fail(message):
    """One error line on stderr, exit status 1."""
    errors.fail(message)


def check_arguments(argv, flags_values, *required):
    """UsageError for positional arguments, or for a `required` flag left empty."""
    core_cli.no_arguments(argv)
    for name in required:
        if not getattr(flags_values, name):
            raise UsageError(f"--{name} is required")


def check_at_least(flags_values, **least):
    """UsageError naming the first flag `name` whose value is below `least[name]` (a number
    flag left unset, None, passes)."""
    for name, bound in least.items():
        value = getattr(flags_values, name)
        if value is not None and not value >= bound:  # NaN is not >= anything
            raise UsageError(f"--{name} must be at least {bound}, got {value}")


def check_threads(values, flag="threads"):
    """The thread counts of `values` (texts or ints), ascending, once each; UsageError unless
    each is an integer in 1..os.cpu_count(): more threads than the machine has CPUs time the
    wait for a core, not the model."""
    try:
        counts = [int(str(value).strip()) for value in values]
    except ValueError:
        raise UsageError(f"--{flag} must be comma-separated integers, got "
                         f"{','.join(map(str, values))}") from None
    if not counts or min(counts) < 1:
        raise UsageError(f"--{flag} needs positive integers, got "
                         f"{','.join(map(str, values)) or 'none'}")
    cpus = os.cpu_count() or 1
    if max(counts) > cpus:
        raise UsageError(f"--{flag}={max(counts)} is more than this machine's {cpus} "
                         f"CPU{'s' if cpus > 1 else ''}; "
                         f"choose 1..{cpus} (more threads than CPUs time the wait for a core, "
                         f"not the model)")
    return sorted(set(counts))


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
    """`main_fn(argv, flag_values)`; a UsageError ends it with one line and exit status 2, any
    other error with one line and exit status 1 (its traceback with --verbose)."""
    with errors.one_line_errors(flag_values.verbose), core_cli.usage_errors():
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
