"""One post-LN transformer layer of sliceable attention and feed-forward."""

import keras

from dynabert_tf.layers.attention import SliceableSelfAttention
from dynabert_tf.layers.feedforward import SliceableFeedForward


@keras.saving.register_keras_serializable(package="dynabert_tf")
class TransformerLayer(keras.layers.Layer):
    """One post-LN BERT layer: sliceable attention then sliceable feed-forward."""

    def __init__(self, hidden_size, num_heads, intermediate_size, hidden_act, hidden_dropout,
                 attention_dropout, layer_norm_epsilon, head_dim=None, **kwargs):
        super().__init__(**kwargs)
        self._config = dict(hidden_size=hidden_size, num_heads=num_heads,
                            intermediate_size=intermediate_size, hidden_act=hidden_act,
                            hidden_dropout=hidden_dropout, attention_dropout=attention_dropout,
                            layer_norm_epsilon=layer_norm_epsilon, head_dim=head_dim)
        self.attention = SliceableSelfAttention(
            hidden_size, num_heads, attention_dropout, hidden_dropout, layer_norm_epsilon,
            head_dim=head_dim, name="attention")
        self.feedforward = SliceableFeedForward(
            hidden_size, intermediate_size, hidden_act, hidden_dropout, layer_norm_epsilon,
            name="feedforward")

    def build(self, input_shape=None):
        self.attention.build(input_shape)
        self.feedforward.build(input_shape)
        self.built = True

    def call(self, x, attention_bias, num_heads=None, num_neurons=None, head_mask=None,
             training=None, return_qkv=False, hidden_units=None):
        """x: [batch, seq, hidden] -> ([batch, seq, hidden], probs [batch, heads, seq, seq]),
        plus the attention's {"query", "key", "value"} with return_qkv (see the attention);
        hidden = `hidden_units` (Python int, the leading units kept; default all)."""
        x, probs, *qkv = self.attention(x, attention_bias, num_heads=num_heads,
                                        head_mask=head_mask, training=training,
                                        return_qkv=return_qkv, hidden_units=hidden_units)
        return (self.feedforward(x, num_neurons=num_neurons, training=training,
                                 hidden_units=hidden_units), probs, *qkv)

    def get_config(self):
        return {**super().get_config(), **self._config}
