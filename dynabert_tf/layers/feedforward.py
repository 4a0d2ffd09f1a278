"""Position-wise feed-forward block whose number of neurons is a call argument."""

import keras
import tensorflow as tf

from dynabert_tf.layers import weight_layout
from dynabert_tf.layers.common import (ACTIVATIONS, TRAINING_ACTIVATIONS, Dropout, LayerNorm,
                                      initializer, output_projection, residual_layer_norm)


OUTPUT_PROJECTION = "output_projection"  # name scope of the [neurons -> hidden] projection


@keras.saving.register_keras_serializable(package="dynabert_tf")
class SliceableFeedForward(keras.layers.Layer):
    """Intermediate dense + activation + output dense + residual + LayerNorm (post-LN).

    Weights, neurons first (`width_axes`), so `num_neurons` keeps a leading slice:
      intermediate kernel [intermediate, hidden] (output-major), bias [intermediate]
      output kernel [intermediate, hidden], bias [hidden]
    The hidden axes (`hidden_axes`) are last, so `hidden_units` keeps a leading slice too.
    """

    width_axes = {"intermediate_kernel": 0, "intermediate_bias": 0, "output_kernel": 0}
    hidden_axes = {"intermediate_kernel": (1,), "output_kernel": (1,), "output_bias": (0,),
                   "gamma": (0,), "beta": (0,)}

    def __init__(self, hidden_size, intermediate_size, hidden_act, hidden_dropout,
                 layer_norm_epsilon, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_rate = hidden_dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.activation = ACTIVATIONS[hidden_act]
        self.dropout = Dropout(hidden_dropout)
        self.layer_norm = LayerNorm(epsilon=layer_norm_epsilon, name="layer_norm")

    def build(self, input_shape=None):
        shape = (self.intermediate_size, self.hidden_size)
        self.intermediate_kernel = self.add_weight(shape=shape, initializer=initializer(),
                                                   name="intermediate_kernel")
        self.intermediate_bias = self.add_weight(
            shape=(self.intermediate_size,), initializer="zeros", name="intermediate_bias")
        self.output_kernel = self.add_weight(shape=shape, initializer=initializer(),
                                             name="output_kernel")
        self.output_bias = self.add_weight(shape=(self.hidden_size,), initializer="zeros",
                                           name="output_bias")
        self.layer_norm.build((None, None, self.hidden_size))
        self.built = True

    def call(self, x, num_neurons=None, training=None, hidden_units=None):
        """x: [batch, seq, hidden_units]; keeps the leading `num_neurons` neurons and the
        leading `hidden_units` hidden units (Python ints, default all).

        2-D matmuls over all batch * seq tokens (one matmul per weight gradient)."""
        n = self.intermediate_size if num_neurons is None else num_neurons
        hidden = self.hidden_size if hidden_units is None else hidden_units
        tokens = tf.reshape(x, (-1, hidden))
        activation = (TRAINING_ACTIVATIONS.get(self.hidden_act, self.activation) if training
                      else self.activation)
        h = activation(tf.nn.bias_add(
            tf.matmul(tokens, weight_layout.sliced(self, "intermediate_kernel", n, hidden),
                      transpose_b=True),
            weight_layout.sliced(self, "intermediate_bias", n)))
        # The scope names the op in exported files: full-integer int8 keeps it float
        # (mobile.export.tflite.INT8_FLOAT_NODES).
        with tf.name_scope(OUTPUT_PROJECTION):
            out = tf.nn.bias_add(output_projection(
                h, weight_layout.sliced(self, "output_kernel", n, hidden), tf.shape(x)[:2]),
                self.output_bias if hidden == self.hidden_size
                else weight_layout.sliced(self, "output_bias", None, hidden))
        out = residual_layer_norm(self.layer_norm, self.dropout(out, training=training), tokens,
                                  training, hidden)
        return tf.reshape(out, tf.shape(x))

    def get_config(self):
        return {**super().get_config(), "hidden_size": self.hidden_size,
                "intermediate_size": self.intermediate_size, "hidden_act": self.hidden_act,
                "hidden_dropout": self.hidden_dropout_rate,
                "layer_norm_epsilon": self.layer_norm_epsilon}
