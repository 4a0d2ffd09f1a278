import keras
import numpy as np
import pytest

from dynabert_tf import optimization
from helpers import tiny_classifier


def test_schedule_warms_up_then_decays_linearly_to_zero():
    schedule = optimization.WarmupLinearDecay(1e-3, total_steps=100, warmup_steps=10)
    values = {s: float(schedule(s)) for s in (0, 5, 10, 55, 100, 150)}
    assert values[0] == 0.0
    np.testing.assert_allclose(values[5], 5e-4, rtol=1e-6)
    np.testing.assert_allclose(values[10], 1e-3, rtol=1e-6)
    np.testing.assert_allclose(values[55], 5e-4, rtol=1e-6)  # (100-55)/(100-10) of the peak
    assert values[100] == 0.0 and values[150] == 0.0


def test_schedule_without_warmup_starts_at_peak():
    schedule = optimization.WarmupLinearDecay(2.0, total_steps=4, warmup_steps=0)
    np.testing.assert_allclose([float(schedule(s)) for s in range(5)], [2.0, 1.5, 1.0, 0.5, 0.0])


def test_schedule_config_round_trip():
    schedule = optimization.WarmupLinearDecay(3e-5, total_steps=50, warmup_steps=5)
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule))
    assert isinstance(restored, optimization.WarmupLinearDecay)
    assert restored.get_config() == schedule.get_config()
    assert float(restored(20)) == pytest.approx(float(schedule(20)))


def test_create_optimizer_wires_schedule_and_clipping():
    optimizer = optimization.create_optimizer(5e-5, total_steps=1000)
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert optimizer.global_clipnorm == 1.0
    assert optimizer.weight_decay == 0.01
    schedule = keras.optimizers.schedules.deserialize(optimizer.get_config()["learning_rate"])
    assert isinstance(schedule, optimization.WarmupLinearDecay)
    assert (schedule.total_steps, schedule.warmup_steps) == (1000, 100)


def test_weight_decay_skips_layer_norm_and_biases():
    """Zero gradients: Adam moves nothing, so only the decay (1 - lr * wd) shows."""
    model = tiny_classifier()
    variables = model.trainable_variables
    optimizer = optimization.create_optimizer(0.5, total_steps=10, warmup_proportion=0.0,
                                              weight_decay=0.1)
    before = [v.numpy().copy() for v in variables]
    optimizer.apply([np.zeros(v.shape, "float32") for v in variables], variables)
    decayed, kept = set(), set()
    for v, old in zip(variables, before):
        if np.allclose(v.numpy(), old, rtol=0, atol=0):
            kept.add(v.name)
        else:
            np.testing.assert_allclose(v.numpy(), old * (1 - 0.5 * 0.1), rtol=1e-6)
            decayed.add(v.name)
    assert kept == {"gamma", "beta", "bias", "query_bias", "key_bias", "value_bias",
                    "output_bias", "intermediate_bias"}
    assert decayed == {"token_embeddings", "position_embeddings", "segment_embeddings",
                       "query_kernel", "key_kernel", "value_kernel", "output_kernel",
                       "intermediate_kernel", "kernel"}


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="warmup_proportion"):
        optimization.create_optimizer(1e-5, 100, warmup_proportion=1.0)
    with pytest.raises(ValueError, match="total_steps"):
        optimization.create_optimizer(1e-5, 0)
    with pytest.raises(ValueError, match="peak_learning_rate"):
        optimization.create_optimizer(0.0, 10)
