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


# Fused `layer_norm(x + residual)` in training (one hand-written gradient for the add and the
# normalisation) instead of the add then `layer_norm`; same function. Off until measured
# (benchmarks/train_step.py --fused_layer_norm A/Bs it); read when a training step is traced.
FUSE_RESIDUAL_LAYER_NORM = False


def at_least_float32(x):
    """x as float32 when it is a 16-bit float (mixed precision), else x itself (float32 and
    float64 unchanged: no op is added to their graphs)."""
    if keras.backend.standardize_dtype(x.dtype) in ("float16", "bfloat16"):
        return keras.ops.cast(x, "float32")
    return x


def _normalized(x, gamma, epsilon):
    """(x_hat, inv_std) of float32 x [..., units] over its last axis."""
    mean = tf.reduce_mean(x, axis=-1, keepdims=True)
    centred = x - mean
    inv_std = tf.math.rsqrt(tf.reduce_mean(tf.square(centred), axis=-1, keepdims=True)
                            + epsilon)
    return centred * inv_std, inv_std


def _layer_norm_gradient(dy, x_hat, inv_std, gamma):
    """(dx, dgamma, dbeta) of `x_hat * gamma + beta` for the upstream float32 dy."""
    dx_hat = dy * gamma
    dx = inv_std * (dx_hat - tf.reduce_mean(dx_hat, axis=-1, keepdims=True)
                    - x_hat * tf.reduce_mean(dx_hat * x_hat, axis=-1, keepdims=True))
    batch_axes = list(range(len(dy.shape) - 1))
    return dx, tf.reduce_sum(dy * x_hat, batch_axes), tf.reduce_sum(dy, batch_axes)


def layer_norm(x, gamma, beta, epsilon):
    """LayerNorm over the last axis with a hand-written gradient.

    Same function as `keras.layers.LayerNormalization`, but its backward pass is 9 ops
    instead of the ~20 that differentiating Keras' moments / rsqrt / broadcasts gives.
    Statistics and the backward pass are float32 when x is 16-bit (mixed precision; gamma
    and beta are the float32 variables); the output and dx have x's dtype.
    """

    @tf.custom_gradient
    def normalize(x, gamma, beta):
        x_hat, inv_std = _normalized(at_least_float32(x), gamma, epsilon)

        def grad(dy):
            dx, dgamma, dbeta = _layer_norm_gradient(at_least_float32(dy), x_hat, inv_std,
                                                     gamma)
            return tf.cast(dx, x.dtype), dgamma, dbeta

        return tf.cast(x_hat * gamma + beta, x.dtype), grad

    return normalize(x, gamma, beta)


def fused_residual_layer_norm(x, residual, gamma, beta, epsilon):
    """`layer_norm(residual + x, ...)` with one hand-written gradient for the add and the
    normalisation: the sum is formed in float32 inside the forward and never kept, and the
    same dx is returned to both inputs (each in its own dtype)."""

    @tf.custom_gradient
    def normalize(x, residual, gamma, beta):
        x_hat, inv_std = _normalized(at_least_float32(residual) + at_least_float32(x), gamma,
                                     epsilon)

        def grad(dy):
            dx, dgamma, dbeta = _layer_norm_gradient(at_least_float32(dy), x_hat, inv_std,
                                                     gamma)
            return tf.cast(dx, x.dtype), tf.cast(dx, residual.dtype), dgamma, dbeta

        return tf.cast(x_hat * gamma + beta, x.dtype), grad

    return normalize(x, residual, gamma, beta)


@keras.saving.register_keras_serializable(package="dynabert_tf")
class LayerNorm(keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization` (same weights, `gamma` / `beta`) over the last axis;
    with `training=True` it runs `layer_norm`, whose backward pass is cheaper. Inference and
    export run `layer_norm_inference` (the same function as Keras' op to float round-off)."""

    def call(self, inputs, training=None, units=None, residual=None):
        """inputs [..., units]: `units` (Python int, default all) is the number of leading
        hidden units kept (hidden-size elasticity): statistics over them, gamma[:units] and
        beta[:units]. `residual` (same shape, optional): normalises `residual + inputs`
        (fused in training under FUSE_RESIDUAL_LAYER_NORM). Statistics are float32 (gamma and
        beta stay float32 variables, as Keras' LayerNormalization keeps them under a mixed
        policy); the output has the layer's compute dtype."""
        if isinstance(inputs, keras.KerasTensor):
            return super().call(inputs if residual is None else residual + inputs)
        x = self._tensor(inputs)
        gamma, beta = self.gamma, self.beta
        if units is not None and units < gamma.shape[0]:
            gamma, beta = gamma[:units], beta[:units]
        gamma, beta = tf.convert_to_tensor(gamma), tf.convert_to_tensor(beta)
        if residual is not None and training and FUSE_RESIDUAL_LAYER_NORM:
            out = fused_residual_layer_norm(x, self._tensor(residual), gamma, beta,
                                            self.epsilon)
        else:
            if residual is not None:
                x = self._tensor(residual) + x
            normalize = layer_norm if training else layer_norm_inference
            out = normalize(x, gamma, beta, self.epsilon)
        return out if out.dtype == self.compute_dtype else tf.cast(out, self.compute_dtype)

    def _tensor(self, value):
        """A tensor keeps its dtype (the embeddings' float32 sum is normalised before any
        cast); anything else becomes one of the compute dtype."""
        return value if tf.is_tensor(value) else tf.convert_to_tensor(value, self.compute_dtype)


def residual_layer_norm(layer, x, residual, training, units):
    """`layer` (a LayerNorm) on residual + x, [tokens, units]: in training through its
    `residual` argument (fused under FUSE_RESIDUAL_LAYER_NORM); otherwise the add comes first,
    in the caller's name scope, so inference and exported graphs keep their op names."""
    if training:
        return layer(x, residual=residual, training=training, units=units)
    return layer(residual + x, training=training, units=units)


def layer_norm_inference(x, gamma, beta, epsilon):
    """LayerNorm over the last axis, forward only. The variance is a mean of products (TFLite
    MUL), not Keras' SQUARED_DIFFERENCE, which LiteRT has no 16-bit kernel for (int16x8).
    Computed in float32 when x is 16-bit (gamma, beta float32); the output has x's dtype (no
    cast in a float32 graph, so exported files do not change)."""
    x32 = at_least_float32(x)
    mean = tf.reduce_mean(x32, axis=-1, keepdims=True)
    centred = x32 - mean
    variance = tf.reduce_mean(centred * centred, axis=-1, keepdims=True)
    out = centred * tf.math.rsqrt(variance + epsilon) * gamma + beta
    return out if out.dtype == x.dtype else tf.cast(out, x.dtype)


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
