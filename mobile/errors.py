"""The error type of the mobile tools: a user-facing problem whose message is one line."""


class ExportError(ValueError):
    """A user-facing export problem; its message is one line."""
