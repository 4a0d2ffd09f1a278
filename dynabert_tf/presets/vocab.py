"""The tokenizer files of a vocabulary, under the names a model dir gives them. No TensorFlow."""

import os

from dynabert_tf.core import layout


def tokenizer_files(vocab_path):
    """{standard name: source path} of the files a tokenizer needs: vocab.txt (BERT
    WordPiece) or vocab.json + merges.txt (RoBERTa byte-level BPE, beside each other)."""
    if not vocab_path:
        return {}
    if vocab_path.endswith(".json"):
        return {layout.BPE_VOCAB: vocab_path,
                layout.BPE_MERGES: os.path.join(os.path.dirname(vocab_path), layout.BPE_MERGES)}
    return {layout.WORDPIECE_VOCAB: vocab_path}
