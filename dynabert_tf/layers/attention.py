"""Multi-head self-attention whose number of heads is a call argument."""

import keras
import tensorflow as tf
from keras import ops

from dynabert_tf.layers import weight_layout
from dynabert_tf.layers.common import (Dropout, LayerNorm, at_least_float32, initializer,
                                      output_projection, residual_layer_norm)


# A padded key's score becomes its row's smallest score minus this margin: its softmax weight
# is below e^-20 (2e-9), so outputs match an exact mask to float round-off, while the scores
# keep a range of their own plus 20. An additive -10000 bias stretches that range to 10^4,
# which full-integer TFLite quantizes in 256 steps of ~40: every real score became the same
# integer (README, "Quantization").
MASK_MARGIN = 20.0


def mask_scores(scores, attention_bias):
    """Attention scores [batch, heads, seq, seq] with the padded keys (attention_bias < 0,
    [batch, 1, 1, seq]) set MASK_MARGIN below the smallest score of their row.

    Give float32 scores: in bfloat16 (8 significant bits) `min - 20` rounds to a multiple of
    |min| / 128, so a row whose smallest score is beyond ~2,500 in magnitude could see the
    margin shrink or vanish; `attention_probs` therefore masks and normalises in float32."""
    floor = tf.stop_gradient(tf.reduce_min(scores, axis=-1, keepdims=True)) - MASK_MARGIN
    return tf.where(attention_bias < 0.0, floor, scores)


def attention_probs(scores, attention_bias):
    """softmax(mask_scores(scores)) over the keys, in float32 whatever the scores' dtype
    (mixed precision: the mask margin and the normalising sum keep float32's precision);
    returned in the scores' dtype. No op is added to a float32 graph."""
    probs = ops.softmax(mask_scores(at_least_float32(scores), attention_bias), axis=-1)
    return probs if probs.dtype == scores.dtype else tf.cast(probs, scores.dtype)


