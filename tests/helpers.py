"""Shared tiny models, inputs and fixtures so each test file stays short."""

import os

import numpy as np
import pytest

from dynabert_tf.models.config import BertConfig
from dynabert_tf.models import task_model
from dynabert_tf.models.backbone import DynaBertBackbone

TINY = BertConfig(vocab_size=120, hidden_size=32, num_layers=2, num_heads=4,
                  intermediate_size=64, max_position_embeddings=64)
# Four layers so that every depth in the grid keeps a different layer set.
TINY_DEEP = BertConfig(vocab_size=120, hidden_size=32, num_layers=4, num_heads=4,
                       intermediate_size=64, max_position_embeddings=64)


def tiny_backbone(config=TINY, dropout=None):
    if dropout is not None:
        config = BertConfig(**{**config.to_dict(), "hidden_dropout": dropout,
                               "attention_dropout": dropout})
    return DynaBertBackbone.from_config_object(config)


def tiny_classifier(num_classes=2, config=TINY, dropout=None):
    return task_model.classifier(tiny_backbone(config, dropout), num_classes,
                                 dropout=0.1 if dropout is None else dropout)


def tiny_classifier_with_offsets(num_classes=3, config=TINY_DEEP, seed=0):
    """A tiny classifier whose biases and LayerNorm offsets are non-zero (N(0, 0.1)), so a
    mis-sliced bias shows in its outputs."""
    model = tiny_classifier(num_classes=num_classes, config=config)
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        if "bias" in variable.path or "beta" in variable.path:
            variable.assign(rng.normal(0, 0.1, variable.shape).astype("float32"))
    return model


def random_inputs(batch_size=3, seq_len=7, vocab_size=TINY.vocab_size, seed=0, pad_last=2):
    """Random token inputs; the last `pad_last` positions of the first example are padding."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(1, vocab_size, size=(batch_size, seq_len)).astype("int32")
    padding_mask = np.ones((batch_size, seq_len), "int32")
    if pad_last:
        padding_mask[0, -pad_last:] = 0
        token_ids[0, -pad_last:] = 0
    segment_ids = np.zeros((batch_size, seq_len), "int32")
    segment_ids[:, seq_len // 2:] = 1
    return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}


# The repository root and the fixture files; tests under tests/<package>/ find them here.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES_DIR = os.path.join(REPO_ROOT, "tests", "fixtures")
SQUAD_DIR = os.path.join(FIXTURES_DIR, "squad")


def minilm_encoder(max_seq_length):
    """The real MiniLM-L6 WordPiece encoder; skips the test if the asset cannot be fetched."""
    from dynabert_tf.io import assets
    from dynabert_tf.models.bert.tokenizer import BertInputEncoder

    try:
        return BertInputEncoder(os.path.join(assets.minilm_dir(), "vocab.txt"), max_seq_length)
    except assets.AssetError as e:
        pytest.skip(f"real vocabulary unavailable: {e}")
