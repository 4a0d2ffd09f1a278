"""Checkpoint import/export: parity with keras-hub's BERT, HF round trip, clear errors."""

import json
import os

import keras_hub
import numpy as np
import pytest
import safetensors.numpy

from dynabert_tf.io import checkpoint
from dynabert_tf.models.backbone import DynaBertBackbone
from dynabert_tf.presets import hf_config, hf_tensors
from tests.helpers import TINY, random_inputs, tiny_backbone, tiny_classifier


def _keras_hub_reference(tmp_path):
    reference = keras_hub.models.BertBackbone(
        vocabulary_size=TINY.vocab_size, num_layers=2, num_heads=4, hidden_dim=32,
        intermediate_dim=64, max_sequence_length=64)
    # Non-zero biases and LayerNorm parameters, so a mis-mapped weight cannot hide.
    rng = np.random.default_rng(0)
    for w in reference.weights:
        w.assign(rng.normal(0, 0.2, w.shape).astype("float32") + (1.0 if "gamma" in w.path else 0))
    preset = str(tmp_path / "preset")
    reference.save_to_preset(preset)
    return reference, preset


def _close(ours, reference, inputs):
    got = ours(inputs)
    want = reference(inputs)
    np.testing.assert_allclose(got["sequence_output"], want["sequence_output"], atol=1e-5)
    np.testing.assert_allclose(got["pooled_output"], want["pooled_output"], atol=1e-5)


def test_keras_hub_preset_matches_keras_hub(tmp_path):
    reference, preset = _keras_hub_reference(tmp_path)
    ours = checkpoint.load_backbone(preset)
    assert ours.bert_config.hidden_act == "gelu_approximate"  # keras-hub BERT uses tanh GELU
    _close(ours, reference, random_inputs(pad_last=0))


def test_hf_dir_matches_keras_hub(tmp_path):
    """A fabricated HF checkpoint (tanh GELU) holding keras-hub's weights gives its outputs."""
    reference, preset = _keras_hub_reference(tmp_path)
    via_preset = checkpoint.load_backbone(preset)
    hf_dir = tmp_path / "hf"
    hf_dir.mkdir()
    safetensors.numpy.save_file(hf_tensors.backbone_tensors(via_preset),
                                str(hf_dir / "model.safetensors"))
    (hf_dir / "config.json").write_text(json.dumps(hf_config.to_hf_dict(via_preset.bert_config)))
    assert json.loads((hf_dir / "config.json").read_text())["hidden_act"] == "gelu_pytorch_tanh"
    _close(checkpoint.load_backbone(str(hf_dir)), reference, random_inputs(pad_last=0))


def test_exact_gelu_is_the_hf_default():
    hf = {**hf_config.to_hf_dict(TINY), "hidden_act": "gelu"}
    assert hf_config.from_hf_dict(hf).hidden_act == "gelu"


def test_classifier_round_trip(tmp_path):
    model = tiny_classifier(num_classes=3)
    inputs = random_inputs()
    path = checkpoint.save_task_model(model, str(tmp_path / "m"),
                                      extra_config={"id2label": {"0": "a", "1": "b", "2": "c"}})
    loaded = checkpoint.load_task_model(path)
    assert loaded.num_outputs == 3
    for width, depth in [(1.0, 1.0), (0.5, 0.5)]:
        np.testing.assert_allclose(loaded(inputs, width_mult=width, depth_mult=depth),
                                   model(inputs, width_mult=width, depth_mult=depth), atol=1e-6)
    assert json.loads(open(os.path.join(path, "config.json")).read())["id2label"]["2"] == "c"
    assert not [f for f in os.listdir(path) if f.endswith(".tmp")]


def test_bert_prefix_optional_and_new_head_when_labels_differ(tmp_path):
    model = tiny_classifier(num_classes=2)
    path = checkpoint.save_task_model(model, str(tmp_path / "m"))
    tensors = safetensors.numpy.load_file(os.path.join(path, "model.safetensors"))
    assert all(k.startswith(("bert.", "classifier.")) for k in tensors)
    safetensors.numpy.save_file({k.removeprefix("bert."): v for k, v in tensors.items()},
                                os.path.join(path, "model.safetensors"))
    loaded = checkpoint.load_task_model(path, num_classes=5)
    assert loaded.num_outputs == 5
    inputs = random_inputs()
    np.testing.assert_allclose(loaded.backbone(inputs)["pooled_output"],
                               model.backbone(inputs)["pooled_output"], atol=1e-6)


def _hf_dir(tmp_path, tensors, config=TINY):
    path = tmp_path / "bad"
    path.mkdir(exist_ok=True)
    (path / "config.json").write_text(json.dumps(hf_config.to_hf_dict(config)))
    safetensors.numpy.save_file(tensors, str(path / "model.safetensors"))
    return str(path)


def test_missing_tensor_named(tmp_path):
    tensors = hf_tensors.backbone_tensors(tiny_backbone())
    del tensors["bert.encoder.layer.1.output.dense.bias"]
    with pytest.raises(checkpoint.CheckpointError, match="encoder.layer.1.output.dense.bias"):
        checkpoint.load_backbone(_hf_dir(tmp_path, tensors))


def test_shape_mismatch_named(tmp_path):
    tensors = hf_tensors.backbone_tensors(tiny_backbone())
    tensors["bert.encoder.layer.0.intermediate.dense.weight"] = np.zeros((65, 32), "float32")
    with pytest.raises(checkpoint.CheckpointError,
                       match=r"intermediate.dense.weight has shape \(65, 32\)"):
        checkpoint.load_backbone(_hf_dir(tmp_path, tensors))


def test_corrupt_and_absent_checkpoints(tmp_path):
    path = _hf_dir(tmp_path, hf_tensors.backbone_tensors(tiny_backbone()))
    with open(os.path.join(path, "model.safetensors"), "r+b") as f:
        f.write(b"garbage!")
    with pytest.raises(checkpoint.CheckpointError, match="not a readable safetensors"):
        checkpoint.load_backbone(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        checkpoint.load_backbone(str(tmp_path / "nowhere"))


def test_unknown_tensors_reported(tmp_path, caplog):
    """Tensors the backbone does not use are named in a warning, except a pretraining head's
    (`cls.*`, loaded by `load_masked_lm` when augmentation asks for it)."""
    tensors = hf_tensors.backbone_tensors(tiny_backbone())
    tensors["cls.predictions.bias"] = np.zeros((TINY.vocab_size,), "float32")
    tensors["bert.encoder.layer.0.adapter.weight"] = np.zeros((4,), "float32")
    checkpoint.load_backbone(_hf_dir(tmp_path, tensors))
    assert "encoder.layer.0.adapter.weight" in caplog.text  # named without the "bert." prefix
    assert "cls.predictions.bias" not in caplog.text


def test_constructs_a_backbone_of_the_config(tmp_path):
    backbone = checkpoint.load_backbone(
        _hf_dir(tmp_path, hf_tensors.backbone_tensors(tiny_backbone())))
    assert isinstance(backbone, DynaBertBackbone) and backbone.bert_config == TINY
