"""Token + position + segment embeddings."""

import keras
import tensorflow as tf
from keras import ops

from dynabert_tf.layers.common import Dropout, LayerNorm, initializer


@keras.saving.register_keras_serializable(package="dynabert_tf")
class Embeddings(keras.layers.Layer):
    """Token + position + segment embeddings, LayerNorm, dropout.

    `position_offset`: index of the first position's embedding row (0 for BERT; RoBERTa's
    rows 0 and 1 belong to its padding index, so its first token uses row 2).
    Tables [rows, hidden] and the LayerNorm have their hidden units last (`hidden_axes`).
    """

    hidden_axes = {"token_embeddings": (1,), "position_embeddings": (1,),
                   "segment_embeddings": (1,), "gamma": (0,), "beta": (0,)}

    def __init__(self, vocab_size, hidden_size, max_position_embeddings, type_vocab_size,
                 dropout, layer_norm_epsilon, position_offset=0, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.dropout_rate = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.position_offset = position_offset
        self.layer_norm = LayerNorm(epsilon=layer_norm_epsilon, name="layer_norm")
        self.dropout = Dropout(dropout)
        # The tables stay float32 when read (as keras.layers.Embedding): rows are gathered
        # and summed in float32 and the LayerNorm casts its output to the compute dtype, so a
        # mixed policy never casts a whole table.
        self.autocast = False

    def build(self, input_shape=None):
        self.token_embeddings = self.add_weight(
            shape=(self.vocab_size, self.hidden_size), initializer=initializer(),
            name="token_embeddings")
        self.position_embeddings = self.add_weight(
            shape=(self.max_position_embeddings, self.hidden_size), initializer=initializer(),
            name="position_embeddings")
        self.segment_embeddings = self.add_weight(
            shape=(self.type_vocab_size, self.hidden_size), initializer=initializer(),
            name="segment_embeddings")
        self.layer_norm.build((None, None, self.hidden_size))
        self.built = True

    def call(self, token_ids, segment_ids, training=None, hidden_units=None):
        """token_ids, segment_ids: int [batch, seq] -> [batch, seq, hidden_units] (Python int,
        the leading hidden units kept; default all: the rows are gathered, then cut), in the
        compute dtype (the sum before the LayerNorm is float32)."""
        seq_len = ops.shape(token_ids)[1]
        start = self.position_offset
        # tf.gather, not ops.take: take's wrap-around of negative ids adds int32 arithmetic
        # on the inputs, which TFLite's 16-bit activation quantizer cannot calibrate.
        x = (tf.gather(self.token_embeddings, token_ids)
             + tf.gather(self.segment_embeddings, segment_ids)
             + ops.expand_dims(self.position_embeddings[start:start + seq_len], 0))
        if hidden_units is not None and hidden_units < self.hidden_size:
            x = x[..., :hidden_units]
        return self.dropout(self.layer_norm(x, training=training, units=hidden_units),
                            training=training)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size,
                "hidden_size": self.hidden_size,
                "max_position_embeddings": self.max_position_embeddings,
                "type_vocab_size": self.type_vocab_size, "dropout": self.dropout_rate,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "position_offset": self.position_offset}
