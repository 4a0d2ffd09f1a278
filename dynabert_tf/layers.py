"""Transformer layers whose width is a call argument.

Width is applied by slicing the weights (a smaller matmul, a real speed-up), never by masking:
`num_heads` keeps the leading attention heads, `num_neurons` the leading FFN neurons. After
network rewiring (`rewiring.py`) the leading ones are the most important.

Weight layouts (einsum, as keras-hub's attention):
  query/key/value kernel [hidden, heads, head_dim], bias [heads, head_dim]
  attention output kernel [heads, head_dim, hidden], bias [hidden]
  intermediate kernel [hidden, intermediate], bias [intermediate]
  output kernel [intermediate, hidden], bias [hidden]
"""

import keras
from keras import ops

_ACTIVATIONS = {
    "gelu": lambda x: keras.activations.gelu(x, approximate=False),
    "gelu_approximate": lambda x: keras.activations.gelu(x, approximate=True),
    "relu": keras.activations.relu,
}


def _initializer():
    return keras.initializers.TruncatedNormal(stddev=0.02)


@keras.saving.register_keras_serializable(package="dynabert_tf")
class BertEmbeddings(keras.layers.Layer):
    """Token + position + segment embeddings, LayerNorm, dropout."""

    def __init__(self, vocab_size, hidden_size, max_position_embeddings, type_vocab_size,
                 dropout, layer_norm_epsilon, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.dropout_rate = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.layer_norm = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon,
                                                          name="layer_norm")
        self.dropout = keras.layers.Dropout(dropout)

    def build(self, input_shape=None):
        self.token_embeddings = self.add_weight(
            shape=(self.vocab_size, self.hidden_size), initializer=_initializer(),
            name="token_embeddings")
        self.position_embeddings = self.add_weight(
            shape=(self.max_position_embeddings, self.hidden_size), initializer=_initializer(),
            name="position_embeddings")
        self.segment_embeddings = self.add_weight(
            shape=(self.type_vocab_size, self.hidden_size), initializer=_initializer(),
            name="segment_embeddings")
        self.layer_norm.build((None, None, self.hidden_size))
        self.built = True

    def call(self, token_ids, segment_ids, training=None):
        """token_ids, segment_ids: int [batch, seq] -> [batch, seq, hidden]."""
        seq_len = ops.shape(token_ids)[1]
        x = (ops.take(self.token_embeddings, token_ids, axis=0)
             + ops.take(self.segment_embeddings, segment_ids, axis=0)
             + ops.expand_dims(self.position_embeddings[:seq_len], 0))
        return self.dropout(self.layer_norm(x), training=training)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size,
                "hidden_size": self.hidden_size,
                "max_position_embeddings": self.max_position_embeddings,
                "type_vocab_size": self.type_vocab_size, "dropout": self.dropout_rate,
                "layer_norm_epsilon": self.layer_norm_epsilon}