@keras.saving.register_keras_serializable(package="dynabert_tf")
class SliceableSelfAttention(keras.layers.Layer):
    """Multi-head self-attention + output projection + residual + LayerNorm (post-LN).

    Weights, heads first (`width_axes`), so `num_heads` keeps a leading slice:
      query/key/value kernel [heads, head_dim, hidden] (output-major), bias [heads, head_dim]
      output kernel [heads, head_dim, hidden], bias [hidden]
    The hidden axes (`hidden_axes`) are last, so `hidden_units` keeps a leading slice too.
    """

    width_axes = {"query_kernel": 0, "query_bias": 0, "key_kernel": 0, "key_bias": 0,
                  "value_kernel": 0, "value_bias": 0, "output_kernel": 0}
    hidden_axes = {"query_kernel": (2,), "key_kernel": (2,), "value_kernel": (2,),
                   "output_kernel": (2,), "output_bias": (0,), "gamma": (0,), "beta": (0,)}

    def __init__(self, hidden_size, num_heads, attention_dropout, hidden_dropout,
                 layer_norm_epsilon, head_dim=None, **kwargs):
        """`head_dim`: width of one head; None means hidden_size // num_heads."""
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.head_dim_override = head_dim
        self.head_dim = hidden_size // num_heads if head_dim is None else head_dim
        self.attention_dropout_rate = attention_dropout
        self.hidden_dropout_rate = hidden_dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.attention_dropout = Dropout(attention_dropout)
        self.output_dropout = Dropout(hidden_dropout)
        self.layer_norm = LayerNorm(epsilon=layer_norm_epsilon, name="layer_norm")

    def build(self, input_shape=None):
        kernel_shape = (self.num_heads, self.head_dim, self.hidden_size)
        for name in ("query", "key", "value"):
            setattr(self, f"{name}_kernel", self.add_weight(
                shape=kernel_shape, initializer=initializer(), name=f"{name}_kernel"))
            setattr(self, f"{name}_bias", self.add_weight(
                shape=kernel_shape[:2], initializer="zeros", name=f"{name}_bias"))
        self.output_kernel = self.add_weight(shape=kernel_shape, initializer=initializer(),
                                             name="output_kernel")
        self.output_bias = self.add_weight(shape=(self.hidden_size,), initializer="zeros",
                                           name="output_bias")
        self.layer_norm.build((None, None, self.hidden_size))
        self.built = True

    def _project(self, tokens, name, num_heads, batch_shape, hidden):
        """tokens [batch * seq, hidden] -> [batch, num_heads, seq, head_dim] (query/key/value)."""
        kernel = weight_layout.sliced(self, f"{name}_kernel", num_heads, hidden)
        bias = weight_layout.sliced(self, f"{name}_bias", num_heads)
        width = num_heads * self.head_dim
        out = tf.nn.bias_add(tf.matmul(tokens, tf.reshape(kernel, (width, hidden)),
                                       transpose_b=True), tf.reshape(bias, (width,)))
        out = tf.reshape(out, tf.concat([batch_shape, [num_heads, self.head_dim]], 0))
        return tf.transpose(out, (0, 2, 1, 3))

    def call(self, x, attention_bias, num_heads=None, head_mask=None, training=None,
             return_qkv=False, hidden_units=None):
        """Attends with the leading `num_heads` heads.

        The projections are 2-D matmuls over all batch * seq tokens: their weight gradients
        are one matmul each, not one per example summed afterwards (what `einsum` on a
        [batch, seq, hidden] input costs in TensorFlow).

        Args:
          x: [batch, seq, hidden_units].
          attention_bias: [batch, 1, 1, seq], 0 for tokens, a large negative for padding.
          num_heads: Python int, heads kept (default all).
          head_mask: optional [num_heads] multiplier of each head's context (importance).
          return_qkv: Python bool; also return the projections the layer computed anyway
            (for relation distillation; off, nothing is added to the graph).
          hidden_units: Python int, leading hidden units kept (default all): the kernels'
            hidden axes, the output bias and the LayerNorm are cut to them.
        Returns:
          ([batch, seq, hidden_units], attention probabilities [batch, num_heads, seq, seq]), and
          with return_qkv a third item {"query", "key", "value"}: each [batch, num_heads,
          seq, head_dim], biases added, the query not yet scaled.
        """
        n = self.num_heads if num_heads is None else num_heads
        hidden = self.hidden_size if hidden_units is None else hidden_units
        batch_shape = tf.shape(x)[:2]
        tokens = tf.reshape(x, (-1, hidden))
        query, key, value = (self._project(tokens, name, n, batch_shape, hidden)
                             for name in ("query", "key", "value"))
        scores = tf.matmul(query * (self.head_dim ** -0.5), key, transpose_b=True)
        probs = attention_probs(scores, attention_bias)
        context = tf.matmul(self.attention_dropout(probs, training=training), value)
        if head_mask is not None:
            context = context * ops.cast(ops.reshape(head_mask[:n], (1, n, 1, 1)),
                                         context.dtype)
        context = tf.reshape(tf.transpose(context, (0, 2, 1, 3)), (-1, n * self.head_dim))
        kernel = weight_layout.sliced(self, "output_kernel", n, hidden)
        out = tf.nn.bias_add(output_projection(
            context, tf.reshape(kernel, (n * self.head_dim, hidden)), batch_shape),
            self.output_bias if hidden == self.hidden_size
            else weight_layout.sliced(self, "output_bias", None, hidden))
        out = residual_layer_norm(self.layer_norm, self.output_dropout(out, training=training),
                                  tokens, training, hidden)
        if return_qkv:
            return tf.reshape(out, tf.shape(x)), probs, {"query": query, "key": key,
                                                         "value": value}
        return tf.reshape(out, tf.shape(x)), probs

    def get_config(self):
        return {**super().get_config(), "hidden_size": self.hidden_size,
                "num_heads": self.num_heads, "attention_dropout": self.attention_dropout_rate,
                "hidden_dropout": self.hidden_dropout_rate,
                "layer_norm_epsilon": self.layer_norm_epsilon, "head_dim": self.head_dim_override}
