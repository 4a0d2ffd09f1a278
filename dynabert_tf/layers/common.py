"""Small pieces shared by the sliceable layers, including a LayerNorm and a Dropout that cost
less per training step than Keras' own (benchmarks/results/train_step.md)."""

import contextlib
import contextvars

import keras
import tensorflow as tf

ACTIVATIONS = {
    "gelu": lambda x: keras.activations.gelu(x, approximate=False),
    "gelu_approximate": lambda x: keras.activations.gelu(x, approximate=True),
    "relu": keras.activations.relu,
}


_ROWS_OUTER = contextvars.ContextVar("rows_outer_output_projections", default=False)


@contextlib.contextmanager
def rows_outer_output_projections():
    """Within this block `output_projection` traces a batched matmul on a [1, n, hidden]
    kernel, which the TFLite converter keeps as BATCH_MATMUL with its constant [1, n, hidden]
    (width outermost), instead of a 2-D matmul, which becomes FULLY_CONNECTED with its weights
    stored [hidden, n] (width innermost). Same function; only the traced graph differs, so a
    narrow cell's output kernel is the leading rows of the full one's
    (`mobile.export.elastic_file`)."""
    token = _ROWS_OUTER.set(True)
    try:
        yield
    finally:
        _ROWS_OUTER.reset(token)


def output_projection(x, kernel, batch_shape):
    """x [batch * seq, n] @ kernel [n, hidden] -> [batch * seq, hidden].

    `batch_shape`: int32 [2], (batch, seq). Inside `rows_outer_output_projections`, x is
    multiplied as [batch, seq, n] by kernel[None] ([1, n, hidden])."""
    if not _ROWS_OUTER.get():
        return tf.matmul(x, kernel)
    hidden = kernel.shape[-1]
    tokens = tf.reshape(x, tf.concat([batch_shape, [-1]], 0))
    return tf.reshape(tf.matmul(tokens, kernel[None]), (-1, hidden))


def initializer():
    return keras.initializers.TruncatedNormal(stddev=0.02)


def gelu_for_training(x):
    """Exact (erf) GELU, x * Phi(x), whose backward pass keeps x and Phi(x) only.

    Differentiating `tf.nn.gelu` keeps four [tokens, intermediate] tensors per layer for the
    backward pass (0.5 x, erfc(-x / sqrt 2), its argument, the output); this keeps two of
    the same size plus the output, and its gradient is 7 ops instead of ~10.
    """

    @tf.custom_gradient
    def gelu(x):
        cdf = 0.5 * tf.math.erfc(x * -0.7071067811865476)

        def grad(dy):
            pdf = tf.exp(-0.5 * tf.square(x)) * 0.3989422804014327  # 1 / sqrt(2 pi)
            return dy * (cdf + x * pdf)

        return x * cdf, grad

    return gelu(x)


# Training-time replacements with a cheaper backward pass (same function).
TRAINING_ACTIVATIONS = {"gelu": gelu_for_training}


def layer_norm(x, gamma, beta, epsilon):
    """LayerNorm over the last axis with a hand-written gradient.

    Same function as `keras.layers.LayerNormalization`, but its backward pass is 9 ops
    instead of the ~20 that differentiating Keras' moments / rsqrt / broadcasts gives.
    """

    @tf.custom_gradient
    def normalize(x, gamma, beta):
        mean = tf.reduce_mean(x, axis=-1, keepdims=True)
        centred = x - mean
        inv_std = tf.math.rsqrt(tf.reduce_mean(tf.square(centred), axis=-1, keepdims=True)
                                + epsilon)
        x_hat = centred * inv_std

        def grad(dy):
            dx_hat = dy * gamma
            dx = inv_std * (dx_hat - tf.reduce_mean(dx_hat, axis=-1, keepdims=True)
                            - x_hat * tf.reduce_mean(dx_hat * x_hat, axis=-1, keepdims=True))
            batch_axes = list(range(len(dy.shape) - 1))
            return dx, tf.reduce_sum(dy * x_hat, batch_axes), tf.reduce_sum(dy, batch_axes)

        return x_hat * gamma + beta, grad

    return normalize(x, gamma, beta)


@keras.saving.register_keras_serializable(package="dynabert_tf")
class LayerNorm(keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization` (same weights, `gamma` / `beta`) over the last axis;
    with `training=True` it runs `layer_norm`, whose backward pass is cheaper. Inference and
    export run `layer_norm_inference` (the same function as Keras' op to float round-off)."""

    def call(self, inputs, training=None, units=None):
        """inputs [..., units]: `units` (Python int, default all) is the number of leading
        hidden units kept (hidden-size elasticity): statistics over them, gamma[:units] and
        beta[:units]."""
        if isinstance(inputs, keras.KerasTensor):
            return super().call(inputs)
        x = tf.convert_to_tensor(inputs, self.compute_dtype)
        normalize = layer_norm if training else layer_norm_inference
        gamma, beta = self.gamma, self.beta
        if units is not None and units < gamma.shape[0]:
            gamma, beta = gamma[:units], beta[:units]
        return normalize(x, tf.convert_to_tensor(gamma, x.dtype),
                         tf.convert_to_tensor(beta, x.dtype), self.epsilon)


def layer_norm_inference(x, gamma, beta, epsilon):
    """LayerNorm over the last axis, forward only. The variance is a mean of products (TFLite
    MUL), not Keras' SQUARED_DIFFERENCE, which LiteRT has no 16-bit kernel for (int16x8)."""
    mean = tf.reduce_mean(x, axis=-1, keepdims=True)
    centred = x - mean
    variance = tf.reduce_mean(centred * centred, axis=-1, keepdims=True)
    return centred * tf.math.rsqrt(variance + epsilon) * gamma + beta


@keras.saving.register_keras_serializable(package="dynabert_tf")
class Dropout(keras.layers.Dropout):
    """`keras.layers.Dropout` with a cheaper mask: 16 random bits per element instead of a
    float32 uniform (half the Philox work), kept as booleans for the backward pass.

    An element is dropped with probability round(rate * 65536) / 65536 (|error| < 8e-6) and the
    kept ones are scaled so that the expected output equals the input exactly.
    """

    def call(self, inputs, training=False):
        if not training or self.rate == 0 or isinstance(inputs, keras.KerasTensor):
            return super().call(inputs, training=training)
        x = tf.convert_to_tensor(inputs)
        threshold = round(self.rate * 65536)
        if threshold >= 65536:
            return tf.zeros_like(x)
        seed = tf.cast(tf.math.floormod(self.seed_generator.next(), 2**31 - 1), tf.int32)
        shape = tf.shape(x)
        last = shape[-1]
        words = tf.concat([shape[:-1], [(last + 1) // 2]], axis=0)
        bits = tf.random.stateless_uniform(words, seed, minval=None, maxval=None,
                                           dtype=tf.int32)
        bits = tf.reshape(tf.bitcast(bits, tf.uint16), tf.concat([shape[:-1], [-1]], 0))
        keep = bits[..., :last] >= tf.constant(threshold, tf.uint16)  # whole-axis slice if even
        return _apply_mask(x, keep, 65536 / (65536 - threshold))


def _apply_mask(x, keep, scale):
    """x * scale where `keep`, else 0; the backward pass keeps the boolean mask (1 byte per
    element) rather than a float32 one."""

    def masked(values):
        return tf.where(keep, values * tf.constant(scale, values.dtype),
                        tf.zeros([], values.dtype))

    @tf.custom_gradient
    def apply(x):
        return masked(x), masked

    return apply(x)
