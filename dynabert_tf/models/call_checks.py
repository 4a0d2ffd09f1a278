"""The checks of a model call, each failure one line naming the real problem.

    check_cell_arguments(kwargs, bert_config)  # width_mult / depth_mult / hidden_mult /
                                               # subnetwork, before Keras' __call__
    check_inputs(inputs, bert_config)          # the inputs dict and its sequence length

A multiplier is a number (a Python or NumPy scalar, made a Python float here); a tensor or
variable is refused for its type, since width and depth are fixed when the graph is built.
The inputs need `token_ids`, `segment_ids` and `padding_mask`; a sequence longer than the
model's positions is refused where its length is static (known without running the graph).
"""

from collections.abc import Mapping

from dynabert_tf.core import grid as grid_lib
from dynabert_tf.elastic import layerwise

INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")
CELL_ARGUMENTS = ("width_mult", "depth_mult", "hidden_mult")


class CallError(ValueError):
    """A call the model cannot run, named in one line.

    Keras rewrites an error raised inside `call()` into a report of the call's arguments
    (with terminal escapes); it leaves alone an error that carries the mark it sets on the
    errors it has reported, so this one reaches the caller as it was raised.
    """

    _keras_call_info_injected = True


def check_cell_arguments(kwargs, bert_config=None):
    """Checks the multipliers in a call's `kwargs` and makes each a Python float (in place);
    a `subnetwork` given with any multiplier, or one that does not fit `bert_config`, is
    refused. Raised before Keras' `__call__` would wrap the error in its call report."""
    for name in CELL_ARGUMENTS:
        value = grid_lib.check_multiplier(name, kwargs.get(name, 1.0))
        if name in kwargs:
            kwargs[name] = value
    if kwargs.get("subnetwork") is None:
        return
    given = [name for name in CELL_ARGUMENTS if kwargs.get(name, 1.0) != 1.0]
    if given:
        raise ValueError(f"give either subnetwork or width_mult/depth_mult/hidden_mult, not both "
                         f"(got subnetwork and {' and '.join(given)})")
    if bert_config is not None:
        layerwise.check(kwargs["subnetwork"], bert_config)


def check_inputs(inputs, bert_config):
    """CallError unless `inputs` is a dict holding `INPUT_NAMES` whose sequence length, where
    static, fits the model's position embeddings."""
    if not isinstance(inputs, Mapping):
        raise CallError(f"inputs must be a dict of token_ids, segment_ids and padding_mask "
                        f"(int [batch, seq]), got a {type(inputs).__name__}")
    missing = [name for name in INPUT_NAMES if name not in inputs]
    if missing:
        raise CallError(f"inputs need token_ids, segment_ids and padding_mask; missing "
                        f"{' and '.join(missing)}")
    length = static_length(inputs["token_ids"])
    positions = bert_config.max_position_embeddings - bert_config.position_offset
    if length is not None and length > positions:
        limit = (f"max_position_embeddings ({positions})" if not bert_config.position_offset
                 else f"{positions} positions (max_position_embeddings "
                      f"{bert_config.max_position_embeddings}, offset "
                      f"{bert_config.position_offset})")
        raise CallError(f"sequence length {length} exceeds the model's {limit}")


def static_length(values):
    """The last dimension of `values`' static shape, or None where it is not known."""
    shape = getattr(values, "shape", None)
    if shape is None or len(shape) < 2 or shape[-1] is None:
        return None
    return int(shape[-1])
