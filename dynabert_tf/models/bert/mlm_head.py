"""BERT's masked-language-model head (Hugging Face `BertForMaskedLM`'s `cls.predictions`),
used to propose replacement words for data augmentation (`data/augmentation.py`).

    backbone, head = checkpoint.load_masked_lm("path/to/bert-base-uncased")
    masked_lm = MaskedLM(backbone, head)
    logits = masked_lm.logits_at(token_ids, segment_ids, padding_mask, positions)  # [n, vocab]

logits = LayerNorm(act(h W_t + b_t)) E^T + b, with E the decoder matrix: the word embeddings
when tied (the usual case, and what a checkpoint without `cls.predictions.decoder.weight`
means), the checkpoint's own matrix otherwise.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from dynabert_tf.layers.common import ACTIVATIONS, LayerNorm, initializer

HF_PREFIX = "cls.predictions."


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

    def assign_hf_tensors(self, tensors, word_embeddings, source="checkpoint"):
        """Assigns `cls.predictions.*` of `tensors` (prefix already stripped of `bert.`);
        the decoder is tied to `word_embeddings` [vocab, hidden] unless the checkpoint has
        its own. Raises ValueError naming a missing tensor or a wrong shape."""
        table = [(self.transform_kernel, "transform.dense.weight", np.transpose),
                 (self.transform_bias, "transform.dense.bias", None),
                 (self.layer_norm.gamma, "transform.LayerNorm.weight", None),
                 (self.layer_norm.beta, "transform.LayerNorm.bias", None),
                 (self.output_bias, "bias", None),
                 (self.decoder, "decoder.weight", None)]
        values = dict(tensors)
        values.setdefault(HF_PREFIX + "bias", values.get(HF_PREFIX + "decoder.bias"))
        values.setdefault(HF_PREFIX + "decoder.weight", word_embeddings)
        for variable, name, to_ours in table:
            value = values.get(HF_PREFIX + name)
            if value is None:
                raise ValueError(f"{source}: missing tensor {HF_PREFIX + name} of the "
                                 f"masked-LM head")
            value = to_ours(value) if to_ours else np.asarray(value)
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(f"{source}: tensor {HF_PREFIX + name} has shape "
                                 f"{tuple(value.shape)}, the head expects "
                                 f"{tuple(variable.shape)}")
            variable.assign(value.astype("float32"))


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
