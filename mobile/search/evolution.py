"""Evolutionary search over per-layer sub-networks under a latency budget (HAT's search).

A candidate is a genome: one gene (kept, heads, neurons) per layer of the parent model,
heads and neurons among the allowed counts (`layerwise.head_choices` / `neuron_choices`:
multiples of the grid's step, 3 of 12 heads, 384 of 1536 neurons). A
dropped layer keeps its width genes, so a later mutation that brings it back restores them
(as HAT keeps the genes of layers beyond the sampled depth). `Space.config` turns a genome
into the `LayerwiseConfig` the model runs.

Each generation keeps the `parents` fittest candidates, adds `mutations` mutated parents
(one gene changed: a layer dropped or restored, or one layer's heads or neurons redrawn)
and `crossovers` children of two parents (each layer's gene from either), all within the
budget and none seen before; such children are redrawn, so every generation spends its
evaluations on new candidates. The first population holds the starting
configurations that fit (e.g. the grid cells) and random genomes within the budget. Needs
numpy only; the fitness and latency functions are the caller's, and every draw comes from
one `numpy.random.default_rng(seed)`, so a search is repeatable.

    space = evolution.Space.from_bert_config(bert_config)
    result = evolution.evolve(space, fitness=dev_accuracy, latency=model.predict_one,
                              budget_ms=2.0, seed=0)
    result.best, result.best_fitness, result.best_latency
"""

import dataclasses
import typing

import numpy as np

MAX_DRAWS = 200  # tries to draw a child within the budget before giving up on it


@dataclasses.dataclass(frozen=True)
class Space:
    """Per-layer choices of `num_layers` layers: kept or not, and the kept layer's head and
    FFN neuron counts (increasing tuples; `layerwise.head_choices` / `neuron_choices`)."""

    num_layers: int
    head_choices: tuple
    neuron_choices: tuple

    def __post_init__(self):
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {self.num_layers}")
        for name in ("head_choices", "neuron_choices"):
            values = tuple(int(v) for v in getattr(self, name))
            if not values or values[0] < 1 or list(values) != sorted(set(values)):
                raise ValueError(f"{name} must be increasing positive counts, got {values}")
            object.__setattr__(self, name, values)

    @classmethod
    def from_bert_config(cls, bert_config):
        from dynabert_tf.elastic import layerwise

        return cls(bert_config.num_layers, layerwise.head_choices(bert_config),
                   layerwise.neuron_choices(bert_config))

    def random_genome(self, rng):
        """A uniformly drawn genome with at least one kept layer."""
        while True:
            kept = rng.random(self.num_layers) < 0.5 + rng.random() / 2
            if kept.any():
                break
        return tuple((bool(k), int(rng.choice(self.head_choices)),
                      int(rng.choice(self.neuron_choices))) for k in kept)

    def random_genome_of_depth(self, rng, depth):
        """A genome keeping `depth` layers drawn uniformly, widths drawn uniformly."""
        if not 1 <= depth <= self.num_layers:
            raise ValueError(f"depth must be in 1..{self.num_layers}, got {depth}")
        kept = set(rng.choice(self.num_layers, size=depth, replace=False).tolist())
        return tuple((i in kept, int(rng.choice(self.head_choices)),
                      int(rng.choice(self.neuron_choices))) for i in range(self.num_layers))

    def genome(self, config):
        """The genome of a configuration; a dropped layer's genes are the full widths."""
        dims = dict(zip(config.layers, zip(config.heads, config.neurons)))
        full = (self.head_choices[-1], self.neuron_choices[-1])
        return tuple((i in dims, *dims.get(i, full)) for i in range(self.num_layers))

    def config(self, genome):
        """The `LayerwiseConfig` of a genome (kept layers in increasing order)."""
        from dynabert_tf.elastic import layerwise

        kept = [(i, heads, neurons) for i, (k, heads, neurons) in enumerate(genome) if k]
        return layerwise.LayerwiseConfig(tuple(i for i, _, _ in kept),
                                         tuple(h for _, h, _ in kept),
                                         tuple(n for _, _, n in kept))

    def smallest_genome(self):
        """One kept layer (the first) at the smallest width: the cheapest configuration."""
        return tuple((i == 0, self.head_choices[0], self.neuron_choices[0])
                     for i in range(self.num_layers))

    def mutate(self, genome, rng):
        """`genome` with one gene changed: a layer dropped / restored (never the last kept
        one), or one kept layer's heads or neurons redrawn to a different value."""
        genes = list(genome)
        kept = [i for i, gene in enumerate(genes) if gene[0]]
        while True:
            layer, what = int(rng.integers(self.num_layers)), int(rng.integers(3))
            keeps, heads, neurons = genes[layer]
            if what == 0 and not (keeps and len(kept) == 1):
                genes[layer] = (not keeps, heads, neurons)
                return tuple(genes)
            choices = (None, self.head_choices, self.neuron_choices)[what]
            if what and keeps and len(choices) > 1:
                current = genes[layer][what]
                value = int(rng.choice([c for c in choices if c != current]))
                genes[layer] = tuple(value if j == what else g
                                     for j, g in enumerate(genes[layer]))
                return tuple(genes)

    def crossover(self, first, second, rng):
        """Each layer's gene from either parent (at least one kept layer)."""
        while True:
            pick = rng.random(self.num_layers) < 0.5
            child = tuple(a if p else b for a, b, p in zip(first, second, pick))
            if any(gene[0] for gene in child):
                return child


