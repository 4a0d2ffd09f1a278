"""The run-time's TensorFlow-free tokenizer gives `BertInputEncoder`'s ids on every rt_polarity
dev sentence (accented words included), pairs and bucket lengths too. The reference side
imports TensorFlow; the run-time side does not (tests/test_runtime_engine.py checks that)."""

import os

import numpy as np
import pytest

from mobile.runtime.tokenizer import WordPieceEncoder


@pytest.fixture(scope="module")
def vocab_path():
    try:
        from dynabert_tf.io import assets

        return os.path.join(assets.minilm_dir(), "vocab.txt")
    except Exception as e:  # noqa: BLE001 - no asset, no network
        pytest.skip(f"real vocabulary unavailable: {e}")


@pytest.fixture(scope="module")
def dev_texts():
    try:
        from dynabert_tf.data.movie_reviews import movie_review_splits

        return [text for _, text in movie_review_splits()["dev"]]
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"rt_polarity data unavailable: {e}")


def reference(vocab_path, length, texts, texts_b=None):
    from dynabert_tf.models.bert.tokenizer import BertInputEncoder

    features = BertInputEncoder(vocab_path, length)(texts, texts_b)
    return {k: v.numpy() for k, v in features.items()}


def ours(encoder, texts, texts_b=None, length=None):
    packed = [encoder.encode(a, b) for a, b in zip(texts, texts_b or [None] * len(texts))]
    if length is not None:
        packed = [p.truncated(length) for p in packed]
    return {name: np.array([getattr(p, name) for p in packed])
            for name in ("token_ids", "segment_ids", "padding_mask")}


def assert_same(a, b):
    for name in ("token_ids", "segment_ids", "padding_mask"):
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_every_dev_sentence(vocab_path, dev_texts):
    accented = [t for t in dev_texts if not t.isascii()]
    assert len(dev_texts) > 1000 and accented  # the non-ASCII path is exercised
    with open(vocab_path, "rb") as f:
        encoder = WordPieceEncoder(f.read(), 128)  # as the file carries it: bytes
    expected = reference(vocab_path, 128, dev_texts)
    assert_same(ours(encoder, dev_texts), expected)
    lengths = expected["padding_mask"].sum(1)
    assert [encoder.encode(t).length for t in dev_texts] == lengths.tolist()


def test_pairs_and_truncation(vocab_path, dev_texts):
    a, b = dev_texts[:200], dev_texts[200:400]
    for length in (128, 24):
        encoder = WordPieceEncoder(open(vocab_path, encoding="utf-8").read(), length)
        assert_same(ours(encoder, a, b), reference(vocab_path, length, a, b))


def test_a_bucket_is_the_prefix_of_the_full_length(vocab_path, dev_texts):
    encoder = WordPieceEncoder(open(vocab_path, encoding="utf-8").read(), 128)
    short = [t for t in dev_texts if encoder.encode(t).length <= 32][:100]
    assert len(short) == 100
    assert_same(ours(encoder, short, length=32), reference(vocab_path, 32, short))
    with pytest.raises(ValueError, match="do not fit"):
        encoder.encode(max(dev_texts, key=len)).truncated(8)


def test_accents_unicode_and_long_words(vocab_path):
    texts = ["Café naïve Zoë, a résumé of ½ the crème brûlée…", "STRASSE straße ﬁlm",
             "\u2603 snow \u00a0 nbsp\tTAB", "x" * 120 + " end", "日本語 mixed", "",
             "ctrl\x01char\x0bhere", "zero\u200bwidth café"]
    encoder = WordPieceEncoder(open(vocab_path, encoding="utf-8").read(), 64)
    assert_same(ours(encoder, texts), reference(vocab_path, 64, texts))
    assert encoder.tokenize("Café") == encoder.tokenize("cafe")


def test_bad_vocabulary():
    with pytest.raises(ValueError, match=r"no \[CLS\] token"):
        WordPieceEncoder(["[PAD]", "[UNK]", "[SEP]", "a"], 16)
    with pytest.raises(ValueError, match="at least 3"):
        WordPieceEncoder(["[PAD]", "[UNK]", "[CLS]", "[SEP]"], 2)
