"""Standalone cells: equal to the dynamic model at their cell, and saved as HF directories."""

import json

import numpy as np
import pytest

from dynabert_tf.io import checkpoint
from dynabert_tf.core import grid as grid_lib
from dynabert_tf.elastic import cost
from dynabert_tf.models.config import BertConfig
from dynabert_tf.elastic.subnetwork import cell_config, extract_subnetwork
from dynabert_tf.presets import hf_config
from tests import model_checks
from tests.helpers import (TINY, TINY_DEEP, random_inputs, tiny_classifier,
                           tiny_classifier_with_offsets)


@pytest.fixture(scope="module")
def parent():
    return tiny_classifier_with_offsets()


@pytest.mark.parametrize("width_mult,depth_mult", grid_lib.grid())
def test_extracted_equals_dynamic(parent, width_mult, depth_mult):
    """Kept sizes, the analytic parameter count (only the kept slices are held) and the
    dynamic call's outputs: `model_checks`, as for every model kind."""
    inputs = random_inputs(batch_size=3, seq_len=9)
    cell, = model_checks.check_extracted_equals_dynamic(
        parent, inputs, [(width_mult, depth_mult)], atol=1e-5, rtol=0).values()
    cfg = cell.bert_config
    layers, heads, neurons = cost.cell_dims(TINY_DEEP, width_mult, depth_mult)
    assert (cfg.num_layers, cfg.num_heads, cfg.intermediate_size) == (layers, heads, neurons)
    assert cfg.head_dim == TINY_DEEP.head_dim and cfg.hidden_size == TINY_DEEP.hidden_size


def test_extracted_weights_are_copies():
    model = tiny_classifier()
    cell = extract_subnetwork(model, 0.5, 0.5)
    inputs = random_inputs()
    before = np.asarray(cell(inputs))
    kernel = model.backbone.transformer_layers[0].attention.query_kernel
    kernel.assign(np.zeros(kernel.shape, "float32"))
    np.testing.assert_array_equal(cell(inputs), before)


def test_bad_multiplier():
    with pytest.raises(ValueError, match="width_mult"):
        extract_subnetwork(tiny_classifier(), 0.0, 1.0)


def test_cell_config_keeps_parent_head_width():
    cfg = cell_config(BertConfig(hidden_size=384, num_layers=6, num_heads=12,
                                 intermediate_size=1536), 0.25, 0.5)
    assert (cfg.num_layers, cfg.num_heads, cfg.intermediate_size) == (3, 3, 384)
    assert cfg.attention_head_dim == 32 and cfg.head_dim == 32
    # Full width: heads x head_dim == hidden, so the override is dropped (canonical form).
    assert cell_config(TINY, 1.0, 0.5).attention_head_dim is None


def test_attention_head_dim_config_round_trip():
    cfg = BertConfig(**{**TINY.to_dict(), "num_heads": 3, "attention_head_dim": 8})
    hf = hf_config.to_hf_dict(cfg)
    assert hf["attention_head_size"] == 8
    assert hf_config.from_hf_dict(hf) == cfg
    assert "attention_head_size" not in hf_config.to_hf_dict(TINY)
    with pytest.raises(ValueError, match="divisible"):
        BertConfig(**{**TINY.to_dict(), "num_heads": 3})
    with pytest.raises(ValueError, match="attention_head_dim"):
        BertConfig(**{**TINY.to_dict(), "attention_head_dim": 0})


@pytest.mark.parametrize("width_mult,depth_mult", [(0.75, 0.75), (1.0, 0.5)])
def test_hf_dir_round_trip(parent, tmp_path, width_mult, depth_mult):
    cell = extract_subnetwork(parent, width_mult, depth_mult)
    vocab = tmp_path / "vocab_src.txt"
    vocab.write_text("\n".join(f"t{i}" for i in range(TINY_DEEP.vocab_size)) + "\n")
    out = tmp_path / "cell"
    cell.save_to_preset(str(out), vocab_path=str(vocab),
                        extra_config={"dynabert_cell": grid_lib.cell_name(width_mult, depth_mult)})
    hf = json.loads((out / "config.json").read_text())
    layers, heads, neurons = cost.cell_dims(TINY_DEEP, width_mult, depth_mult)
    assert (hf["num_hidden_layers"], hf["num_attention_heads"], hf["intermediate_size"]) == (
        layers, heads, neurons)
    assert hf.get("attention_head_size") == (None if width_mult == 1.0 else TINY_DEEP.head_dim)
    assert hf["num_labels"] == 3 and hf["dynabert_cell"] == grid_lib.cell_name(width_mult, depth_mult)
    assert (out / "vocab.txt").is_file()

    loaded = checkpoint.load_task_model(str(out))
    assert loaded.bert_config == cell.bert_config
    inputs = random_inputs()
    np.testing.assert_array_equal(loaded(inputs), cell(inputs))
