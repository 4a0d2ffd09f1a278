"""Every model kind passes the same checks (`tests/model_checks.py`): BERT classification,
regression and span, RoBERTa classification, a standalone per-layer sub-network and the
hidden-size axis. Each: serialization round trips (config, .keras file, preset dir), slice ==
mask, extracted == dynamic; the TFLite parity of one cell is `slow` (a conversion each)."""

import pytest

from tests import model_checks
from tests.model_checks import KINDS

_MODELS = {}


def _model(name):
    """The kind's tiny model, built once per session (the checks never change it)."""
    if name not in _MODELS:
        _MODELS[name] = KINDS[name].build()
    return _MODELS[name]


@pytest.mark.parametrize("name", KINDS)
def test_serialization_round_trip(name, tmp_path):
    model = _model(name)
    inputs = model_checks.model_inputs(model.bert_config)
    cells = KINDS[name].cells_of(model)[::2]  # full size first; a few cells suffice
    model_checks.check_config_round_trip(model, inputs, cells,
                                         keras_file=tmp_path / "model.keras")
    model_checks.check_preset_round_trip(model, inputs, tmp_path / "preset", cells)


@pytest.mark.parametrize("name", KINDS)
def test_slice_equals_mask(name):
    model = _model(name)
    model_checks.check_slice_equals_mask(model, model_checks.model_inputs(model.bert_config),
                                         KINDS[name].cells_of(model))


@pytest.mark.parametrize("name", KINDS)
def test_extracted_equals_dynamic(name):
    model = _model(name)
    model_checks.check_extracted_equals_dynamic(
        model, model_checks.model_inputs(model.bert_config), KINDS[name].cells_of(model))


@pytest.mark.slow
@pytest.mark.parametrize("name", KINDS)
def test_tflite_parity(name, tmp_path):
    model = _model(name)
    inputs = model_checks.model_inputs(model.bert_config, seq_len=12)
    model_checks.check_tflite_parity(model, KINDS[name].tflite_cell, inputs,
                                     tmp_path / "cell.tflite")


# ------------------------------------------------------------- the checks themselves bite

def test_round_trip_check_catches_a_changed_weight(tmp_path, monkeypatch):
    """A preset loader that changes one bias by 1e-5 fails the round trip check."""
    from dynabert_tf.models.task_model import DynaBertTaskModel

    model = _model("bert_span")
    load = DynaBertTaskModel.from_preset.__func__

    def load_changed(cls, path, **kwargs):
        loaded = load(cls, path, **kwargs)
        bias = loaded.backbone.transformer_layers[-1].feedforward.output_bias
        bias.assign(bias + 1e-5)
        return loaded

    monkeypatch.setattr(DynaBertTaskModel, "from_preset", classmethod(load_changed))
    with pytest.raises(AssertionError, match="from_preset at w1.00_d1.00"):
        model_checks.check_preset_round_trip(
            model, model_checks.model_inputs(model.bert_config), tmp_path, [(1.0, 1.0)])


def test_slice_check_catches_trailing_units(monkeypatch):
    """A model that keeps the last neurons instead of the leading ones fails slice == mask,
    and so does its extraction (which copies the leading ones)."""
    from dynabert_tf.layers import weight_layout

    model = _model("bert_classification")
    inputs = model_checks.model_inputs(model.bert_config)
    sliced = weight_layout.sliced

    def trailing(layer, name, count, hidden=None, hidden_axes=None):
        axis = getattr(layer, "width_axes", {}).get(name)
        total = getattr(layer, name).shape[axis] if axis is not None else None
        if name.startswith("intermediate") and count is not None and count < total:
            return sliced(layer, name, None, hidden, hidden_axes)[total - count:]
        return sliced(layer, name, count, hidden, hidden_axes)

    monkeypatch.setattr(weight_layout, "sliced", trailing)
    with pytest.raises(AssertionError, match="sliced vs masked at w0.50_d1.00"):
        model_checks.check_slice_equals_mask(model, inputs, [(0.5, 1.0)])
    with pytest.raises(AssertionError, match="extracted vs dynamic at w0.50_d1.00"):
        model_checks.check_extracted_equals_dynamic(model, inputs, [(0.5, 1.0)])
