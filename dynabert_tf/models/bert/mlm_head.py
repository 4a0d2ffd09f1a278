"""BERT's masked-language-model head (Hugging Face `BertForMaskedLM`'s `cls.predictions`),
used to propose replacement words for data augmentation (`data/augmentation.py`).

    backbone, head = checkpoint.load_masked_lm("path/to/bert-base-uncased")   # io.checkpoint
    masked_lm = MaskedLM(backbone, head)
    logits = masked_lm.logits_at(token_ids, segment_ids, padding_mask, positions)  # [n, vocab]

logits = LayerNorm(act(h W_t + b_t)) E^T + b, with E the decoder matrix: the word embeddings
when tied (the usual case, and what a checkpoint without `cls.predictions.decoder.weight`
means), the checkpoint's own matrix otherwise. Its checkpoint names (`cls.predictions.*`)
are in `presets/hf_tensors.py`.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from dynabert_tf.layers.common import ACTIVATIONS, LayerNorm, initializer


@keras.saving.register_keras_serializable(package="dynabert_tf")
class MaskedLMHead(keras.layers.Layer):
    """Hidden states [n, hidden] -> vocabulary logits [n, vocab_size]."""

    def __init__(self, vocab_size, hidden_size, hidden_act="gelu", layer_norm_epsilon=1e-12,
                 **kwargs):
        super().__init__(**kwargs)
        if hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act {hidden_act!r} is not one of {sorted(ACTIVATIONS)}")
        self.vocab_size, self.hidden_size = vocab_size, hidden_size
        self.hidden_act, self.layer_norm_epsilon = hidden_act, layer_norm_epsilon
        self.layer_norm = LayerNorm(epsilon=layer_norm_epsilon, name="layer_norm")

    def build(self, input_shape=None):
        self.transform_kernel = self.add_weight(shape=(self.hidden_size, self.hidden_size),
                                                initializer=initializer(),
                                                name="transform_kernel")
        self.transform_bias = self.add_weight(shape=(self.hidden_size,), initializer="zeros",
                                              name="transform_bias")
        self.layer_norm.build((None, self.hidden_size))
        self.decoder = self.add_weight(shape=(self.vocab_size, self.hidden_size),
                                       initializer=initializer(), name="decoder")
        self.output_bias = self.add_weight(shape=(self.vocab_size,), initializer="zeros",
                                           name="output_bias")
        self.built = True

    def call(self, hidden):
        """hidden: float [n, hidden_size] -> logits [n, vocab_size]."""
        x = ACTIVATIONS[self.hidden_act](ops.matmul(hidden, self.transform_kernel)
                                         + self.transform_bias)
        x = self.layer_norm(x)
        return ops.matmul(x, ops.transpose(self.decoder)) + self.output_bias

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size,
                "hidden_size": self.hidden_size, "hidden_act": self.hidden_act,
                "layer_norm_epsilon": self.layer_norm_epsilon}

    @classmethod
    def for_backbone(cls, backbone):
        cfg = backbone.bert_config
        head = cls(cfg.vocab_size, cfg.hidden_size, cfg.hidden_act, cfg.layer_norm_epsilon,
                   name="masked_lm_head")
        head.build()
        return head


class MaskedLM:
    """A backbone and its masked-LM head: logits at chosen positions of a batch."""

    def __init__(self, backbone, head):
        self.backbone, self.head = backbone, head
        spec = tf.TensorSpec([None, None], tf.int32)
        self._logits = tf.function(self._logits_graph, reduce_retracing=True,
                                   input_signature=[spec, spec, spec,
                                                    tf.TensorSpec([None], tf.int32)])

    def _logits_graph(self, token_ids, segment_ids, padding_mask, positions):
        inputs = {"token_ids": token_ids, "segment_ids": segment_ids,
                  "padding_mask": padding_mask}
        sequence = self.backbone(inputs)["sequence_output"]          # [n, length, hidden]
        hidden = tf.gather(sequence, positions, axis=1, batch_dims=1)  # [n, hidden]
        return self.head(hidden)

    def logits_at(self, token_ids, segment_ids, padding_mask, positions):
        """int32 [n, length] inputs, int [n] positions -> numpy float32 [n, vocab_size]."""
        return self._logits(*(tf.constant(np.asarray(x, np.int32)) for x in
                              (token_ids, segment_ids, padding_mask, positions))).numpy()
