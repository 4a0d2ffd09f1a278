"""BERT WordPiece inputs from a checkpoint's `vocab.txt`, computed inside the TF graph.

    encoder = BertInputEncoder(os.path.join(assets.minilm_dir(), "vocab.txt"), 128)
    inputs = encoder(tf.constant(["hello world"]))        # token_ids [[101, 7592, 2088, 102, 0..]]
    inputs = encoder(premises, hypotheses)                 # [CLS] a [SEP] b [SEP]

Built on keras-hub's `BertTokenizer` (tensorflow-text WordPiece) and `MultiSegmentPacker`, so
it runs in `tf.data.Dataset.map`. An uncased vocabulary (`lowercase=True`) also strips
accents ("Café" -> "cafe"), as Hugging Face's `BertTokenizer` and google-research/bert do;
keras-hub alone would not, and would map "café" to [UNK].

Pairs longer than `max_seq_length` are cut with keras-hub's "round_robin" trimmer: tokens are
taken alternately from each segment until the budget is spent. That keeps the same tokens as
BERT's `_truncate_seq_pair` (repeatedly drop the last token of the longer segment): a short
segment is kept whole, and two long ones end within one token of each other, the first
getting the extra one.
"""

import os

import keras_hub
import tensorflow as tf

from dynabert_tf.models.input_encoder import InputEncoder
from dynabert_tf.presets import vocab


class BertInputEncoder(InputEncoder):
    """Strings -> `token_ids`, `segment_ids` (0 for [CLS], a and its [SEP]; 1 for b and its
    [SEP]), `padding_mask`: [CLS] a [SEP] or [CLS] a [SEP] b [SEP].

    Args:
      vocab_path: path of a WordPiece `vocab.txt` (one token per line; line i is id i).
      max_seq_length: length of the packed sequence, [CLS] and [SEP]s included.
      lowercase: lowercase the text (uncased checkpoints); see `strip_accents`.
      strip_accents: remove accents; None means "same as `lowercase`" (BERT's rule).
      truncate: "round_robin" (BERT's longest-first) or "waterfall" (cut the last segment).

    NUL and other control characters are dropped, the rest of the text kept, as Hugging
    Face's BertTokenizer does (`core.control_chars`).
    """

    removes_control_characters = True

    def __init__(self, vocab_path, max_seq_length, lowercase=True, strip_accents=None,
                 truncate="round_robin"):
        if not os.path.isfile(vocab_path):
            raise FileNotFoundError(f"no vocabulary file at {vocab_path}")
        if max_seq_length < 3:
            raise ValueError(f"max_seq_length must be at least 3 ([CLS] x [SEP]), "
                             f"got {max_seq_length}")
        self.vocabulary = vocab.read_wordpiece_vocab(vocab_path)  # UTF-8, each token once
        self.vocab_path = vocab_path
        self.max_seq_length = int(max_seq_length)
        self.tokenizer = keras_hub.tokenizers.BertTokenizer(
            vocabulary=self.vocabulary, lowercase=lowercase,
            strip_accents=lowercase if strip_accents is None else strip_accents)
        self.cls_id = self.tokenizer.cls_token_id
        self.sep_id = self.tokenizer.sep_token_id
        self.pad_id = self.tokenizer.pad_token_id
        self.unk_id = self.tokenizer.token_to_id(self.tokenizer.oov_token)
        self.packer = keras_hub.layers.MultiSegmentPacker(
            sequence_length=self.max_seq_length, start_value=self.cls_id,
            end_value=self.sep_id, pad_value=self.pad_id, truncate=truncate)
        self._build_graph_functions()

    def _pack(self, segments):
        token_ids, segment_ids = self.packer(segments)
        # The tokenizer never emits [PAD] (special tokens in text are split like words), so
        # padding is exactly where token_ids == pad_id.
        padding_mask = tf.cast(tf.not_equal(token_ids, self.pad_id), tf.int32)
        return {"token_ids": tf.cast(token_ids, tf.int32),
                "segment_ids": tf.cast(segment_ids, tf.int32), "padding_mask": padding_mask}
