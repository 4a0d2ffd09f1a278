"""Full-integer TFLite: an attention mask that 8-bit activations can represent, and int8 /
int16x8 files of a tiny model that agree with the float model."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from ai_edge_litert.interpreter import Interpreter, OpResolverType
from dynabert_tf.layers import attention
from mobile import export as export_lib
from mobile.export import inputs as inputs_lib
from mobile.export import tflite as tflite_lib
from tests.helpers import TINY_DEEP, random_inputs, tiny_classifier

SEQ_LEN = 16
# Query / key kernels of the tiny model scaled so that its attention is as peaked as a trained
# model's (score spread ~10 within a row; the 0.02-std init gives ~0.1, near-uniform attention).
QK_SCALE = 12.0
# Bounds on 40 fixture inputs (1 to 13 of 16 positions padded), relative to the largest
# |logit| (~7). Measured: int8 max |Δlogit| 0.056 of it, int16x8 0.016, every label agrees.
INT8_MAX_RELATIVE_DIFF = 0.1
INT16X8_MAX_RELATIVE_DIFF = 0.04
MIN_AGREEMENT = 0.95
# The int8 SOFTMAX inputs' quantization step: measured 0.13 here (scores' range + 20 over 255
# steps); with the earlier additive -10000 mask it was ~39.
MAX_SOFTMAX_INPUT_STEP = 0.5


def masked_softmax_reference(scores, keep):
    """numpy softmax over the kept keys only; 0 for the others. keep: bool [batch, seq]."""
    keep = keep[:, None, None, :]
    shifted = np.where(keep, scores, -np.inf)
    exp = np.exp(shifted - shifted.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True)


def test_mask_scores_is_an_exact_mask_in_a_small_range():
    rng = np.random.default_rng(0)
    scores = rng.normal(0, 6, (2, 3, 4, 8)).astype("float32")
    keep = np.ones((2, 8), bool)
    keep[0, 5:] = False
    keep[1, 2:] = False
    scores[1, :, :, 5] = 60.0  # a padded key with the row's largest score is still left out
    bias = np.where(keep, 0.0, -10000.0).astype("float32")[:, None, None, :]
    masked = np.asarray(attention.mask_scores(tf.constant(scores), tf.constant(bias)))
    kept = np.broadcast_to(keep[:, None, None, :], scores.shape)
    np.testing.assert_array_equal(masked[kept], scores[kept])
    probs = np.asarray(tf.nn.softmax(masked))
    np.testing.assert_allclose(probs, masked_softmax_reference(scores, keep), atol=1e-7)
    # The range the quantizer sees: the scores' own plus the margin, not 10^4.
    assert masked.min() >= scores.min() - attention.MASK_MARGIN - 1e-4
    assert masked.max() <= scores.max()


def test_float_outputs_equal_those_of_the_additive_mask(monkeypatch):
    model = tiny_classifier()
    inputs = random_inputs(batch_size=3, seq_len=9, seed=3, pad_last=4)
    new = model(inputs, return_dict=True)
    monkeypatch.setattr(attention, "mask_scores", lambda scores, bias: scores + bias)
    old = model(inputs, return_dict=True)
    tokens = inputs["padding_mask"].astype(bool)
    np.testing.assert_allclose(np.asarray(new["sequence_output"])[tokens],
                               np.asarray(old["sequence_output"])[tokens], atol=1e-5)
    for name in ("pooled_output", "logits"):
        np.testing.assert_allclose(new[name], old[name], atol=1e-5)


def peaked_model():
    """The tiny model of test_mobile_export with a trained model's logit and attention spread."""
    keras.utils.set_random_seed(0)
    model = tiny_classifier(config=TINY_DEEP)
    rng = np.random.default_rng(0)
    for dense, std in ((model.backbone.pooler, 0.5), (model.head.dense, 1.0)):
        dense.kernel.assign(rng.normal(0, std, dense.kernel.shape))
    for layer in model.backbone.transformer_layers:
        for name in ("query_kernel", "key_kernel"):
            kernel = getattr(layer.attention, name)
            kernel.assign(kernel * QK_SCALE)
    return model


