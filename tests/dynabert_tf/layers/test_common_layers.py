"""The training-path LayerNorm and Dropout of `layers/common.py` against Keras' own; the
output projection's export layout against the plain matmul."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from dynabert_tf.layers import common
from dynabert_tf.layers.common import (ACTIVATIONS, Dropout, LayerNorm, gelu_for_training,
                                      output_projection, rows_outer_output_projections)


@pytest.mark.parametrize("shape", [(4, 6, 10), (5, 12)])
def test_layer_norm_training_path_equals_keras(shape):
    rng = np.random.default_rng(0)
    ours = LayerNorm(epsilon=1e-12)
    ours.build((None, shape[-1]))
    ours.set_weights([rng.normal(1, 0.3, shape[-1]), rng.normal(0, 0.3, shape[-1])])
    reference = keras.layers.LayerNormalization(epsilon=1e-12)
    reference.build((None, shape[-1]))
    reference.set_weights(ours.get_weights())
    x = tf.constant(rng.normal(2, 3, shape), tf.float32)
    upstream = tf.constant(rng.normal(size=shape), tf.float32)
    results = []
    for layer, kwargs in ((ours, {"training": True}), (reference, {})):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, **kwargs)
            loss = tf.reduce_sum(y * upstream)
        results.append([y, *tape.gradient(loss, [x, layer.gamma, layer.beta])])
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours(x), results[1][0], atol=1e-6)  # inference: Keras' op


@pytest.mark.parametrize("shape", [(64, 32, 48), (16, 9, 33)])  # even and odd last axis
def test_dropout_drops_at_the_rate_and_keeps_the_mean(shape):
    layer = Dropout(0.1, seed=3)
    x = tf.ones(shape)
    first = np.asarray(layer(x, training=True))
    second = np.asarray(layer(x, training=True))
    assert first.shape == shape
    dropped = float(np.mean(first == 0.0))
    assert abs(dropped - 0.1) < 4 * np.sqrt(0.1 * 0.9 / first.size)
    kept_scale = np.unique(first[first != 0.0])
    np.testing.assert_allclose(kept_scale, [65536 / (65536 - 6554)])  # mean kept exactly
    assert (first != second).any()  # a fresh mask per call
    np.testing.assert_array_equal(layer(x, training=False), x)


def test_dropout_gradient_is_the_mask():
    layer = Dropout(0.5, seed=1)
    x = tf.constant(np.random.default_rng(0).normal(size=(8, 10)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
    np.testing.assert_allclose(tape.gradient(y, x), np.asarray(y) / np.asarray(x), rtol=1e-6)


def test_training_gelu_equals_the_exact_gelu_and_its_gradient():
    x = tf.constant(np.linspace(-6.0, 6.0, 241), tf.float32)
    results = []
    for gelu in (gelu_for_training, ACTIVATIONS["gelu"]):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = gelu(x)
        results.append((y, tape.gradient(y, x)))
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_rows_outer_output_projection_is_the_same_matmul():
    """Inside `rows_outer_output_projections` the traced graph multiplies by a [1, n, hidden]
    kernel (TFLite BATCH_MATMUL); the result is the 2-D matmul's, and the switch ends with
    its block."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(2 * 5, 6)), tf.float32)  # batch 2, seq 5, n 6
    kernel = tf.constant(rng.normal(size=(6, 4)), tf.float32)
    batch_shape = tf.constant([2, 5])
    graph_ops = lambda: {op.type for op in tf.function(output_projection).get_concrete_function(
        x, kernel, batch_shape).graph.get_operations()}
    assert "BatchMatMulV2" not in graph_ops()
    with rows_outer_output_projections():
        assert "BatchMatMulV2" in graph_ops()
        rows_outer = output_projection(x, kernel, batch_shape)
    assert "BatchMatMulV2" not in graph_ops()
    np.testing.assert_allclose(rows_outer, x @ kernel, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("units", [None, 7])  # all hidden units; the leading 7 (hidden_mult)
def test_fused_residual_layer_norm_equals_add_then_layer_norm(monkeypatch, units):
    """FUSE_RESIDUAL_LAYER_NORM's single custom gradient gives the unfused output and the
    gradients to x, the residual, gamma and beta (float32, 1e-5)."""
    rng = np.random.default_rng(1)
    layer = LayerNorm(epsilon=1e-12)
    layer.build((None, 10))
    layer.set_weights([rng.normal(1, 0.3, 10), rng.normal(0, 0.3, 10)])
    hidden = units or 10
    x = tf.constant(rng.normal(0, 2, (3, 5, hidden)), tf.float32)
    residual = tf.constant(rng.normal(1, 3, (3, 5, hidden)), tf.float32)
    upstream = tf.constant(rng.normal(size=(3, 5, hidden)), tf.float32)
    results = []
    for fused in (True, False):
        monkeypatch.setattr(common, "FUSE_RESIDUAL_LAYER_NORM", fused)
        with tf.GradientTape() as tape:
            tape.watch([x, residual])
            y = layer(x, residual=residual, training=True, units=units)
            loss = tf.reduce_sum(y * upstream)
        results.append([y, *tape.gradient(loss, [x, residual, layer.gamma, layer.beta])])
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(results[0][1], results[0][2])  # the add's gradient, twice
    np.testing.assert_allclose(layer(x, residual=residual, units=units), results[1][0],
                               atol=1e-5)  # inference: the same function


def test_layer_norm_in_bfloat16_keeps_float32_statistics_and_weights():
    """Under mixed_bfloat16 the training LayerNorm takes and returns bfloat16, keeps gamma
    and beta float32 (and their gradients), and equals the float32 result to bfloat16's
    rounding of the input and output."""
    rng = np.random.default_rng(2)
    x32 = tf.constant(rng.normal(100, 0.5, (4, 16)), tf.float32)  # a large mean
    layers = []
    for policy in ("float32", "mixed_bfloat16"):
        layer = LayerNorm(epsilon=1e-12, dtype=policy)
        layer.build((None, 16))
        layer.set_weights([rng.normal(1, 0.3, 16), rng.normal(0, 0.3, 16)] if not layers
                          else layers[0].get_weights())
        layers.append(layer)
    x16 = tf.cast(x32, tf.bfloat16)
    outputs = []
    for layer, x in zip(layers, (tf.cast(x16, tf.float32), x16)):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32))
        outputs.append((y, tape.gradient(loss, [layer.gamma, layer.beta])))
    (want, want_grads), (got, got_grads) = outputs
    assert got.dtype == tf.bfloat16 and layers[1].gamma.dtype == "float32"
    assert all(g.dtype == tf.float32 for g in got_grads)
    np.testing.assert_allclose(tf.cast(got, tf.float32), want, rtol=1e-2, atol=1e-2)
    for g, w in zip(got_grads, want_grads):
        np.testing.assert_allclose(g, w, rtol=1e-2, atol=5e-2)
