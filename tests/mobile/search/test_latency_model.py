"""mobile.latency_model: fitting a fixed cost + per-layer terms to (synthetic) timings."""

import collections

import numpy as np
import pytest

from mobile.search import latency_model

Config = collections.namedtuple("Config", "layers heads neurons")
TRUE = (0.10, 0.11, 0.05, 0.0006)  # ms: fixed, per layer, per head, per neuron


def random_configs(count, seed, num_layers=6, num_heads=12, neurons=1536):
    rng = np.random.default_rng(seed)
    configs = []
    for _ in range(count):
        kept = tuple(sorted(rng.choice(num_layers, rng.integers(1, num_layers + 1),
                                       replace=False)))
        configs.append(Config(kept, tuple(int(h) for h in 3 * rng.integers(1, 5, len(kept))),
                              tuple(int(n) for n in 384 * rng.integers(1, 5, len(kept)))))
    return configs


def true_latency(configs):
    return np.asarray([TRUE[0] + TRUE[1] * len(c.layers) + TRUE[2] * sum(c.heads)
                       + TRUE[3] * sum(c.neurons) for c in configs])


def test_features():
    x = latency_model.features([Config((0, 2), (3, 6), (384, 768))])
    np.testing.assert_array_equal(x, [[1, 2, 9, 1152]])


@pytest.mark.parametrize("nonnegative", [True, False])
def test_fit_recovers_known_coefficients(nonnegative):
    configs = random_configs(30, seed=0)
    noise = 1 + 0.01 * np.random.default_rng(1).standard_normal(len(configs))  # 1% jitter
    model = latency_model.fit(configs, true_latency(configs) * noise, nonnegative)
    np.testing.assert_allclose(model.coefficients, TRUE, rtol=0.15, atol=0.02)
    held_out = random_configs(20, seed=2)
    errors = latency_model.relative_errors(model, held_out, true_latency(held_out))
    assert errors["max"] < 0.05 and errors["mean"] < 0.02


def test_exact_timings_fit_exactly_and_round_trip(tmp_path):
    configs = random_configs(12, seed=3)
    model = latency_model.fit(configs, true_latency(configs), info={"threads": 1})
    np.testing.assert_allclose(model.coefficients, TRUE, rtol=1e-6)
    model.save(str(tmp_path / "latency_model.json"))
    loaded = latency_model.load(str(tmp_path / "latency_model.json"))
    assert loaded == model and loaded.info == {"threads": 1, "fitted_on": 12}
    np.testing.assert_allclose(loaded.predict(configs), true_latency(configs))


def test_nonnegative_fit_keeps_costs_nonnegative():
    configs = random_configs(20, seed=4)
    # Timings that fall with depth would need a negative per-layer cost.
    latencies = 3.0 - 0.2 * np.asarray([len(c.layers) for c in configs])
    assert min(latency_model.fit(configs, latencies).coefficients) >= 0
    assert latency_model.fit(configs, latencies, nonnegative=False).coefficients[1] < 0


def test_split_held_out_keeps_fixed_indices_in_train():
    train, held = latency_model.split_held_out(20, 0.3, seed=0, always_train=range(5))
    assert len(held) == 6 and not set(held) & set(range(5))
    assert sorted(train + held) == list(range(20))
    assert latency_model.split_held_out(20, 0.3, seed=0, always_train=range(5))[1] == held


@pytest.mark.parametrize("configs, latencies, message", [
    (random_configs(3, 0), [1.0, 2.0, 3.0], "at least 4"),
    (random_configs(5, 0), [1.0] * 4, "5 configurations but 4"),
    (random_configs(5, 0), [1.0, 2.0, 0.0, 1.0, 1.0], "finite and positive"),
])
def test_bad_fits_raise_one_line(configs, latencies, message):
    with pytest.raises(ValueError, match=message):
        latency_model.fit(configs, latencies)


def test_bad_model_file_raises():
    with pytest.raises(ValueError, match="coefficients_ms"):
        latency_model.LatencyModel.from_dict({"coefficients": [1, 2]})


# --------------------------------------------------------------------------- measurement cache

def test_measurements_are_cached_and_retimed_only_when_timing_changes(tmp_path, monkeypatch):
    from dynabert_tf.elastic.layerwise import LayerwiseConfig
    from mobile.search import latency_measure
    from mobile.errors import ExportError

    exported, timed = [], []

    def export(model, config, path, seq_len, quantization):
        exported.append(config.name)
        with open(path, "wb") as f:
            f.write(b"x" * 10)
        return {"bytes": 10}

    def time_files(paths, settings, progress):
        timed.append(sorted(paths))
        return {name: {"latency_ms": {"median": 1.0}, "load_average": None} for name in paths}

    monkeypatch.setattr(latency_measure.export_lib, "export_layerwise", export)
    monkeypatch.setattr(latency_measure, "time_files", time_files)
    configs = [LayerwiseConfig((0,), (3,), (384,)), LayerwiseConfig((0, 2), (6, 3), (384, 768))]
    settings = {"architecture": {"num_layers": 6}, "seq_len": 128, "quantization": "none",
                "threads": 1, "runs": 10, "warmup": 1, "rounds": 2}
    entries = latency_measure.measure(None, configs, str(tmp_path), settings, "sha", False)
    assert sorted(exported) == sorted(c.name for c in configs) and len(timed) == 1
    assert entries[configs[0].name]["exported_from"] == "sha"
    latency_measure.measure(None, configs[:1], str(tmp_path), settings, "sha", False)
    assert len(exported) == 2 and len(timed) == 1  # all cached
    latency_measure.measure(None, configs, str(tmp_path), {**settings, "runs": 50}, None, False)
    assert len(exported) == 2 and timed[-1] == sorted(c.name for c in configs)  # re-timed only
    with pytest.raises(ExportError, match="exported with other settings"):
        latency_measure.measure(None, configs, str(tmp_path), {**settings, "seq_len": 64})


def test_sample_configs_are_distinct_and_skip_excluded():
    from dynabert_tf.elastic import layerwise
    from dynabert_tf.models.config import BertConfig
    from mobile.search import evolution, latency_measure

    cfg = BertConfig(vocab_size=100, hidden_size=384, num_layers=6, num_heads=12,
                     intermediate_size=1536)
    grid = [layerwise.from_cell(cfg, 1.0, 1.0)]
    space = evolution.Space.from_bert_config(cfg)
    configs = latency_measure.sample_configs(space, 20, seed=0, exclude=grid)
    assert len({c.name for c in configs}) == 20 and grid[0] not in configs
    assert latency_measure.sample_configs(space, 5, seed=0, exclude=grid) == configs[:5]
    depths = [len(c.layers) for c in configs]
    assert all(depths.count(d) >= 3 for d in range(1, 7)), depths  # shallow ones covered too
    for config in configs:
        layerwise.check(config, cfg)


def test_thread_cpu_clock_is_for_one_thread_only():
    from mobile.litert import timing
    from mobile.errors import ExportError

    with pytest.raises(ExportError, match="thread_cpu at one thread only"):
        timing.sample_latencies("unused.tflite", threads=2, clock="thread_cpu")
    with pytest.raises(ExportError, match="clock must be one of wall, thread_cpu"):
        timing.sample_latencies("unused.tflite", threads=1, clock="cpu")