def softmax_input_steps(path):
    """The quantization step (scale) of every SOFTMAX input of a TFLite file."""
    interpreter = Interpreter(
        model_path=path,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    scales = [tensors[op["inputs"][0]]["quantization_parameters"]["scales"]
              for op in interpreter._get_ops_details() if op["op_name"] == "SOFTMAX"]
    return [float(s[0]) if len(s) else None for s in scales]  # None: a float input


def fully_connected_weight_types(path):
    """{output tensor name: weight dtype name} of every FULLY_CONNECTED op of a TFLite file."""
    interpreter = Interpreter(
        model_path=path,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    return {tensors[op["outputs"][0]]["name"]: np.dtype(tensors[op["inputs"][1]]["dtype"]).name
            for op in interpreter._get_ops_details() if op["op_name"] == "FULLY_CONNECTED"}


@pytest.mark.parametrize("quantization,max_relative_diff", [
    ("int8", INT8_MAX_RELATIVE_DIFF), ("int16x8", INT16X8_MAX_RELATIVE_DIFF)])
def test_integer_export_agrees_with_float(tmp_path, quantization, max_relative_diff):
    model = peaked_model()
    # Calibration on variable-length random tokens (8 to 16 of 16 positions), as the fixture.
    representative = inputs_lib.random_token_inputs(32, SEQ_LEN, TINY_DEEP.vocab_size, seed=5)
    path = str(tmp_path / "cell.tflite")
    written = export_lib.export_cell(model, 1.0, 1.0, path, SEQ_LEN, quantization,
                                     representative)
    assert written["inputs"][0]["dtype"] == "int32" and "QUANTIZE" in written["ops"]
    runner = Interpreter(model_path=path).get_signature_runner("serving_default")
    fixture = [random_inputs(batch_size=1, seq_len=SEQ_LEN, seed=seed, pad_last=1 + seed % 13)
               for seed in range(40)]
    got = np.concatenate([runner(**x)["logits"] for x in fixture])
    expected = np.concatenate([np.asarray(model(x)) for x in fixture])
    scale = np.abs(expected).max()
    assert np.mean(got.argmax(-1) == expected.argmax(-1)) >= MIN_AGREEMENT
    assert np.abs(got - expected).max() <= max_relative_diff * scale
    if quantization == "int8":
        # SOFTMAX stays float (INT8_FLOAT_OPS): its input has no quantization step.
        assert softmax_input_steps(path) == [None] * TINY_DEEP.num_layers
        # The FFN output projections stay float (INT8_FLOAT_NODES), every other projection int8.
        weights = fully_connected_weight_types(path)
        float_ones = sorted(name for name, dtype in weights.items() if dtype == "float32")
        assert len(float_ones) == TINY_DEEP.num_layers, weights
        assert all("feedforward" in name and "output_projection" in name for name in float_ones)
        assert {dtype for name, dtype in weights.items() if name not in float_ones} == {"int8"}


def test_int8_softmax_input_step_is_small_with_the_mask(tmp_path, monkeypatch):
    """With SOFTMAX quantized too (as an int8-only accelerator runs it), the mask keeps its
    input's range to the scores' own: the additive -10000 mask gave a step of ~40 here."""
    monkeypatch.setattr(tflite_lib, "INT8_FLOAT_OPS", tflite_lib.LAYERNORM_RESIDUAL_OPS)
    representative = inputs_lib.random_token_inputs(32, SEQ_LEN, TINY_DEEP.vocab_size, seed=5)
    path = str(tmp_path / "cell.tflite")
    export_lib.export_cell(peaked_model(), 1.0, 1.0, path, SEQ_LEN, "int8", representative)
    steps = softmax_input_steps(path)
    assert len(steps) == TINY_DEEP.num_layers and max(steps) < MAX_SOFTMAX_INPUT_STEP, steps
