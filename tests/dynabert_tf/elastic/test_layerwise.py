"""Per-layer sub-networks: the config, its cost, the model run at it (== grid cells,
== masking), the standalone extracted model (== the run, saved and loaded) and its TFLite file."""

import json
import os

import numpy as np
import pytest

from dynabert_tf.elastic import cost
from dynabert_tf.core import grid as grid_lib
from dynabert_tf.elastic import layerwise
from dynabert_tf.elastic.layerwise import LayerwiseConfig
from dynabert_tf.elastic.subnetwork import extract_layerwise, extract_subnetwork
from dynabert_tf.models.config import BertConfig
from dynabert_tf.presets import hf_config
from tests import model_checks
from tests.helpers import TINY_DEEP, random_inputs, tiny_classifier_with_offsets

MINILM = BertConfig(hidden_size=384, num_layers=6, num_heads=12, intermediate_size=1536)
BERT_BASE = BertConfig()
# TINY_DEEP: 4 layers, 4 heads (step 1), 64 neurons (step 16).
MIXED = LayerwiseConfig(layers=(0, 1, 3), heads=(4, 1, 3), neurons=(16, 64, 48))


@pytest.fixture(scope="module")
def parent():
    return tiny_classifier_with_offsets()


def test_name_and_dict_round_trip():
    config = LayerwiseConfig([0, 1, 2, 4], [12, 9, 6, 3], [1536, 1152, 768, 384])
    assert config.layers == (0, 1, 2, 4) and isinstance(config.heads, tuple)
    assert config.name == "mix_l0.1.2.4_h12.9.6.3_n1536.1152.768.384"
    assert LayerwiseConfig.from_name(config.name) == config
    assert LayerwiseConfig.from_dict(config.to_dict()) == config
    assert hash(config) == hash(LayerwiseConfig.from_name(config.name))
    for bad in ("mix_l0_h1", "w0.50_d0.75", "mix_l0.1_h3.3_n384.x"):
        with pytest.raises(ValueError, match="bad per-layer sub-network name"):
            LayerwiseConfig.from_name(bad)
    with pytest.raises(ValueError, match="ints"):
        LayerwiseConfig((0, 1.5), (3, 3), (384, 384))


def test_steps_and_choices():
    assert (layerwise.head_step(MINILM), layerwise.neuron_step(MINILM)) == (3, 384)
    assert (layerwise.head_step(BERT_BASE), layerwise.neuron_step(BERT_BASE)) == (3, 768)
    assert layerwise.head_choices(MINILM) == (3, 6, 9, 12)
    # 6 heads: step round(1.5) = 2; widths 0.5 and 0.75 keep 3 and round(4.5) = 5 heads.
    six = BertConfig(hidden_size=48, num_layers=2, num_heads=6, intermediate_size=64)
    assert layerwise.head_choices(six) == (2, 3, 4, 5, 6)


@pytest.mark.parametrize("config,message", [
    (LayerwiseConfig((0, 6), (3, 3), (384, 384)), "layer index 6 out of range for 6 layers"),
    (LayerwiseConfig((2, 1), (3, 3), (384, 384)), "strictly increasing"),
    (LayerwiseConfig((1, 1), (3, 3), (384, 384)), "strictly increasing"),
    (LayerwiseConfig((0, 1), (3,), (384, 384)), "2 layers but 1 head counts"),
    (LayerwiseConfig((), (), ()), "at least one layer"),
    (LayerwiseConfig((0,), (4,), (384,)), "keeps 4 heads; allowed: a positive multiple of 3"),
    (LayerwiseConfig((0,), (15,), (384,)), "keeps 15 heads"),
    (LayerwiseConfig((0,), (0,), (384,)), "keeps 0 heads"),
    (LayerwiseConfig((0,), (3,), (100,)), "keeps 100 neurons; allowed: a positive multiple of "
                                         "384 up to 1536"),
])
def test_check_errors_are_one_line(config, message):
    with pytest.raises(ValueError, match=message) as e:
        layerwise.check(config, MINILM)
    assert "\n" not in str(e.value)


def test_grid_cells_are_configs_and_back():
    for width_mult, depth_mult in grid_lib.grid():
        config = layerwise.from_cell(MINILM, width_mult, depth_mult)
        assert layerwise.check(config, MINILM) is config
        assert layerwise.is_grid_cell(config, MINILM) == (width_mult, depth_mult)
    assert layerwise.from_cell(MINILM, 0.5, 0.5) == LayerwiseConfig(
        (0, 2, 4), (6, 6, 6), (768, 768, 768))
    assert layerwise.is_grid_cell(LayerwiseConfig((0, 2, 4), (6, 6, 3), (768,) * 3),
                                  MINILM) is None


