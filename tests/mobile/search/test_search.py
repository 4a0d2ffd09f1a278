"""mobile.search: the evolutionary search (synthetic fitness and latency), the dev halves and
the Pareto plot of found configurations."""

import os

import numpy as np
import pytest

from dynabert_tf.elastic import layerwise
from dynabert_tf.models.config import BertConfig
from mobile.search import evolution, latency_model

MINILM = BertConfig(vocab_size=100, hidden_size=384, num_layers=6, num_heads=12,
                    intermediate_size=1536)
SPACE = evolution.Space.from_bert_config(MINILM)
LATENCY = latency_model.LatencyModel((0.10, 0.11, 0.05, 0.0006))  # ms


def size(config):
    """A fitness that grows with every head and neuron: it presses against any budget."""
    return sum(config.heads) + sum(config.neurons) / 128


def test_space_of_minilm_and_round_trip():
    assert SPACE.head_choices == (3, 6, 9, 12)
    assert SPACE.neuron_choices == (384, 768, 1152, 1536)
    config = layerwise.LayerwiseConfig((0, 2, 5), (12, 3, 6), (384, 1536, 768))
    genome = SPACE.genome(config)
    assert SPACE.config(genome) == config
    assert genome[1] == (False, 12, 1536)  # a dropped layer keeps full-width genes
    layerwise.check(SPACE.config(SPACE.smallest_genome()), MINILM)


def test_mutation_changes_one_gene_and_keeps_a_layer():
    rng = np.random.default_rng(0)
    genome = SPACE.smallest_genome()
    for _ in range(200):
        child = SPACE.mutate(genome, rng)
        assert sum(a != b for a, b in zip(genome, child)) == 1
        assert any(gene[0] for gene in child)
        layerwise.check(SPACE.config(child), MINILM)
        genome = child


@pytest.mark.parametrize("budget_ms", [1.0, 2.0, 3.5])
def test_search_respects_the_budget(budget_ms):
    grid = [layerwise.from_cell(MINILM, w, d) for w in (1.0, 0.5, 0.25) for d in (1.0, 0.5)]
    result = evolution.evolve(SPACE, size, LATENCY.predict_one, budget_ms, population=8,
                              parents=3, mutations=6, crossovers=3, generations=4, seed=0,
                              start=grid)
    assert LATENCY.predict_one(result.best) <= budget_ms
    assert result.best_latency == pytest.approx(LATENCY.predict_one(result.best))
    assert all(LATENCY.predict_one(config) <= budget_ms for config, _, _ in result.evaluated)
    assert all(a <= b for a, b in zip(result.history, result.history[1:]))  # elitist
    fitting = [size(c) for c in grid if LATENCY.predict_one(c) <= budget_ms]
    assert result.best_fitness >= max(fitting, default=-np.inf)  # grid cells start it


def test_search_is_deterministic_by_seed():
    run = lambda seed: evolution.evolve(SPACE, size, LATENCY.predict_one, 2.0, population=6,
                                        parents=2, mutations=4, crossovers=2, generations=3,
                                        seed=seed)
    first, again, other = run(1), run(1), run(2)
    assert [c.name for c, _, _ in first.evaluated] == [c.name for c, _, _ in again.evaluated]
    assert first.best == again.best and first.history == again.history
    assert [c.name for c, _, _ in first.evaluated] != [c.name for c, _, _ in other.evaluated]


def test_search_finds_the_known_optimum():
    # Fitness peaks at one non-grid configuration inside the budget; larger ones score less.
    target = layerwise.LayerwiseConfig((0, 1, 3, 5), (12, 6, 9, 3), (1536, 384, 768, 1152))
    target_genome = SPACE.genome(target)

    def fitness(config):
        genome = SPACE.genome(config)
        return -sum((a[0] != b[0]) * 3 + (a[0] and b[0]) * (abs(a[1] - b[1]) / 3
                                                             + abs(a[2] - b[2]) / 384)
                    for a, b in zip(genome, target_genome))

    budget = LATENCY.predict_one(target) + 0.3
    calls = []
    result = evolution.evolve(SPACE, lambda c: calls.append(c) or fitness(c),
                              LATENCY.predict_one, budget, population=16, parents=4,
                              mutations=8, crossovers=4, generations=15, seed=0)
    assert result.best == target and result.best_fitness == 0
    assert len(calls) == len({c.name for c in calls})  # each candidate scored once


