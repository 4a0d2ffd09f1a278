"""AdamW with linear warm-up then linear decay, as BERT and the official DynaBERT code train.

    optimizer = create_optimizer(2e-5, total_steps=num_batches * epochs)
    trainer.compile(optimizer=optimizer)

Weight decay skips LayerNorm weights and biases (the official code's `no_decay` list). Our
variable names: LayerNorm weights are `gamma` / `beta`, biases are `bias` or end with `_bias`
(`query_bias`, `intermediate_bias`, ...); Keras matches `var_names` as regular expressions
searched in each variable's `name`.
"""

import keras

# Substrings of variable names excluded from weight decay (see module docstring).
NO_DECAY_NAMES = ("bias", "gamma", "beta")


@keras.saving.register_keras_serializable(package="dynabert_tf")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr(step) = peak * step / warmup_steps during warm-up, then linear decay to 0 at total_steps.

    `step` is the optimizer's update count before the update (0 for the first update), the
    convention of `transformers.get_linear_schedule_with_warmup`. After `total_steps` it stays 0.
    """

    def __init__(self, peak_learning_rate, total_steps, warmup_steps):
        if peak_learning_rate <= 0:
            raise ValueError(f"peak_learning_rate must be > 0, got {peak_learning_rate!r}")
        if int(total_steps) != total_steps or total_steps < 1:
            raise ValueError(f"total_steps must be a positive integer, got {total_steps!r}")
        if int(warmup_steps) != warmup_steps or not 0 <= warmup_steps <= total_steps:
            raise ValueError(f"warmup_steps must be an integer in [0, total_steps={total_steps}],"
                             f" got {warmup_steps!r}")
        self.peak_learning_rate = float(peak_learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup = step / max(1, self.warmup_steps)
        decay = (self.total_steps - step) / max(1, self.total_steps - self.warmup_steps)
        factor = keras.ops.where(step < self.warmup_steps, warmup, keras.ops.maximum(decay, 0.0))
        return self.peak_learning_rate * factor

    def get_config(self):
        return {"peak_learning_rate": self.peak_learning_rate, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps}


def create_optimizer(learning_rate, total_steps, warmup_proportion=0.1, weight_decay=0.01,
                     global_clipnorm=1.0, epsilon=1e-8):
    """AdamW on a `WarmupLinearDecay` schedule, gradients clipped to global norm `global_clipnorm`.

    Args:
      learning_rate: peak learning rate, reached after `warmup_proportion * total_steps` steps.
      total_steps: number of optimizer updates of the whole run (the lr is 0 from then on).
      warmup_proportion: fraction of `total_steps` spent warming up, in [0, 1).
      weight_decay: decoupled weight decay, not applied to LayerNorm weights and biases.
      global_clipnorm: clip the gradients' global norm to this (None: no clipping).
      epsilon: Adam epsilon (1e-8 as PyTorch/transformers AdamW).
    Returns:
      keras.optimizers.AdamW, not yet built (`exclude_from_weight_decay` must precede build).
    """
    if not 0.0 <= warmup_proportion < 1.0:
        raise ValueError(f"warmup_proportion must be in [0, 1), got {warmup_proportion!r}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    schedule = WarmupLinearDecay(learning_rate, total_steps,
                                 int(warmup_proportion * total_steps))
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=weight_decay,
                                       beta_1=0.9, beta_2=0.999, epsilon=epsilon,
                                       global_clipnorm=global_clipnorm)
    optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY_NAMES))
    return optimizer
