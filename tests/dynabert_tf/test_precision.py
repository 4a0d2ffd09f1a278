"""Mixed precision: the Keras global policy honoured by the library (the Keras user's path),
every grid cell's bfloat16 logits against float32's, the attention mask in bfloat16, the
policy scope, and the TF-free bfloat16 detection."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from dynabert_tf import precision
from dynabert_tf.core import cpu_features
from dynabert_tf.elastic import rewiring, subnetwork
from dynabert_tf.layers.attention import MASK_MARGIN, attention_probs
from tests.helpers import TINY_DEEP, random_inputs, tiny_classifier, tiny_classifier_with_offsets

WIDTHS, DEPTHS = (1.0, 0.75, 0.5, 0.25), (1.0, 0.75, 0.5)
# bfloat16 keeps 8 significant bits (relative rounding 2^-9 per op); the tiny model's logits
# (magnitude ~0.1) agreed with float32's to 4e-4 at most over the 12 cells: 5e-3 absolute.
LOGIT_TOLERANCE = 5e-3


@pytest.fixture(autouse=True)
def _float32_after():
    yield
    keras.mixed_precision.set_global_policy("float32")  # later tests build float32 models


def _copy(model, policy):
    """A model like `model` (a tiny classifier) built under `policy`, same weights."""
    with precision.policy(policy):
        other = tiny_classifier(num_classes=model.num_outputs, config=model.bert_config)
    other.set_weights(model.get_weights())
    return other


def test_policy_scope_restores_the_previous_policy_and_rejects_unknown_names():
    with precision.policy("mixed_bfloat16"):
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"
    with pytest.raises(ValueError, match="precision must be one of float32, mixed_bfloat16, "
                                         "mixed_float16, got 'bfloat16'"):
        with precision.policy("bfloat16"):
            pass
    assert keras.mixed_precision.global_policy().name == "float32"


def test_global_mixed_bfloat16_policy_builds_and_fits():
    """keras.mixed_precision.set_global_policy("mixed_bfloat16") then the backbone and
    `model.fit`: bfloat16 compute, float32 variables, float32 logits, a finite loss that
    falls."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = tiny_classifier(dropout=0.0)
    assert model.backbone.compute_dtype == "bfloat16"
    assert {v.dtype for v in model.weights if "seed_generator" not in v.path} == {"float32"}
    inputs = random_inputs(batch_size=16, seq_len=6, pad_last=2, seed=3)
    labels = (inputs["token_ids"][:, 1] % 2).astype("int32")
    outputs = model.backbone(inputs, training=True)
    assert outputs["sequence_output"].dtype == tf.bfloat16
    assert model(inputs).dtype == tf.float32
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(inputs, labels, batch_size=8, epochs=6, verbose=0).history["loss"]
    assert np.isfinite(history).all() and history[-1] < history[0], history


def test_every_cell_in_bfloat16_is_close_to_float32():
    """The 12-cell grid's logits under mixed_bfloat16 against float32's, same weights."""
    model = tiny_classifier_with_offsets(num_classes=3, config=TINY_DEEP)
    mixed = _copy(model, "mixed_bfloat16")
    inputs = random_inputs(batch_size=4, seq_len=9, pad_last=3)
    want = model.call_grid(inputs, WIDTHS, DEPTHS)
    got = mixed.call_grid(inputs, WIDTHS, DEPTHS)
    assert len(got) == 12
    for cell, outputs in got.items():
        assert outputs["logits"].dtype == tf.float32
        np.testing.assert_allclose(outputs["logits"], want[cell]["logits"],
                                   atol=LOGIT_TOLERANCE, err_msg=str(cell))
        assert outputs["hidden_states"][-1].dtype == tf.bfloat16


def test_attention_mask_stays_below_the_row_in_bfloat16():
    """A row of large equal bfloat16 scores: in bfloat16 arithmetic `min - 20` would round
    back to min (its spacing there is 512) and the padded keys would share the row's
    weight; masked in float32 they keep e^-20 of it."""
    scores = tf.fill((1, 1, 1, 6), tf.constant(-99840.0, tf.bfloat16))  # exact in bfloat16
    bias = tf.constant([0.0, 0.0, 0.0, 0.0, -1e4, -1e4], tf.bfloat16)[None, None, None, :]
    probs = attention_probs(scores, bias)
    assert probs.dtype == tf.bfloat16
    probs = np.asarray(tf.cast(probs, tf.float32))[0, 0, 0]
    np.testing.assert_allclose(probs[:4], 0.25, rtol=1e-2)
    assert (probs[4:] < 2 * np.exp(-MASK_MARGIN)).all(), probs


def test_importance_and_extraction_under_bfloat16():
    """Taylor importance of a bfloat16 model: float32 scores close to the float32 model's
    (same head ranking); a cell extracted under the mixed policy computes in bfloat16 and
    gives the dynamic model's logits at that cell."""
    model = tiny_classifier_with_offsets(num_classes=2, config=TINY_DEEP)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    mixed = _copy(model, "mixed_bfloat16")
    batches = [(random_inputs(batch_size=4, seq_len=7, seed=s), np.array([0, 1, 1, 0]))
               for s in range(2)]
    want = rewiring.compute_importance(model, batches, progress=False)
    got = rewiring.compute_importance(mixed, batches, progress=False)
    for key in ("head", "neuron"):
        scale = np.abs(want[key]).max()
        np.testing.assert_allclose(got[key], want[key], atol=0.05 * scale, err_msg=key)
    np.testing.assert_array_equal(np.argsort(-got["head"], axis=1),
                                  np.argsort(-want["head"], axis=1))
    cell = subnetwork.extract_subnetwork(mixed, 0.5, 0.75)
    assert cell.backbone.compute_dtype == "bfloat16" and cell.head.compute_dtype == "bfloat16"
    inputs = random_inputs(batch_size=2, seq_len=7)
    np.testing.assert_allclose(cell(inputs), mixed(inputs, width_mult=0.5, depth_mult=0.75),
                               atol=1e-2)


@pytest.mark.parametrize("flags, expected", [
    ("fpu sse avx512f avx512_bf16 amx_tile", True), ("fpu amx_bf16 amx_tile", True),
    ("fpu sse avx2 avx512f", False)])
def test_bf16_supported_reads_the_cpu_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: X\nflags\t\t: {flags}\n\n")
    assert cpu_features.bf16_supported(str(cpuinfo)) is expected
    assert cpu_features.bf16_supported(str(tmp_path / "missing")) is False
