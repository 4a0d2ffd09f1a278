"""Mixed precision: the Keras dtype policy models are built under, and float16 loss scaling.

    with precision.policy("mixed_bfloat16"):      # models built here compute in bfloat16
        model = DynaBertTaskModel.from_preset(path)
    optimizer = precision.for_policy(optimizer, "mixed_float16")   # loss scaling

Under a mixed policy variables stay float32 (Keras' `variable_dtype`) and the layers compute
in `compute_dtype`; LayerNorm statistics, the attention softmax, the heads' logits, every
loss and Taylor importance are float32 (dynabert_tf/layers, tasks, distillation, elastic).
A Keras user sets the same thing globally with `keras.mixed_precision.set_global_policy`.
"""

import contextlib

import keras

from dynabert_tf.core.choices import PRECISIONS


def check(name):
    """`name` if it is one of PRECISIONS, else a one-line ValueError."""
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    return name


@contextlib.contextmanager
def policy(name):
    """Keras' global dtype policy set to `name` (one of PRECISIONS) within the block, the
    previous one restored after it (models keep the policy they were built under)."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(check(name))
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def needs_loss_scaling(name):
    """Whether training under policy `name` needs a loss scale (float16's narrow range)."""
    return check(name) == "mixed_float16"


def for_policy(optimizer, name):
    """`optimizer` wrapped in Keras' dynamic `LossScaleOptimizer` under mixed_float16 (its
    scale and growth counter are variables: a checkpoint of the optimizer holds them), else
    `optimizer` itself."""
    if needs_loss_scaling(name):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
