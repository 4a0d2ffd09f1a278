"""The flag plumbing every command-line tool shares (`python -m train.run`, `mobile.*`,
`train.attention_maps`): a bad flag or argument is one line and exit status 2, as absl
reports a bad flag, without its usage text. Needs no TensorFlow.

    remaining = cli.parse(flag_values, argv)    # bad or unknown flag: one line, exit 2
    with cli.usage_errors():                    # UsageError: one line, exit 2
        cli.no_arguments(remaining)
        settings = settings_from(flag_values)   # raises cli.UsageError for a bad value
    with errors.one_line_errors(verbose):       # any other failure: one line, exit 1
        ...
"""

import contextlib

from dynabert_tf.core import errors


class UsageError(ValueError):
    """A flag value or argument that cannot work; reported as one line, exit status 2."""


def parse(flag_values, argv):
    """The arguments left after parsing `argv` into `flag_values` (an absl `FlagValues`); a
    bad or unknown flag exits with one line (status 2) instead of absl's usage text."""
    from absl import flags

    try:
        return flag_values(argv)
    except flags.Error as e:
        errors.fail(str(e), code=2)


def no_arguments(argv):
    """UsageError naming the positional arguments of `argv` (argv[0]: the program)."""
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")


@contextlib.contextmanager
def usage_errors():
    """Turns a UsageError of the block into `error: <message>` and exit status 2."""
    try:
        yield
    except UsageError as e:
        errors.fail(str(e), code=2)