@pytest.mark.parametrize("bert_config", [MINILM, BERT_BASE], ids=["minilm", "bert_base"])
def test_uniform_cost_equals_layerwise_cost_on_every_cell(bert_config):
    for width_mult, depth_mult in grid_lib.grid():
        config = layerwise.from_cell(bert_config, width_mult, depth_mult)
        assert cost.count_params(bert_config, width_mult, depth_mult, num_classes=3) \
            == cost.count_params_layerwise(bert_config, config, num_classes=3) \
            == cost.count_params(bert_config, num_classes=3, subnetwork=config)
        assert cost.count_flops(bert_config, width_mult, depth_mult, 64, 3) \
            == cost.count_flops_layerwise(bert_config, config, 64, 3) \
            == cost.count_flops(bert_config, seq_len=64, num_classes=3, subnetwork=config)


def test_layerwise_cost_is_per_layer():
    small = LayerwiseConfig((0, 2, 4), (6, 6, 3), (768, 768, 768))
    cells = {cell: cost.count_flops(MINILM, *cell) for cell in ((0.5, 0.5), (0.25, 0.5))}
    flops = cost.count_flops_layerwise(MINILM, small)
    # One of three layers at width 0.25, the others at 0.5 (attention only: same neurons).
    assert cells[(0.25, 0.5)] < flops < cells[(0.5, 0.5)]
    with pytest.raises(ValueError, match="either subnetwork or width_mult"):
        cost.count_params(MINILM, 0.5, subnetwork=small)


@pytest.mark.parametrize("width_mult,depth_mult", [(1.0, 1.0), (0.75, 0.75), (0.5, 0.5),
                                                   (0.25, 1.0)])
def test_grid_cell_config_equals_cell(parent, width_mult, depth_mult):
    inputs = random_inputs(batch_size=3, seq_len=9)
    config = layerwise.from_cell(TINY_DEEP, width_mult, depth_mult)
    expected = parent(inputs, width_mult=width_mult, depth_mult=depth_mult, return_dict=True)
    got = parent(inputs, subnetwork=config, return_dict=True)
    for key in ("logits", "sequence_output", "pooled_output"):
        np.testing.assert_allclose(got[key], expected[key], atol=1e-6, err_msg=key)
    for name in ("hidden_states", "attention_probs"):
        assert len(got[name]) == len(expected[name])
        for g, e in zip(got[name], expected[name]):
            np.testing.assert_allclose(g, e, atol=1e-6, err_msg=name)
    backbone = parent.backbone(inputs, subnetwork=config)
    np.testing.assert_allclose(backbone["sequence_output"], expected["sequence_output"],
                               atol=1e-6)


@pytest.mark.parametrize("config,depth_mult", [
    (LayerwiseConfig((0, 1, 2, 3), (4, 1, 3, 2), (16, 64, 48, 32)), 1.0),
    (LayerwiseConfig((0, 2), (2, 3), (48, 16)), 0.5),
])
def test_mixed_config_equals_masking(parent, config, depth_mult):
    """The per-layer call == the full-size network with each kept layer's dropped heads and
    neurons masked and the other layers skipped (`model_checks.masked_reference`): logits,
    pooled and sequence outputs, hidden states, the kept heads' attention maps."""
    assert grid_lib.kept_layers(TINY_DEEP.num_layers, depth_mult) == config.layers
    model_checks.check_slice_equals_mask(parent, random_inputs(batch_size=3, seq_len=9),
                                         [config], atol=1e-5, rtol=0)


def test_mixed_config_returns_its_last_layer_qkv(parent):
    inputs = random_inputs(batch_size=2, seq_len=5)
    got = parent(inputs, subnetwork=MIXED, return_dict=True, return_qkv=True)
    # MIXED's last kept layer (3) keeps 3 heads.
    assert got["last_layer_qkv"]["query"].shape == (2, 3, 5, TINY_DEEP.head_dim)
    assert len(got["hidden_states"]) == 4 and got["logits"].shape == (2, 3)


@pytest.mark.parametrize("config,kwargs,message", [
    (MIXED, {"width_mult": 0.5}, "either subnetwork or width_mult/depth_mult"),
    (MIXED, {"depth_mult": 0.5}, "not both"),
    (LayerwiseConfig((0, 4), (1, 1), (16, 16)), {}, "layer index 4 out of range for 4 layers"),
])
def test_bad_call_arguments_are_one_line(parent, config, kwargs, message):
    inputs = random_inputs(batch_size=1, seq_len=4)
    for model in (parent, parent.backbone):
        with pytest.raises(ValueError, match=message) as e:
            model(inputs, subnetwork=config, **kwargs)
        assert "\n" not in str(e.value)


