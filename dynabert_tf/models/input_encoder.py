"""What every tokenizer front end shares: strings -> the model's int32 inputs, in the graph.

Subclasses (`models/bert/tokenizer.py`, `models/roberta/tokenizer.py`) set `tokenizer` (a
keras-hub tokenizer), `vocabulary` (id -> token), `max_seq_length`, `pad_id` and implement
`_pack(segments)`; this class gives them one calling convention, which `data.pipeline` uses:

    inputs = encoder(texts)                  # or encoder(first_segments, second_segments)
    ragged = encoder.encode_unpadded(texts)  # real tokens only, for dynamic padding
"""

import contextlib

import tensorflow as tf

from dynabert_tf.core import control_chars


@contextlib.contextmanager
def traced_functions():
    """Inside, tf.functions run as traced graphs even under `--run_eagerly`
    (`tf.config.run_functions_eagerly(True)`): keras-hub tokenizers called eagerly return
    Python lists for ragged outputs, and RoBERTa's BPE needs autograph to be traced at all."""
    eager = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(False)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(eager)


class InputEncoder:
    """Strings -> `token_ids`, `segment_ids`, `padding_mask`, the model's int32 inputs.

    `removes_control_characters`: drop NUL, U+FFFD and other control / format characters
    before tokenizing, keeping the rest of the text (`core.control_chars`, Hugging Face's
    BertTokenizer rule). Otherwise NUL alone is dropped: tensorflow-text would end a string
    at its first NUL, losing the rest of the sentence.
    """

    removes_control_characters = False

    @property
    def vocab_size(self):
        return len(self.vocabulary)

    def id_to_token(self, token_id):
        return self.vocabulary[token_id]

    def tokenize(self, texts):
        """string [batch] -> int32 RaggedTensor [batch, (tokens)], no special tokens added."""
        with traced_functions():
            return self._tokenize_graph(texts)

    def __call__(self, text_a, text_b=None):
        """Packs one segment or two (the special tokens are the subclass's).

        Args:
          text_a: string [batch].
          text_b: optional string [batch], the second segment.
        Returns:
          dict of int32 [batch, max_seq_length] `token_ids`, `segment_ids` and
          `padding_mask` (1 for tokens, 0 for padding).
        """
        with traced_functions():
            if text_b is None:
                return self._pack_one_graph(self._tokenize_graph(text_a))
            return self._pack_pair_graph(self._tokenize_graph(text_a),
                                         self._tokenize_graph(text_b))

    def encode_unpadded(self, text_a, text_b=None):
        """Like `__call__`, but each row keeps only its real tokens (for dynamic padding).

        Returns:
          dict of int32 RaggedTensor [batch, (length)], length <= max_seq_length: `token_ids`,
          `segment_ids` and `padding_mask` (all ones).
        """
        features = self(text_a, text_b)
        lengths = tf.reduce_sum(features["padding_mask"], axis=1)
        return {name: tf.RaggedTensor.from_tensor(values, lengths=lengths)
                for name, values in features.items()}

    def _build_graph_functions(self):
        """keras-hub layers run inside tf.functions, so eager calls also return tensors (called
        eagerly, keras-hub returns Python lists for ragged outputs). Tokenizing is traced once
        per encoder (byte-level BPE takes seconds to trace), packing separately."""
        strings = tf.TensorSpec([None], tf.string)
        pieces = tf.RaggedTensorSpec([None, None], tf.int32)
        self._tokenize_graph = tf.function(
            lambda texts: tf.cast(self.tokenizer(self._clean(texts)), tf.int32),
            input_signature=[strings])
        self._pack_one_graph = tf.function(lambda a: self._pack((a,)), input_signature=[pieces])
        self._pack_pair_graph = tf.function(lambda a, b: self._pack((a, b)),
                                            input_signature=[pieces, pieces])

    def _clean(self, texts):
        """string [batch] -> the same without the characters `removes_control_characters`
        names (`core.control_chars`), or else without NUL only."""
        removed = control_chars.REMOVED_RE2 if self.removes_control_characters else r"\x00"
        return tf.strings.regex_replace(texts, removed, "")

    def _pack(self, segments):
        raise NotImplementedError
