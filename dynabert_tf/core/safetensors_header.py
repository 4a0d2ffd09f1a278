"""A safetensors file checked by its header alone (names, dtypes, shapes; no tensor read):
what preflight checks in a second and what the loader reports when a file is torn."""

import os

from dynabert_tf.core import layout


def check(path):
    """The tensor names of the safetensors file at `path`. FileNotFoundError if it is
    missing, ValueError (one line) if its header does not read."""
    import safetensors

    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {layout.WEIGHTS} at {path}")
    try:
        with safetensors.safe_open(path, "numpy") as f:
            return list(f.keys())
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
        raise ValueError(unreadable(path, e)) from None


def unreadable(path, error):
    """The one-line message for a safetensors file that does not read."""
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"{path} is not a readable safetensors file: {first}"