def test_search_sizes_and_impossible_budget_raise():
    with pytest.raises(ValueError, match="below the smallest configuration"):
        evolution.evolve(SPACE, size, LATENCY.predict_one, 0.2)
    with pytest.raises(ValueError, match="bad search sizes"):
        evolution.evolve(SPACE, size, LATENCY.predict_one, 2.0, population=2, parents=3)


# --------------------------------------------------------------------------- dev halves

@pytest.fixture(scope="module")
def tiny_workdir(tmp_path_factory):
    from tests.mobile.export.test_mobile_export import make_workdir

    return make_workdir(str(tmp_path_factory.mktemp("search_work")))


def test_dev_halves_split_batch_and_score(tiny_workdir):
    from dynabert_tf.io import checkpoint
    from dynabert_tf.tasks import metrics as metrics_lib
    from mobile.search import dev_halves

    vocab = os.path.join(tiny_workdir, "final", "vocab.txt")
    search, report = dev_halves.split_dev("rt_polarity", vocab, seq_len=32, seed=0,
                                          batch_size=100)
    assert (len(search), len(report)) == (527, 527)  # the 1,054 rt_polarity dev sentences
    assert not set(search.indices) & set(report.indices)
    assert set(search.indices) == set(np.random.default_rng(0).permutation(1054)[:527])
    lengths = [batch["padding_mask"].numpy().sum(1) for batch in search.batches]
    for batch, length in zip(search.batches, lengths):  # padded to the batch's longest
        assert batch["token_ids"].shape[1] == length.max() <= 32
    assert all(a.max() <= b.min() for a, b in zip(lengths, lengths[1:]))  # sorted by length

    model = checkpoint.load_task_model(os.path.join(tiny_workdir, "final"))
    config = layerwise.LayerwiseConfig((1, 3), (2, 4), (32, 64))
    logits = dev_halves.predict(model, config, report)
    first = np.asarray(model(report.batches[0], subnetwork=config))
    np.testing.assert_allclose(logits[:len(first)], first, atol=1e-6)
    cached = dev_halves.PrefixCachedPredictor(model, report, max_states=3)
    np.testing.assert_allclose(cached(config), logits, atol=1e-5)
    child = layerwise.LayerwiseConfig((1, 3), (2, 2), (32, 64))  # shares layer 1 with config
    np.testing.assert_allclose(cached(child), dev_halves.predict(model, child, report),
                               atol=1e-5)
    assert cached.layers_run == 3 and len(cached.states) == 3
    accuracy = dev_halves.metric("rt_polarity", logits, report.labels, "accuracy")
    assert accuracy == metrics_lib.compute_metrics("rt_polarity", logits,
                                                   report.labels)["accuracy"]
    noise = dev_halves.bootstrap("rt_polarity", "accuracy", report.labels, logits, logits,
                                 samples=200)
    binomial = np.sqrt(accuracy * (1 - accuracy) / len(report))
    assert noise["difference_std"] == 0 and abs(noise["std"][0] - binomial) < 0.3 * binomial


def test_pareto_draws_searched_configurations(tmp_path):
    from mobile import pareto

    timing = lambda ms: {"1": {"median": ms}}
    cells = [{"cell": "w1.00_d1.00", "width_mult": 1.0, "depth_mult": 1.0, "bytes": 2e6,
              "flops": 1e9, "params": 1e6, "latency_ms": timing(4.0),
              "metrics": {"accuracy": 0.86}},
             {"cell": "w0.25_d0.50", "width_mult": 0.25, "depth_mult": 0.5, "bytes": 1e6,
              "flops": 1e8, "params": 5e5, "latency_ms": timing(1.0),
              "metrics": {"accuracy": 0.80}}]
    searched = [{"cell": "mix_l0.2_h6.3_n768.384", "label": "S1 (≤2 ms)", "bytes": 1.5e6,
                 "flops": 4e8, "params": 7e5, "latency_ms": timing(1.9),
                 "metrics": {"accuracy": 0.84}}]
    manifest = {"task": "rt_polarity", "seq_len": 128, "primary_metric": "accuracy",
                "quantization": "dynamic_range", "cells": cells}
    path = pareto.plot_pareto(manifest, str(tmp_path / "p.png"), 1, searched, [2.0],
                              "dev accuracy, report half")
    assert os.path.getsize(path) > 1000
