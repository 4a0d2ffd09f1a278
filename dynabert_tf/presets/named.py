"""Named checkpoints: a name that resolves to a real asset's directory instead of a path.

    named.resolve("minilm_l6")        # -> the cached MiniLM-L6 dir (fetched once, `io.assets`)
    named.resolve("runs/rt/final")    # -> "runs/rt/final" (an existing path, as given)

No TensorFlow: `train/preflight.py` and the settings import this module.
"""

import os

from dynabert_tf.io import assets

# name -> zero-argument function returning the checkpoint's directory (fetching it if needed).
NAMED_CHECKPOINTS = {"minilm_l6": assets.minilm_dir}


def is_named(value):
    """True if `value` is the name of a named checkpoint."""
    return isinstance(value, str) and value in NAMED_CHECKPOINTS


def resolve(value):
    """The directory of the named checkpoint `value`, or `value` itself when it is an
    existing path. FileNotFoundError (one line) naming the known names otherwise."""
    if is_named(value):
        return NAMED_CHECKPOINTS[value]()
    if value and os.path.exists(value):
        return value
    raise FileNotFoundError(f"{value} is neither an existing path nor a named checkpoint "
                            f"({', '.join(sorted(NAMED_CHECKPOINTS))})")
