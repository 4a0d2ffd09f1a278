"""`run_search`: measure, fit, search and report (the steps `mobile.search` describes),
with its settings in one `SearchSettings`."""

import contextlib
import dataclasses
import datetime
import os

import numpy as np

from dynabert_tf.core import files
from dynabert_tf.core import grid as grid_lib
from dynabert_tf.core import layout, locks
from dynabert_tf.core import progress as progress_lib
from dynabert_tf.core.choices import QUANTIZATIONS as ALL_QUANTIZATIONS
import mobile.export.model_dir as model_dir_lib
import mobile.export.tflite as tflite_lib
from mobile.errors import ExportError, read_json_object
import mobile.search.dev_halves as dev_halves
import mobile.search.evolution as evolution
import mobile.search.latency_measure as latency_measure
import mobile.search.latency_model as latency_lib
import mobile.search.report as report_lib

SEARCH_JSON = "search.json"
METRICS = "metrics.json"
LATENCY_MODEL = "latency_model.json"
# The exported files are not calibrated: int8 / int16x8 are not searched.
QUANTIZATIONS = tuple(q for q in ALL_QUANTIZATIONS if q not in tflite_lib.CALIBRATED)
CLOCKS = ("wall", "thread_cpu")
BUDGET_FRACTIONS = (0.25, 0.5, 0.75)
HELD_OUT_FRACTION = 0.3
ARCHITECTURE_KEYS = ("vocab_size", "hidden_size", "num_layers", "num_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size",
                     "hidden_act", "attention_head_dim", "model_type")


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """How `run_search` measures, fits and searches (the command line's flags).

    budgets_ms: latency budgets (ms); () for `default_budgets`.
    num_measured: random configurations measured besides the grid cells (30% held out).
    latency_dir: cache of exported and timed configurations (None: OUT/latency).
    measure_only: stop after measuring and fitting (no task or dev data needed).
    seq_len, quantization: how every file is exported.
    threads, runs, warmup, rounds, clock: how every file is timed (`mobile.litert.timing`).
    population, parents, mutations, crossovers, generations: the evolution's sizes, per budget.
    seed: seeds the sampled configurations, the dev halves and the search.
    data_dir: the task's data, when it is not built in.
    """

    budgets_ms: tuple = ()
    num_measured: int = 28
    latency_dir: str = None
    measure_only: bool = False
    seq_len: int = 128
    quantization: str = "dynamic_range"
    threads: int = 1
    runs: int = 100
    warmup: int = 5
    rounds: int = 10
    clock: str = "wall"
    population: int = 10
    parents: int = 4
    mutations: int = 6
    crossovers: int = 2
    generations: int = 4
    seed: int = 0
    data_dir: str = None

    def check(self):
        """ExportError naming the first bad setting."""
        if self.quantization not in QUANTIZATIONS:
            raise ExportError(f"--quantization must be one of {', '.join(QUANTIZATIONS)} (the "
                              f"search does not calibrate), got {self.quantization!r}")
        for name, least in (("num_measured", 5), ("seq_len", 3), ("threads", 1), ("runs", 1),
                            ("rounds", 1), ("warmup", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < least:
                raise ExportError(f"--{name} must be an integer >= {least}, got {value!r}")
        if self.clock not in CLOCKS or (self.clock == "thread_cpu" and self.threads != 1):
            raise ExportError(f"--clock must be wall or thread_cpu (at --threads=1), got "
                              f"{self.clock!r} at {self.threads} threads")

    def measurement(self):
        """{seq_len, quantization, threads, runs, warmup, rounds, clock}: how every file is
        exported and timed."""
        return {key: getattr(self, key) for key in ("seq_len", "quantization", "threads",
                                                    "runs", "warmup", "rounds", "clock")}

    def sizes(self):
        """The evolution's sizes (`evolution.evolve`'s keyword arguments)."""
        return {key: getattr(self, key) for key in ("population", "parents", "mutations",
                                                    "crossovers", "generations")}


def parse_budgets(spec):
    """'1.5,2.5' -> (1.5, 2.5); () for none; ExportError unless positive numbers."""
    if not spec:
        return ()
    try:
        budgets = tuple(float(part) for part in str(spec).split(","))
    except ValueError:
        budgets = ()
    if not budgets or min(budgets) <= 0 or not all(np.isfinite(budgets)):
        raise ExportError(f"--budgets_ms must be positive numbers (ms) separated by commas, "
                          f"got {spec!r}")
    return tuple(sorted(set(budgets)))


def default_budgets(grid_latencies):
    """Budgets a quarter, half and three quarters from the fastest grid cell to the slowest."""
    low, high = min(grid_latencies), max(grid_latencies)
    return tuple(round(low + f * (high - low), 2) for f in BUDGET_FRACTIONS)


def measurement_settings(model, args):
    """What a cached latency measurement must share with this run (`args`:
    `SearchSettings.measurement()`)."""
    shape = model.bert_config.to_dict()
    return {"architecture": {k: shape[k] for k in ARCHITECTURE_KEYS},
            "num_outputs": model.num_outputs, "seq_len": args["seq_len"],
            "quantization": args["quantization"], "threads": args["threads"],
            "runs": args["runs"], "warmup": args["warmup"], "rounds": args["rounds"],
            "clock": args["clock"]}


def fit_latency(entries, grid_names, sampled_names, seed=0):
    """(LatencyModel fitted on the grid cells + 70% of the sampled configurations, its
    held-out report {"mean", "max", "configs": [{name, measured_ms, predicted_ms}]})."""
    from dynabert_tf.elastic.layerwise import LayerwiseConfig

    train_idx, held_idx = latency_lib.split_held_out(len(sampled_names), HELD_OUT_FRACTION,
                                                     seed)
    train = list(grid_names) + [sampled_names[i] for i in train_idx]
    held = [sampled_names[i] for i in held_idx]
    config = lambda name: LayerwiseConfig.from_dict(entries[name]["config"])
    median = lambda name: entries[name]["latency_ms"]["median"]
    model = latency_lib.fit([config(n) for n in train], [median(n) for n in train],
                            info={"train": train, "held_out": held})
    report = {"fitted_on": len(train), "held_out": len(held)}
    if held:
        errors = latency_lib.relative_errors(model, [config(n) for n in held],
                                             [median(n) for n in held])
        report.update(mean=errors["mean"], max=errors["max"], configs=[
            {"name": n, "measured_ms": median(n), "predicted_ms": model.predict_one(config(n))}
            for n in held])
    return model, report


class MetricCache:
    """{half: {config name: metric}} in OUT/metrics.json, for one model, task, metric and
    dev split; written after every new value, so a killed search keeps its evaluations."""

    def __init__(self, path, identity):
        self.path, self.identity = path, identity
        cached = read_json_object(path, METRICS) if os.path.isfile(path) else {}
        same = all(cached.get(k) == v for k, v in identity.items())
        self.values = cached.get("values", {}) if same else {}

    def get(self, half_name, config, compute):
        values = self.values.setdefault(half_name, {})
        if config.name not in values:
            values[config.name] = float(compute(config))
            files.write_json(self.path, {**self.identity, "values": self.values})
        return values[config.name]


def grid_configs(model, eval_grid):
    """{cell name: LayerwiseConfig} of the model's grid cells at the full hidden size."""
    from dynabert_tf.elastic import layerwise

    return {grid_lib.cell_name(*cell): layerwise.from_cell(model.bert_config, *cell)
            for cell in model_dir_lib.grid_cells(eval_grid) if len(cell) == 2}


def measure_and_fit(model, grid, space, latency_dir, settings, model_id, progress=True):
    """(measurements {config name: entry}, the fitted `LatencyModel`, its held-out report):
    the grid cells and `settings.num_measured` sampled configurations exported and timed
    (cached in `latency_dir`), the latency model fitted on them (`fit_latency`)."""
    sampled = latency_measure.sample_configs(space, settings.num_measured, settings.seed,
                                             grid.values())
    entries = latency_measure.measure(model, [*grid.values(), *sampled], latency_dir,
                                      measurement_settings(model, settings.measurement()),
                                      model_id, progress)
    predictor, held_out = fit_latency(entries, [c.name for c in grid.values()],
                                      [c.name for c in sampled], settings.seed)
    return entries, predictor, held_out


def scorer(model, task, metric, halves, cache):
    """half -> (config -> the half's metric of `model(x, subnetwork=config)`), cached."""
    search_half, report_half = halves
    forward = {search_half.name: dev_halves.PrefixCachedPredictor(model, search_half),
               report_half.name: lambda c: dev_halves.predict(model, c, report_half)}
    return lambda half: lambda config: cache.get(half.name, config, lambda c: dev_halves.metric(
        task, forward[half.name](c), half.labels, metric))


def search_budgets(space, fitness, predictor, grid, budgets, settings, progress=True):
    """{budget: evolution.SearchResult}: per budget, the fittest configuration whose
    predicted latency fits, the grid cells seeding the first population."""
    sizes = settings.sizes()
    found = {}
    for budget in budgets:
        bar = progress_lib.bar(
            settings.population + settings.generations * (settings.mutations
                                                           + settings.crossovers),
            progress, f"search ≤{budget:g} ms", unit="config")

        def counted(config):
            progress_lib.advance(bar)
            return fitness(config)

        try:
            found[budget] = evolution.evolve(space, counted, predictor.predict_one, budget,
                                             seed=settings.seed, start=list(grid.values()),
                                             **sizes)
        except ValueError as e:
            raise ExportError(f"budget {budget:g} ms: {e}") from None
        finally:
            progress_lib.close(bar)
    return found


def run_search(model_dir, output_dir, settings=SearchSettings(), progress=True):
    """Measure, fit, search and report (`mobile.search`); returns the search.json dict.

    Args:
      model_dir: a training workdir (uses its `final/`) or a model dir.
      output_dir: where search.json, search.md, the plot, the latency model, the metric
        cache and the exported files go.
      settings: a `SearchSettings`.
    """
    settings.check()
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ExportError(f"--output_dir {output_dir} is a file, not a directory")
    model_path, workdir = model_dir_lib.resolve_model_dir(model_dir)
    eval_grid = model_dir_lib.read_eval_grid(model_path, workdir)
    task = model_dir_lib.task_of(model_dir_lib.read_config(model_path), eval_grid)
    if not settings.measure_only and not task:
        raise ExportError(f"{model_path} names no task (config.json finetuning_task or "
                          f"eval_grid.json task); the search needs its dev split")
    with contextlib.ExitStack() as held:  # one writer of OUT (and of --latency_dir) at a time
        held.enter_context(locks.output_lock(output_dir, "mobile.search", "--output_dir"))
        latency_dir = settings.latency_dir or os.path.join(output_dir, "latency")
        if os.path.realpath(latency_dir) != os.path.realpath(output_dir):
            held.enter_context(locks.output_lock(latency_dir, "mobile.search",
                                                 "--latency_dir"))
        return _search(model_path, eval_grid, task, output_dir, latency_dir, settings,
                       progress)


def _search(model_path, eval_grid, task, output_dir, latency_dir, settings, progress):
    """`run_search`'s steps once its directories are locked."""
    from dynabert_tf.io import checkpoint

    model = checkpoint.load_task_model(model_path)
    space = evolution.Space.from_bert_config(model.bert_config)
    args = settings.measurement()

    # 1. measure, 2. fit
    grid = grid_configs(model, eval_grid)
    weights = os.path.join(model_path, layout.WEIGHTS)
    model_id = files.sha256_of(weights) if os.path.isfile(weights) else None
    entries, predictor, held_out = measure_and_fit(model, grid, space, latency_dir, settings,
                                                   model_id, progress)
    predictor.save(os.path.join(output_dir, LATENCY_MODEL))
    result = {"model_dir": os.path.abspath(model_path), "task": task,
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
                  timespec="seconds"), "settings": measurement_settings(model, args),
              "latency_dir": os.path.abspath(latency_dir),
              "latency_model": {**predictor.to_dict(), "held_out_error": held_out}}
    if settings.measure_only:
        files.write_json(os.path.join(output_dir, SEARCH_JSON), result)
        return result

    # 3. search
    metric = model_dir_lib.primary_metric(eval_grid, task)
    halves = dev_halves.split_dev(task, os.path.join(model_path, layout.WORDPIECE_VOCAB),
                                  settings.seq_len, settings.seed, data_dir=settings.data_dir)
    cache = MetricCache(os.path.join(output_dir, METRICS), {
        "model_sha256": model_id,
        "task": task, "metric": metric, "split_seed": settings.seed,
        "seq_len": settings.seq_len})
    score = scorer(model, task, metric, halves, cache)
    grid_latency = {name: entries[c.name]["latency_ms"]["median"] for name, c in grid.items()}
    budgets = tuple(settings.budgets_ms) or default_budgets(grid_latency.values())
    found = search_budgets(space, score(halves[0]), predictor, grid, budgets, settings,
                           progress)

    # 4. report
    measured = {name: os.path.join(latency_dir, e["file"]) for name, e in entries.items()}
    result.update(report_lib.report(
        model, grid, found, budgets, os.path.join(output_dir, "tflite"), measured, args,
        predictor, *halves, score, task, metric, progress))
    result.update(metric=metric, budgets_ms=list(budgets), search_sizes=settings.sizes(),
                  seed=settings.seed, dev_halves={"search": len(halves[0]),
                                                  "report": len(halves[1]),
                                                  "split_seed": settings.seed})
    files.write_json(os.path.join(output_dir, SEARCH_JSON), result)
    report_lib.write_outputs(result, output_dir)
    return result