def _config_key(genome):
    """What a genome runs: the dropped layers' width genes do not count."""
    return tuple((i, heads, neurons) for i, (kept, heads, neurons) in enumerate(genome) if kept)


@dataclasses.dataclass
class SearchResult:
    """best: the fittest `LayerwiseConfig` within the budget; history: the best fitness after
    each generation (the first population first); evaluated: [(config, fitness, latency)]
    of every candidate, in the order first seen."""

    best: typing.Any
    best_fitness: float
    best_latency: float
    history: list
    evaluated: list


def evolve(space, fitness, latency, budget_ms, population=16, parents=4, mutations=8,
           crossovers=4, generations=6, seed=0, start=(), progress=None):
    """Maximises `fitness(config)` subject to `latency(config) <= budget_ms`.

    Args:
      space: the `Space` of genomes.
      fitness: config -> float, higher is better (e.g. dev accuracy); called once per
        distinct candidate.
      latency: config -> predicted latency, ms.
      budget_ms: the latency budget every candidate, and so the answer, stays within.
      population, parents, mutations, crossovers, generations: sizes (HAT's scheme; module doc).
      seed: seeds every random draw.
      start: configurations put in the first population when within the budget.
      progress: optional callable(generation, best_fitness) after each generation.
    Raises:
      ValueError: bad sizes, or a budget below the smallest configuration's latency.
    """
    if min(population, parents, generations + 1) < 1 or parents > population \
            or min(mutations, crossovers) < 0:
        raise ValueError(f"bad search sizes: population {population}, parents {parents}, "
                         f"mutations {mutations}, crossovers {crossovers}, "
                         f"generations {generations}")
    rng = np.random.default_rng(seed)
    latencies, scores, evaluated, seen = {}, {}, [], set()

    def cost(genome):
        key = _config_key(genome)
        if key not in latencies:
            latencies[key] = float(latency(space.config(genome)))
        return latencies[key]

    def score(genome):
        key = _config_key(genome)
        if key not in scores:
            config = space.config(genome)
            scores[key] = float(fitness(config))
            evaluated.append((config, scores[key], cost(genome)))
        return scores[key]

    smallest = space.smallest_genome()
    if cost(smallest) > budget_ms:
        raise ValueError(f"budget {budget_ms:g} ms is below the smallest configuration's "
                         f"predicted latency, {cost(smallest):.3f} ms")

    def draw(make):
        """A new genome from `make()` within the budget, or None after MAX_DRAWS tries."""
        for _ in range(MAX_DRAWS):
            genome = make()
            if cost(genome) <= budget_ms and _config_key(genome) not in seen:
                seen.add(_config_key(genome))
                return genome
        return None

    members = [space.genome(c) for c in start if cost(space.genome(c)) <= budget_ms]
    members = list({_config_key(g): g for g in members[:population]}.values())
    seen.update(_config_key(g) for g in members)
    while len(members) < population:
        genome = draw(lambda: space.random_genome(rng))
        if genome is None:  # a budget so tight that few configurations fit
            break
        members.append(genome)
    if not members:
        members = [smallest]

    def ranked(genomes):  # distinct configurations: `draw` returns only new ones
        return sorted(genomes, key=lambda g: (-score(g), cost(g)))

    members = ranked(members)
    history = [score(members[0])]
    if progress:
        progress(0, history[-1])
    for generation in range(1, generations + 1):
        chosen = members[:parents]
        children = []
        for _ in range(mutations):
            parent = chosen[int(rng.integers(len(chosen)))]
            child = draw(lambda: space.mutate(parent, rng))
            if child is not None:
                children.append(child)
        for _ in range(crossovers):
            a, b = rng.choice(len(chosen), 2, replace=len(chosen) < 2)
            child = draw(lambda: space.crossover(chosen[a], chosen[b], rng))
            if child is not None:
                children.append(child)
        members = ranked(chosen + children)[:population]
        history.append(score(members[0]))
        if progress:
            progress(generation, history[-1])
    best = members[0]
    return SearchResult(space.config(best), score(best), cost(best), history, evaluated)
