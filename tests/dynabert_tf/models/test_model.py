"""The sliceable model: shapes per cell, slicing == masking, depth, serialization."""

import keras
import numpy as np
import pytest

from dynabert_tf.core import grid as grid_lib
from dynabert_tf.models import config as model_config
from tests import model_checks
from tests.helpers import TINY, TINY_DEEP, random_inputs, tiny_backbone, tiny_classifier


@pytest.mark.parametrize("width, depth", grid_lib.grid())
def test_output_shapes_per_cell(width, depth):
    backbone = tiny_backbone(TINY_DEEP)
    out = backbone(random_inputs(batch_size=2, seq_len=5), width_mult=width, depth_mult=depth)
    layers = grid_lib.kept_layers(TINY_DEEP.num_layers, depth)
    heads = grid_lib.num_kept(TINY_DEEP.num_heads, width)
    assert out["sequence_output"].shape == (2, 5, 32)
    assert out["pooled_output"].shape == (2, 32)
    assert len(out["hidden_states"]) == len(layers) + 1
    assert [p.shape for p in out["attention_probs"]] == [(2, heads, 5, 5)] * len(layers)


@pytest.mark.parametrize("width", [0.75, 0.5, 0.25])
def test_slicing_equals_masking_the_dropped_units(width):
    """Sliced width == the full-width network with the dropped heads' and neurons' outputs
    zeroed (`model_checks.masked_reference`), on the bare backbone."""
    model_checks.check_slice_equals_mask(tiny_backbone(), random_inputs(), [(width, 1.0)],
                                         rtol=0)


def test_depth_runs_exactly_the_kept_layers():
    """Depth 0.5 of a 4-layer model == a 2-layer model made of layers 0 and 2."""
    deep = tiny_backbone(TINY_DEEP)
    shallow = tiny_backbone(model_config.BertConfig(**{**TINY_DEEP.to_dict(), "num_layers": 2}))
    shallow.embeddings.set_weights(deep.embeddings.get_weights())
    shallow.pooler.set_weights(deep.pooler.get_weights())
    for target, source in zip(shallow.transformer_layers, [0, 2]):
        target.set_weights(deep.transformer_layers[source].get_weights())
    inputs = random_inputs()
    np.testing.assert_allclose(deep(inputs, depth_mult=0.5)["pooled_output"],
                               shallow(inputs)["pooled_output"], atol=1e-6)


def test_padding_is_ignored():
    backbone = tiny_backbone()
    inputs = random_inputs(pad_last=2)
    first = backbone(inputs)["sequence_output"][0, :5]
    inputs["token_ids"][0, -2:] = 7  # change only padded positions
    np.testing.assert_allclose(backbone(inputs)["sequence_output"][0, :5], first, atol=1e-5)


def test_head_mask_zero_equals_dropping_heads():
    backbone = tiny_backbone()
    inputs = random_inputs()
    mask = np.ones((TINY.num_layers, TINY.num_heads), "float32")
    mask[:, 2:] = 0.0
    np.testing.assert_allclose(backbone(inputs, head_mask=mask)["sequence_output"],
                               _run_with_ffn_untouched(backbone, inputs), atol=1e-5)


def _run_with_ffn_untouched(backbone, inputs):
    """Two heads kept, FFN at full size: slice attention only via the layers directly."""
    from keras import ops
    mask = ops.cast(inputs["padding_mask"], "float32")
    bias = (1.0 - mask[:, None, None, :]) * -10000.0
    x = backbone.embeddings(inputs["token_ids"], inputs["segment_ids"])
    for layer in backbone.transformer_layers:
        x, _ = layer(x, bias, num_heads=2)
    return x


@pytest.mark.parametrize("bad", [0.0, 1.5, -1])
def test_bad_multiplier_is_a_value_error(bad):
    with pytest.raises(ValueError, match="width_mult must be in"):
        tiny_backbone()(random_inputs(), width_mult=bad)
    with pytest.raises(ValueError, match="depth_mult must be in"):
        tiny_backbone()(random_inputs(), depth_mult=bad)


def test_serialization_round_trip(tmp_path):
    """get_config / from_config and a .keras file (`model_checks`; every model kind:
    tests/test_model_kinds.py)."""
    model = tiny_classifier(num_classes=3)
    assert model.bert_config == TINY
    model_checks.check_config_round_trip(model, random_inputs(), [(0.5, 1.0)], atol=1e-6,
                                         keras_file=tmp_path / "model.keras")


def test_fit_lowers_the_loss():
    """A Keras user's `model.fit` on a DynaBERT classifier learns a separable toy task."""
    model = tiny_classifier(num_classes=2, dropout=0.0)
    inputs = random_inputs(batch_size=32, seq_len=6, pad_last=0, seed=3)
    labels = (inputs["token_ids"][:, 1] > TINY.vocab_size // 2).astype("int32")
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(inputs, labels, epochs=15, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
