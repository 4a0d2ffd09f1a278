"""The tokenizer files of a vocabulary, under the names a model dir gives them, and a checked
reader of a WordPiece vocab.txt. No TensorFlow.

    names = tokenizer_files("ckpt/vocab.txt")   # {"vocab.txt": "ckpt/vocab.txt"}
    tokens = read_wordpiece_vocab("ckpt/vocab.txt")   # line i is id i
"""

import os

from dynabert_tf.core import layout, text_files


def tokenizer_files(vocab_path):
    """{standard name: source path} of the files a tokenizer needs: vocab.txt (BERT
    WordPiece) or vocab.json + merges.txt (RoBERTa byte-level BPE, beside each other)."""
    if not vocab_path:
        return {}
    if vocab_path.endswith(".json"):
        return {layout.BPE_VOCAB: vocab_path,
                layout.BPE_MERGES: os.path.join(os.path.dirname(vocab_path), layout.BPE_MERGES)}
    return {layout.WORDPIECE_VOCAB: vocab_path}


def read_wordpiece_vocab(path):
    """The tokens of a WordPiece vocab.txt (one per line, line endings "\\n", "\\r\\n" or
    "\\r" dropped), as keras-hub's `BertTokenizer` takes them.

    Raises:
      FileNotFoundError: no file at `path`.
      ValueError: a byte that is not UTF-8 (naming its line), or a token listed twice
        (naming it and both lines): ids would be ambiguous, and keras-hub refuses it later,
        after TensorFlow starts, without saying which.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no vocabulary file at {path}")
    text = text_files.read_utf8(path, f"vocabulary {path}")
    tokens = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if tokens[-1] == "":
        tokens.pop()  # the last line's end
    first_line = {}
    for line, token in enumerate(tokens, 1):
        if token in first_line:
            raise ValueError(f"vocabulary {path} line {line}: token {token!r} is already "
                             f"on line {first_line[token]}; tokens must be unique")
        first_line[token] = line
    return tokens
