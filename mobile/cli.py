"""Command-line plumbing of the mobile tools (`python -m mobile.export`, `mobile.benchmark`,
`mobile.select`): one-line user errors, progress bars and the absl entry point."""

import os
import sys

from mobile.errors import ExportError


def fail(message):
    """One error line on stderr, exit status 1."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def is_user_error(error):
    """Errors that deserve one line, not a traceback (CheckpointError without importing TF)."""
    return (isinstance(error, (ExportError, FileNotFoundError))
            or type(error).__name__ == "CheckpointError")


def progress(items, enabled, desc="export"):
    """`items`, wrapped in a tqdm bar on stderr when `enabled` and tqdm is installed."""
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, unit="cell", file=sys.stderr)


def run_main(main_fn, define_flags):
    """absl entry point with TensorFlow's C++ and Python INFO logs turned down."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from absl import app
    from absl import logging as absl_logging

    flags_values = define_flags()

    def run(argv):
        if not flags_values["verbosity"].present:
            absl_logging.set_verbosity(absl_logging.WARNING)
        main_fn(argv, flags_values)

    app.run(run)
