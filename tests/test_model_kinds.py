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
