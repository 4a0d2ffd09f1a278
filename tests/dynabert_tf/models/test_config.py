"""The grid rules: kept layers, kept heads/neurons, cell names, multiplier checks."""

import pytest

from dynabert_tf.core import grid as grid_lib
from dynabert_tf.presets import hf_config


@pytest.mark.parametrize("num_layers, depth_mult, expected", [
    (12, 1.0, tuple(range(12))),
    (12, 0.75, (0, 1, 2, 4, 5, 6, 8, 9, 10)),
    (12, 0.5, (0, 2, 4, 6, 8, 10)),
    (6, 1.0, (0, 1, 2, 3, 4, 5)),
    (6, 0.75, (0, 1, 2, 4)),   # round(4.5) = 4 layers, halves to even
    (6, 0.5, (0, 2, 4)),
    (4, 0.75, (0, 1, 2)),
    (4, 0.5, (0, 2)),
    (2, 0.5, (0,)),
    (1, 0.25, (0,)),
])
def test_kept_layers(num_layers, depth_mult, expected):
    assert grid_lib.kept_layers(num_layers, depth_mult) == expected


@pytest.mark.parametrize("total, width_mult, expected", [
    (12, 1.0, 12), (12, 0.75, 9), (12, 0.5, 6), (12, 0.25, 3),
    (1536, 0.75, 1152), (1536, 0.25, 384), (4, 0.75, 3), (2, 0.25, 1), (2, 0.75, 2),
])
def test_num_kept(total, width_mult, expected):
    assert grid_lib.num_kept(total, width_mult) == expected


@pytest.mark.parametrize("bad", [0, 0.0, -0.5, 1.01, 2, "0.5", None])
def test_multiplier_outside_unit_interval_rejected(bad):
    # Numbers out of range: "must be in (0, 1]"; "0.5" and None: "must be a number in (0, 1]".
    with pytest.raises(ValueError, match=r"must be (a number )?in \(0, 1\]"):
        grid_lib.kept_layers(12, bad)
    with pytest.raises(ValueError, match=r"must be (a number )?in \(0, 1\]"):
        grid_lib.num_kept(12, bad)


def test_cell_names_round_trip_and_grid_order():
    assert grid_lib.cell_name(0.5, 0.75) == "w0.50_d0.75"
    assert grid_lib.parse_cell_name("w0.25_d1.00") == (0.25, 1.0)
    cells = grid_lib.grid()
    assert len(cells) == 12 and cells[0] == (1.0, 1.0) and cells[-1] == (0.25, 0.5)
    with pytest.raises(ValueError, match="bad cell name"):
        grid_lib.parse_cell_name("w050d075")
    with pytest.raises(ValueError, match="must be in"):
        grid_lib.parse_cell_name("w1.50_d1.00")


def test_hf_config_round_trip(tmp_path):
    minilm = {"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
              "intermediate_size": 1536, "vocab_size": 30522, "hidden_act": "gelu",
              "layer_norm_eps": 1e-12, "position_embedding_type": "absolute"}
    cfg = hf_config.from_hf_dict(minilm)
    assert (cfg.num_layers, cfg.head_dim, cfg.hidden_act) == (6, 32, "gelu")
    assert hf_config.from_hf_dict(hf_config.to_hf_dict(cfg)) == cfg
    with pytest.raises(ValueError, match="lacks num_hidden_layers"):
        hf_config.from_hf_dict({k: v for k, v in minilm.items() if k != "num_hidden_layers"})
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        hf_config.read_config(str(tmp_path))