# --------------------------------------------------------------------------- extraction

def test_per_layer_bert_config():
    cfg = BertConfig(**{**TINY_DEEP.to_dict(), "num_layers": 3, "num_heads": 3,
                        "attention_head_dim": 8, "layer_num_heads": [3, 1, 2],
                        "layer_intermediate_sizes": [16, 48, 32], "intermediate_size": 48})
    assert cfg.layer_num_heads == (3, 1, 2) and cfg.heads_per_layer == (3, 1, 2)
    assert BertConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    hf = hf_config.to_hf_dict(cfg)
    assert hf["layer_num_attention_heads"] == [3, 1, 2]
    assert hf_config.from_hf_dict(json.loads(json.dumps(hf))) == cfg
    # All layers equal: the uniform (canonical) form, which writes no per-layer keys.
    uniform = BertConfig(**{**TINY_DEEP.to_dict(), "layer_num_heads": (4,) * 4})
    assert uniform == TINY_DEEP and uniform.layer_num_heads is None
    assert "layer_num_attention_heads" not in hf_config.to_hf_dict(uniform)
    for values, message in [({"layer_num_heads": (4, 2)}, "2 values for 4 layers"),
                            ({"layer_num_heads": (4, 0, 1, 1)}, "positive integers"),
                            ({"layer_intermediate_sizes": (64, 64, 64, 80)},
                             "intermediate_size must be the largest")]:
        with pytest.raises(ValueError, match=message):
            BertConfig(**{**TINY_DEEP.to_dict(), **values})


def test_extracted_equals_subnetwork(parent, tmp_path):
    """Sizes, parameter counts (`cost`) and outputs of the standalone per-layer model, of a
    grid cell of it, and its preset round trip: `model_checks` (as for every model kind)."""
    inputs = random_inputs(batch_size=3, seq_len=9)
    mixed, = model_checks.check_extracted_equals_dynamic(parent, inputs, [MIXED], atol=1e-5,
                                                         rtol=0).values()
    cfg = mixed.bert_config
    assert (cfg.num_layers, cfg.layer_num_heads, cfg.layer_intermediate_sizes) == (
        3, MIXED.heads, MIXED.neurons)
    assert [layer.attention.query_kernel.shape[0] for layer in
            mixed.backbone.transformer_layers] == list(MIXED.heads)
    assert mixed.count_params() == cost.count_params_layerwise(TINY_DEEP, MIXED, 3) \
        == cost.count_params(cfg, num_classes=3)

    # A grid cell of the extracted model keeps its share of each layer's own size.
    smaller, = model_checks.check_extracted_equals_dynamic(mixed, inputs, [(0.5, 0.75)],
                                                           atol=1e-5, rtol=0).values()
    assert smaller.bert_config.layer_num_heads == (2, 1)

    path, loaded = model_checks.check_preset_round_trip(mixed, inputs, tmp_path / "mixed",
                                                        [(1.0, 1.0)])
    with open(os.path.join(path, "config.json")) as f:
        assert json.load(f)["layer_intermediate_sizes"] == list(MIXED.neurons)
    np.testing.assert_allclose(loaded(inputs), parent(inputs, subnetwork=MIXED), atol=1e-5)


def test_uniform_config_extracts_as_the_cell(parent):
    for width_mult, depth_mult in [(0.75, 0.75), (0.25, 1.0)]:
        cell = extract_subnetwork(parent, width_mult, depth_mult)
        same = extract_layerwise(parent, layerwise.from_cell(TINY_DEEP, width_mult, depth_mult))
        assert same.bert_config == cell.bert_config and same.bert_config.layer_num_heads is None
        assert [w.path for w in same.weights] == [w.path for w in cell.weights]
        for a, b in zip(same.weights, cell.weights):
            np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- TFLite

def test_exported_mixed_config_matches_keras(parent, tmp_path):
    """`mobile.export.export_layerwise`'s float file == the Keras per-layer call
    (`model_checks.check_tflite_parity`), builtin ops only, metadata attached."""
    path = str(tmp_path / f"{MIXED.name}.tflite")
    examples = [random_inputs(batch_size=1, seq_len=9, seed=seed, pad_last=2 * seed)
                for seed in range(3)]
    written = model_checks.check_tflite_parity(
        parent, MIXED, examples, path, atol=1e-4,
        metadata={"dynabert.json": b'{"cell": "mixed"}'})
    assert written["bytes"] == os.path.getsize(path)
    assert [o["name"] for o in written["outputs"]] == ["logits"]
    assert not any(op.startswith("CUSTOM") for op in written["ops"])
