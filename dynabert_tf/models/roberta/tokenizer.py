"""RoBERTa byte-level BPE inputs from a checkpoint's `vocab.json` + `merges.txt`, in the TF graph.

    encoder = RobertaInputEncoder("roberta-base/vocab.json", "roberta-base/merges.txt", 128)
    inputs = encoder(tf.constant(["hello world"]))      # <s> hello Ġworld </s> <pad>..
    inputs = encoder(premises, hypotheses)              # <s> a </s></s> b </s>

The same interface as `models.bert.tokenizer.BertInputEncoder` (what `data.pipeline` uses),
built on keras-hub's `RobertaTokenizer` (byte-level BPE, as GPT-2 / Hugging Face) and the
packing of keras-hub's `RobertaTextClassifierPreprocessor`: `MultiSegmentPacker` with
`sep_value=[</s>, </s>]`. RoBERTa has a single segment type, so `segment_ids` are all 0.
As in Hugging Face's tokenizer, special tokens written in the text (e.g. "<mask>") map to
their ids; `padding_mask` still marks only the packer's padding as 0.
"""

import json
import os

import keras_hub
import tensorflow as tf

from dynabert_tf.models.input_encoder import InputEncoder


class RobertaInputEncoder(InputEncoder):
    """Strings -> `token_ids`, `segment_ids` (all 0), `padding_mask`: <s> a </s> or
    <s> a </s></s> b </s>.

    Args:
      vocab_json_path: path of a byte-level BPE `vocab.json` (token -> id); must hold
        `<s>`, `</s>`, `<pad>` and `<mask>`.
      merges_path: path of its `merges.txt` (one merge rule a line; `#version` lines ignored).
      max_seq_length: length of the packed sequence, special tokens included.
      truncate: "round_robin" (longest-first) or "waterfall" (cut the last segment).
    """

    def __init__(self, vocab_json_path, merges_path, max_seq_length, truncate="round_robin"):
        for path in (vocab_json_path, merges_path):
            if not os.path.isfile(path):
                raise FileNotFoundError(f"no tokenizer file at {path}")
        if max_seq_length < 3:
            raise ValueError(f"max_seq_length must be at least 3 (<s> x </s>), "
                             f"got {max_seq_length}")
        with open(vocab_json_path, encoding="utf-8") as f:
            vocab = json.load(f)
        self.vocab_path = vocab_json_path
        self.merges_path = merges_path
        self.max_seq_length = int(max_seq_length)
        self.tokenizer = keras_hub.tokenizers.RobertaTokenizer(
            vocabulary=vocab_json_path, merges=merges_path)
        size = max(vocab.values()) + 1
        self.vocabulary = [None] * size
        for token, index in vocab.items():
            self.vocabulary[index] = token
        self.cls_id = self.tokenizer.start_token_id   # <s>, BERT's [CLS] position
        self.sep_id = self.tokenizer.end_token_id     # </s>
        self.pad_id = self.tokenizer.pad_token_id
        self.mask_id = self.tokenizer.mask_token_id
        self.unk_id = vocab.get("<unk>")
        # Pads with -1 so padding is told apart from a "<pad>" written in the text.
        self.packer = keras_hub.layers.MultiSegmentPacker(
            sequence_length=self.max_seq_length, start_value=self.cls_id,
            end_value=self.sep_id, sep_value=[self.sep_id] * 2, pad_value=-1,
            truncate=truncate)
        self._build_graph_functions()

    def _pack(self, segments):
        token_ids, _ = self.packer(segments)
        token_ids = tf.cast(token_ids, tf.int32)
        is_token = tf.not_equal(token_ids, -1)
        return {"token_ids": tf.where(is_token, token_ids, self.pad_id),
                "segment_ids": tf.zeros_like(token_ids),
                "padding_mask": tf.cast(is_token, tf.int32)}
