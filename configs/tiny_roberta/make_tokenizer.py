"""Writes this folder's vocab.json + merges.txt: a 1,000-token byte-level BPE (RoBERTa's
tokenizer family) learned with Hugging Face `tokenizers` from the rt_polarity training
sentences. For the RoBERTa smoke run only: no real RoBERTa tokenizer files exist here.

    python configs/tiny_roberta/make_tokenizer.py
"""

import json
import os

from tokenizers import ByteLevelBPETokenizer

from dynabert_tf import data

HERE = os.path.dirname(os.path.abspath(__file__))
SPECIAL = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # ids 0-4; <pad> = 1 as in roberta-base


def main():
    sentences = [example.text_a for example in data.load_examples("rt_polarity", "train")]
    tokenizer = ByteLevelBPETokenizer()
    tokenizer.train_from_iterator(sentences, vocab_size=1000, min_frequency=2,
                                  special_tokens=SPECIAL, show_progress=False)
    tokenizer.save_model(HERE)
    with open(os.path.join(HERE, "vocab.json")) as f:
        vocab = json.load(f)
    assert [vocab[t] for t in SPECIAL] == list(range(len(SPECIAL))), "special-token ids moved"
    print(f"wrote {len(vocab)} tokens to {HERE}")


if __name__ == "__main__":
    main()
