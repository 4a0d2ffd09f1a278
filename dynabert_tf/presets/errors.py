"""The error of a checkpoint that does not fit the model."""


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model: names and shapes in the message."""
