r"""Trains a DynaBERT: python -m train.run --flagfile=configs/rt_polarity.flags --workdir=DIR

Stages (default all, in this order): teacher, rewire, width, width_depth, finetune, evaluate.
A complete stage is skipped and an interrupted one resumes, so re-running the same command
after a kill continues where it stopped. The flags are made from `train.settings` (its
concerns' fields: the one place each setting's default, help and check live), the stages
to run from `train.pipeline`'s table; `train.preflight` checks the checkpoint, vocabulary,
data and workdir (found by `train.sources`) and `train.workdir` claims the workdir, all
before TensorFlow is imported. An error ends the run with one line (its traceback with
--verbose).
"""

import dataclasses
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

from dynabert_tf.core import cli, errors  # noqa: E402
from train import preflight, workdir  # noqa: E402
from train import settings as settings_lib  # noqa: E402
from train.settings import Settings  # noqa: E402

FLAGS = flags.FLAGS


def _define_flags():
    """One absl flag per Settings field, typed by its default (defined here, so that
    --help lists them as this program's flags)."""
    for field in dataclasses.fields(Settings):
        name, meta = settings_lib.flag_name(field), field.metadata
        default = field.default
        if meta["choices"]:
            flags.DEFINE_enum(name, default, meta["choices"], meta["help"])
        elif isinstance(default, bool):
            flags.DEFINE_bool(name, default, meta["help"])
        elif isinstance(default, int):
            flags.DEFINE_integer(name, default, meta["help"])
        elif isinstance(default, float):
            flags.DEFINE_float(name, default, meta["help"])
        elif isinstance(default, tuple):
            flags.DEFINE_list(name, [str(v) for v in default], meta["help"])
        else:
            flags.DEFINE_string(name, default, meta["help"])


_define_flags()


def settings_from_flags():
    """Settings from the parsed flags; `cli.UsageError` with one line if a value cannot
    work."""
    values = {}
    for field in dataclasses.fields(Settings):
        name, item = settings_lib.flag_name(field), field.metadata["item"]
        value = FLAGS[name].value
        if item is not None:
            try:
                value = tuple(item(v) for v in value)
            except ValueError:
                raise cli.UsageError(f"--{name} must be a list of {item.__name__}, got "
                                     f"{','.join(value)}") from None
        values[field.name] = value
    try:
        return Settings(**values)
    except ValueError as e:
        raise cli.UsageError(str(e)) from None


def parse_flags(argv):
    """The flags of `argv` (all others back to their defaults); a bad or unknown flag exits
    with one line (status 2) instead of absl's usage text."""
    FLAGS.unparse_flags()
    return cli.parse(FLAGS, argv)


def main(argv):
    """Checks every flag and input (no TensorFlow yet), claims the workdir, runs the stages.
    Any error ends the run with one line, its traceback only with --verbose."""
    with cli.usage_errors():
        cli.no_arguments(argv)
        settings = settings_from_flags()
    with errors.one_line_errors(settings.verbose):
        inputs = preflight.check(settings)
        with workdir.claim(settings, inputs):
            _run(settings)


def _run(settings):
    logging.set_verbosity(logging.WARNING)  # TensorFlow's checkpoint chatter
    import keras

    from train import task_data
    from train.runtime import Runtime
    from train.stages import run_stages

    runtime = Runtime.create(settings.distribution)  # before any other TensorFlow op
    keras.utils.set_random_seed(settings.seed)
    data = task_data.load(settings)
    run_stages(settings, data, settings.pipeline, runtime)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