@keras.saving.register_keras_serializable(package="dynabert_tf")
class SliceableSelfAttention(keras.layers.Layer):
    """Multi-head self-attention + output projection + residual + LayerNorm (post-LN)."""

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
        self.attention_dropout = keras.layers.Dropout(attention_dropout)
        self.output_dropout = keras.layers.Dropout(hidden_dropout)
        self.layer_norm = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon,
                                                          name="layer_norm")

    def build(self, input_shape=None):
        qkv_shape = (self.hidden_size, self.num_heads, self.head_dim)
        for name in ("query", "key", "value"):
            setattr(self, f"{name}_kernel", self.add_weight(
                shape=qkv_shape, initializer=_initializer(), name=f"{name}_kernel"))
            setattr(self, f"{name}_bias", self.add_weight(
                shape=qkv_shape[1:], initializer="zeros", name=f"{name}_bias"))
        self.output_kernel = self.add_weight(
            shape=(self.num_heads, self.head_dim, self.hidden_size), initializer=_initializer(),
            name="output_kernel")
        self.output_bias = self.add_weight(shape=(self.hidden_size,), initializer="zeros",
                                           name="output_bias")
        self.layer_norm.build((None, None, self.hidden_size))
        self.built = True

    def call(self, x, attention_bias, num_heads=None, head_mask=None, training=None):
        """Attends with the leading `num_heads` heads.

        Args:
          x: [batch, seq, hidden].
          attention_bias: [batch, 1, 1, seq], 0 for tokens, a large negative for padding.
          num_heads: Python int, heads kept (default all).
          head_mask: optional [num_heads] multiplier of each head's context (importance).
        Returns:
          ([batch, seq, hidden], attention probabilities [batch, num_heads, seq, seq]).
        """
        n = self.num_heads if num_heads is None else num_heads
        project = lambda name: (
            ops.einsum("bsh,hnd->bsnd", x, getattr(self, f"{name}_kernel")[:, :n])
            + getattr(self, f"{name}_bias")[:n])
        query, key, value = project("query"), project("key"), project("value")
        scores = ops.einsum("bqnd,bknd->bnqk", query, key) / (self.head_dim ** 0.5)
        probs = ops.softmax(scores + attention_bias, axis=-1)
        context = ops.einsum("bnqk,bknd->bqnd", self.attention_dropout(probs, training=training),
                             value)
        if head_mask is not None:
            context = context * ops.reshape(head_mask[:n], (1, 1, n, 1))
        out = ops.einsum("bqnd,ndh->bqh", context, self.output_kernel[:n]) + self.output_bias
        return self.layer_norm(x + self.output_dropout(out, training=training)), probs

    def get_config(self):
        return {**super().get_config(), "hidden_size": self.hidden_size,
                "num_heads": self.num_heads, "attention_dropout": self.attention_dropout_rate,
                "hidden_dropout": self.hidden_dropout_rate,
                "layer_norm_epsilon": self.layer_norm_epsilon, "head_dim": self.head_dim_override}


@keras.saving.register_keras_serializable(package="dynabert_tf")
class SliceableFeedForward(keras.layers.Layer):
    """Intermediate dense + activation + output dense + residual + LayerNorm (post-LN)."""

    def __init__(self, hidden_size, intermediate_size, hidden_act, hidden_dropout,
                 layer_norm_epsilon, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_rate = hidden_dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.activation = _ACTIVATIONS[hidden_act]
        self.dropout = keras.layers.Dropout(hidden_dropout)
        self.layer_norm = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon,
                                                          name="layer_norm")

    def build(self, input_shape=None):
        self.intermediate_kernel = self.add_weight(
            shape=(self.hidden_size, self.intermediate_size), initializer=_initializer(),
            name="intermediate_kernel")
        self.intermediate_bias = self.add_weight(
            shape=(self.intermediate_size,), initializer="zeros", name="intermediate_bias")
        self.output_kernel = self.add_weight(
            shape=(self.intermediate_size, self.hidden_size), initializer=_initializer(),
            name="output_kernel")
        self.output_bias = self.add_weight(shape=(self.hidden_size,), initializer="zeros",
                                           name="output_bias")
        self.layer_norm.build((None, None, self.hidden_size))
        self.built = True

    def call(self, x, num_neurons=None, training=None):
        """x: [batch, seq, hidden]; keeps the leading `num_neurons` (Python int) neurons."""
        n = self.intermediate_size if num_neurons is None else num_neurons
        h = self.activation(ops.matmul(x, self.intermediate_kernel[:, :n])
                            + self.intermediate_bias[:n])
        out = ops.matmul(h, self.output_kernel[:n]) + self.output_bias
        return self.layer_norm(x + self.dropout(out, training=training))

    def get_config(self):
        return {**super().get_config(), "hidden_size": self.hidden_size,
                "intermediate_size": self.intermediate_size, "hidden_act": self.hidden_act,
                "hidden_dropout": self.hidden_dropout_rate,
                "layer_norm_epsilon": self.layer_norm_epsilon}


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
             training=None):
        """x: [batch, seq, hidden] -> ([batch, seq, hidden], probs [batch, heads, seq, seq])."""
        x, probs = self.attention(x, attention_bias, num_heads=num_heads, head_mask=head_mask,
                                  training=training)
        return self.feedforward(x, num_neurons=num_neurons, training=training), probs

    def get_config(self):
        return {**super().get_config(), **self._config}
