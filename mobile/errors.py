"""The error type of the mobile tools, and reading a JSON object with it.

`ExportError`: a user-facing problem whose message is one line.
"""

from dynabert_tf.core import files


class ExportError(ValueError):
    """A user-facing export problem; its message is one line."""


def read_json_object(path, what):
    """The JSON object in `path`; ExportError naming the file if it is not one."""
    try:
        value = files.read_json(path, what)
    except ValueError as e:
        raise ExportError(str(e)) from None
    if not isinstance(value, dict):
        raise ExportError(f"{path} holds a JSON {type(value).__name__}, not an object")
    return value
