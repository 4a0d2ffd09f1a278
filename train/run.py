r"""Trains a DynaBERT: python -m train.run --flagfile=configs/rt_polarity.flags --workdir=DIR

Stages (default all, in this order): teacher, rewire, width, width_depth, finetune, evaluate.
A complete stage is skipped and an interrupted one resumes, so re-running the same command
after a kill continues where it stopped. The flags are made from `train.settings.Settings`,
the one place each setting's default, help and check live.
"""

import dataclasses
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

from train.settings import STAGES, Settings  # noqa: E402

FLAGS = flags.FLAGS


def _define_flags():
    """One absl flag per Settings field, typed by its default."""
    for field in dataclasses.fields(Settings):
        name, meta = Settings.flag_name(field), field.metadata
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


class BadInput(Exception):
    """A flag value that cannot work; reported as one line, without the flag help."""


def settings_from_flags():
    """Settings from the parsed flags; BadInput with one line if a value cannot work."""
    values = {}
    for field in dataclasses.fields(Settings):
        name, item = Settings.flag_name(field), field.metadata["item"]
        value = FLAGS[name].value
        if item is not None:
            try:
                value = tuple(item(v) for v in value)
            except ValueError:
                raise BadInput(f"--{name} must be a list of {item.__name__}, got "
                               f"{','.join(value)}") from None
        values[field.name] = value
    try:
        return Settings(**values)
    except ValueError as e:
        raise BadInput(str(e)) from None


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        settings = settings_from_flags()
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    logging.set_verbosity(logging.WARNING)  # TensorFlow's checkpoint chatter
    import keras

    from train import task_data
    from train.stages import run_stages

    keras.utils.set_random_seed(settings.seed)
    try:
        data = task_data.load(settings)
        run_stages(settings, data, [s for s in STAGES if s in settings.stages])
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        # Bad input: one clear line, no traceback; finished stages stay on disk.
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
