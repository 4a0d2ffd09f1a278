import keras
import numpy as np
import pytest
import tensorflow as tf

from dynabert_tf.elastic import rewiring
from helpers import TINY, random_inputs, tiny_classifier


def _batches(n=2, batch_size=4, seq_len=7):
    return [(random_inputs(batch_size, seq_len, seed=seed),
             np.random.default_rng(seed).integers(0, 2, batch_size))
            for seed in range(n)]


@pytest.fixture
def float64():
    """Finite differences of a barely trained tiny model need float64 to resolve ~1e-6."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_dtype_policy(previous)


def _loss(model, features, labels, head_mask=None):
    outputs = model(features, head_mask=head_mask, training=False, return_dict=True)
    return float(model.head.label_loss(outputs, labels))


def test_importance_shapes_and_reset_between_batches():
    model = tiny_classifier()
    batches = _batches(2)
    both = rewiring.compute_importance(model, batches, progress=False)
    assert both["head"].shape == (TINY.num_layers, TINY.num_heads)
    assert both["neuron"].shape == (TINY.num_layers, TINY.intermediate_size)
    assert (both["head"] > 0).all()
    first = rewiring.compute_importance(model, batches[:1], progress=False)
    second = rewiring.compute_importance(model, batches[1:], progress=False)
    for key in ("head", "neuron"):
        np.testing.assert_allclose(both[key], first[key] + second[key], rtol=1e-6)
    limited = rewiring.compute_importance(model, batches, max_batches=1, progress=False)
    np.testing.assert_allclose(limited["head"], first["head"], rtol=1e-6)


def test_head_importance_equals_independent_computations(float64):
    model = tiny_classifier()
    features, labels = _batches(1)[0]
    scores = rewiring.compute_importance(model, [(features, labels)], progress=False)["head"]
    # (1) With m = 1, dL/dm_h = sum over head h's attention-output kernel of w * dL/dw.
    kernels = [layer.attention.output_kernel for layer in model.backbone.transformer_layers]
    with tf.GradientTape() as tape:
        loss = model.head.label_loss(model(features, training=False, return_dict=True), labels)
    grads = tape.gradient(loss, kernels)
    taylor = np.stack([np.abs((k.numpy() * g.numpy()).sum(axis=(1, 2)))
                       for k, g in zip(kernels, grads)])
    np.testing.assert_allclose(scores, taylor, rtol=1e-9)
    # (2) Central finite difference of the loss in each head-mask entry.
    eps = 1e-4
    for layer in range(TINY.num_layers):
        for head in range(TINY.num_heads):
            mask = np.ones((TINY.num_layers, TINY.num_heads))
            mask[layer, head] = 1 + eps
            up = _loss(model, features, labels, mask)
            mask[layer, head] = 1 - eps
            down = _loss(model, features, labels, mask)
            assert abs(up - down) / (2 * eps) == pytest.approx(scores[layer, head], rel=1e-5)


def test_neuron_importance_equals_finite_difference_of_scaling_the_neuron(float64):
    """sum_i w_i dL/dw_i over a neuron's weights is dL/dalpha of scaling them all by alpha."""
    model = tiny_classifier()
    features, labels = _batches(1)[0]
    scores = rewiring.compute_importance(model, [(features, labels)], progress=False)["neuron"]
    ffn = model.backbone.transformer_layers[1].feedforward
    originals = [v.numpy().copy() for v in
                 (ffn.intermediate_kernel, ffn.intermediate_bias, ffn.output_kernel)]
    eps = 1e-4
    for neuron in range(0, TINY.intermediate_size, 4):
        values = []
        for alpha in (1 + eps, 1 - eps):
            w_in, b_in, w_out = (x.copy() for x in originals)
            w_in[neuron] *= alpha  # [intermediate, hidden]: neuron rows
            b_in[neuron] *= alpha
            w_out[neuron] *= alpha
            ffn.intermediate_kernel.assign(w_in)
            ffn.intermediate_bias.assign(b_in)
            ffn.output_kernel.assign(w_out)
            values.append(_loss(model, features, labels))
        assert abs(values[0] - values[1]) / (2 * eps) == pytest.approx(scores[1, neuron],
                                                                       rel=1e-5)


def test_rewire_keeps_logits_and_sorts_importance():
    model = tiny_classifier()
    features = random_inputs(4, 7, seed=5)
    batches = _batches(2)
    importance = rewiring.compute_importance(model, batches, progress=False)
    before = model(features, training=False).numpy()
    old_query = model.backbone.transformer_layers[0].attention.query_kernel.numpy()
    order = rewiring.rewire(model, importance)
    assert any((row != np.arange(len(row))).any() for row in order["head"])
    assert any((row != np.arange(len(row))).any() for row in order["neuron"])
    np.testing.assert_allclose(model(features, training=False).numpy(), before, atol=1e-5)
    new_query = model.backbone.transformer_layers[0].attention.query_kernel.numpy()
    np.testing.assert_array_equal(new_query[0], old_query[order["head"][0, 0]])
    # Width slicing keeps a prefix; after rewiring the prefix holds the highest scores.
    again = rewiring.compute_importance(model, batches, progress=False)
    for key in ("head", "neuron"):
        expected = np.take_along_axis(importance[key], order[key], axis=1)
        np.testing.assert_allclose(again[key], expected, rtol=1e-3, atol=1e-7)
        assert (np.diff(expected, axis=1) <= 0).all()


def test_rewire_accepts_backbone_and_rejects_bad_shapes():
    model = tiny_classifier()
    importance = {"head": np.arange(8.0).reshape(2, 4), "neuron": np.ones((2, 64))}
    order = rewiring.rewire(model.backbone, importance)
    np.testing.assert_array_equal(order["head"], [[3, 2, 1, 0], [3, 2, 1, 0]])
    np.testing.assert_array_equal(order["neuron"], np.tile(np.arange(64), (2, 1)))  # stable
    with pytest.raises(ValueError, match=r"importance\['head'\] must have shape \(2, 4\)"):
        rewiring.rewire(model, {"head": np.ones((2, 3)), "neuron": np.ones((2, 64))})


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    importance = {"head": rng.random((2, 4)), "neuron": rng.random((2, 64))}
    path = str(tmp_path / "importance.npz")
    rewiring.save_importance(path, importance)
    loaded = rewiring.load_importance(path)
    np.testing.assert_array_equal(loaded["head"], importance["head"])
    np.testing.assert_array_equal(loaded["neuron"], importance["neuron"])
    order = rewiring.importance_order(importance)
    np.testing.assert_array_equal(loaded["head_order"], order["head"])
    np.testing.assert_array_equal(loaded["neuron_order"], order["neuron"])
