"""Per-layer sub-networks beyond the 12 grid cells, found under LiteRT latency budgets (HAT).

    python -m mobile.search --model_dir=WORKDIR --output_dir=OUT [--budgets_ms=1.5,2.5,3.5] \
        [--num_measured=28] [--threads=1] [--clock=wall|thread_cpu] [--measure_only] \
        [--latency_dir=OUT/latency] [--population=10 --parents=4 --mutations=6 \
        --crossovers=2 --generations=4] [--seed=0]

1. Measure: the grid cells and `--num_measured` random per-layer configurations are exported
   (`mobile.export.export_layerwise`, the grid cells' path; dynamic range, seq 128 by default)
   and timed in LiteRT (`mobile.latency_measure`, cached in --latency_dir: latency depends on
   the architecture only, so one measurement serves every model of that shape).
2. Fit: `mobile.latency_model` on the grid cells and 70% of the random configurations; the
   held-out relative error is measured on the other 30% (OUT/latency_model.json).
3. Search: for each budget, `mobile.evolution` maximises the primary dev metric of
   `model(x, subnetwork=config)` on the *search half* of the dev split (`mobile.dev_halves`)
   subject to predicted latency <= budget; the grid cells within the budget seed it (hidden
   states of shared layer prefixes are reused: `dev_halves.PrefixCachedPredictor`). Default
   budgets: a quarter, half and three quarters of the way from the fastest grid cell's
   measured latency to the slowest's. Metrics are cached per configuration (OUT/metrics.json).
4. Report: the found configurations are exported from the model (OUT/tflite/) and timed
   with the grid cells' measured files in one interleaved LiteRT run; all are scored on the
   *report half*, which no choice saw, with its bootstrap standard deviation as the noise.
   Per budget the found configuration is compared with the best grid cell within the budget
   (by measured latency) picked on the search half, as the search picks, and with the best
   on the report half (the grid's most favourable case); `mobile.search_report`.

Writes OUT/search.json, OUT/search.md (the table) and OUT/pareto_search.png (grid cells and
found configurations, report-half metric vs measured latency and size).
"""

import datetime
import os

import numpy as np

from dynabert_tf.core import grid as grid_lib
from dynabert_tf.core import files
from mobile import cli
from mobile import export as export_lib
from mobile import latency_measure
from mobile import latency_model as latency_lib
from mobile import search_report
from mobile.errors import ExportError

SEARCH_JSON = "search.json"
METRICS = "metrics.json"
LATENCY_MODEL = "latency_model.json"
QUANTIZATIONS = ("dynamic_range", "float16", "none")
BUDGET_FRACTIONS = (0.25, 0.5, 0.75)
HELD_OUT_FRACTION = 0.3
ARCHITECTURE_KEYS = ("vocab_size", "hidden_size", "num_layers", "num_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size",
                     "hidden_act", "attention_head_dim", "model_type")


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
    """What a cached latency measurement must share with this run."""
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
        cached = (export_lib.read_json_object(path, METRICS) if os.path.isfile(path) else {})
        same = all(cached.get(k) == v for k, v in identity.items())
        self.values = cached.get("values", {}) if same else {}

    def get(self, half_name, config, compute):
        values = self.values.setdefault(half_name, {})
        if config.name not in values:
            values[config.name] = float(compute(config))
            files.write_json(self.path, {**self.identity, "values": self.values})
        return values[config.name]


def run_search(model_dir, output_dir, budgets_ms=(), num_measured=28, latency_dir=None,
               measure_only=False, seq_len=128, quantization="dynamic_range", threads=1,
               runs=100, warmup=5, rounds=10, population=10, parents=4, mutations=6,
               crossovers=2, generations=4, seed=0, data_dir=None, progress=True,
               clock="wall"):
    """Measure, fit, search and report (module doc); returns the search.json dict."""
    from dynabert_tf.elastic import layerwise
    from dynabert_tf.io import checkpoint
    from mobile import evolution

    if quantization not in QUANTIZATIONS:
        raise ExportError(f"--quantization must be one of {', '.join(QUANTIZATIONS)} (the "
                          f"search does not calibrate), got {quantization!r}")
    for name, value, least in (("num_measured", num_measured, 5), ("seq_len", seq_len, 3),
                               ("threads", threads, 1), ("runs", runs, 1),
                               ("rounds", rounds, 1), ("warmup", warmup, 0)):
        if not isinstance(value, int) or value < least:
            raise ExportError(f"--{name} must be an integer >= {least}, got {value!r}")
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ExportError(f"--output_dir {output_dir} is a file, not a directory")
    model_path, workdir = export_lib.resolve_model_dir(model_dir)
    eval_grid = export_lib.read_eval_grid(model_path, workdir)
    hf_config = export_lib.read_json_object(os.path.join(model_path, "config.json"),
                                            "config.json")
    task = hf_config.get("finetuning_task") or (eval_grid or {}).get("task")
    if not measure_only and not task:
        raise ExportError(f"{model_path} names no task (config.json finetuning_task or "
                          f"eval_grid.json task); the search needs its dev split")
    model = checkpoint.load_task_model(model_path)
    cfg = model.bert_config
    space = evolution.Space.from_bert_config(cfg)
    os.makedirs(output_dir, exist_ok=True)
    if clock not in ("wall", "thread_cpu") or (clock == "thread_cpu" and threads != 1):
        raise ExportError(f"--clock must be wall or thread_cpu (at --threads=1), got "
                          f"{clock!r} at {threads} threads")
    args = dict(seq_len=seq_len, quantization=quantization, threads=threads, runs=runs,
                warmup=warmup, rounds=rounds, clock=clock)

    # 1. measure
    grid = {grid_lib.cell_name(*cell): layerwise.from_cell(cfg, *cell)  # full hidden size
            for cell in export_lib.grid_cells(eval_grid) if len(cell) == 2}
    sampled = latency_measure.sample_configs(space, num_measured, seed, grid.values())
    latency_dir = latency_dir or os.path.join(output_dir, "latency")
    weights = os.path.join(model_path, "model.safetensors")
    model_id = export_lib._sha256(weights) if os.path.isfile(weights) else None
    entries = latency_measure.measure(model, [*grid.values(), *sampled], latency_dir,
                                      measurement_settings(model, args), model_id, progress)
    # 2. fit
    predictor, held_out = fit_latency(entries, [c.name for c in grid.values()],
                                      [c.name for c in sampled], seed)
    predictor.save(os.path.join(output_dir, LATENCY_MODEL))
    result = {"model_dir": os.path.abspath(model_path), "task": task,
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
                  timespec="seconds"), "settings": measurement_settings(model, args),
              "latency_dir": os.path.abspath(latency_dir),
              "latency_model": {**predictor.to_dict(), "held_out_error": held_out}}
    if measure_only:
        files.write_json(os.path.join(output_dir, SEARCH_JSON), result)
        return result

    # 3. search
    from mobile import dev_halves

    metric = (eval_grid or {}).get("primary_metric") or export_lib._task_metric(task)
    search_half, report_half = dev_halves.split_dev(task, os.path.join(model_path, "vocab.txt"),
                                                    seq_len, seed, data_dir=data_dir)
    cache = MetricCache(os.path.join(output_dir, METRICS), {
        "model_sha256": model_id,
        "task": task, "metric": metric, "split_seed": seed, "seq_len": seq_len})
    forward = {search_half.name: dev_halves.PrefixCachedPredictor(model, search_half),
               report_half.name: lambda c: dev_halves.predict(model, c, report_half)}
    score = lambda half: lambda config: cache.get(half.name, config, lambda c: dev_halves.metric(
        task, forward[half.name](c), half.labels, metric))
    grid_latency = {name: entries[c.name]["latency_ms"]["median"] for name, c in grid.items()}
    budgets = tuple(budgets_ms) or default_budgets(grid_latency.values())
    found = {}
    sizes = dict(population=population, parents=parents, mutations=mutations,
                 crossovers=crossovers, generations=generations)
    for budget in budgets:
        bar = search_report.counter(population + generations * (mutations + crossovers),
                                    progress, f"search ≤{budget:g} ms")
        fitness = score(search_half)

        def counted(config):
            if bar is not None:
                bar.update(1)
            return fitness(config)

        try:
            found[budget] = evolution.evolve(space, counted, predictor.predict_one, budget,
                                             seed=seed, start=list(grid.values()), **sizes)
        except ValueError as e:
            raise ExportError(f"budget {budget:g} ms: {e}") from None
        finally:
            if bar is not None:
                bar.close()

    # 4. report
    measured = {name: os.path.join(latency_dir, e["file"]) for name, e in entries.items()}
    result.update(search_report.report(
        model, grid, found, budgets, os.path.join(output_dir, "tflite"), measured, args,
        predictor, search_half, report_half, score, task, metric, progress))
    result.update(metric=metric, budgets_ms=list(budgets), search_sizes=sizes, seed=seed,
                  dev_halves={"search": len(search_half), "report": len(report_half),
                              "split_seed": seed})
    files.write_json(os.path.join(output_dir, SEARCH_JSON), result)
    search_report.write_outputs(result, output_dir)
    return result


# --------------------------------------------------------------------------- entry point

def _define_flags(flag_values):
    from absl import flags

    define = {"flag_values": flag_values}
    flags.DEFINE_string("model_dir", None, "Training workdir (uses WORKDIR/final) or a model "
                        "directory with config.json.", **define)
    flags.DEFINE_string("output_dir", None, "Where search.json, the plot, the table, the "
                        "latency model and the exported files go.", **define)
    flags.DEFINE_string("budgets_ms", "", "Latency budgets (ms, comma-separated); default: "
                        "3 between the fastest and the slowest grid cell.", **define)
    flags.DEFINE_integer("num_measured", 28, "Random configurations measured, besides the grid "
                         "cells, for the latency model (30% of them held out).", **define)
    flags.DEFINE_string("latency_dir", None, "Cache of exported and timed configurations "
                        "(default OUT/latency); shareable by models of one architecture.",
                        **define)
    flags.DEFINE_boolean("measure_only", False, "Stop after measuring and fitting the latency "
                         "model (no task or dev data needed).", **define)
    flags.DEFINE_enum("quantization", "dynamic_range", list(QUANTIZATIONS),
                      "Quantization of the exported files.", **define)
    flags.DEFINE_integer("seq_len", 128, "Static sequence length of the exported files.",
                         **define)
    flags.DEFINE_integer("threads", 1, "LiteRT interpreter threads for every timing.", **define)
    flags.DEFINE_integer("runs", 100, "Timed calls per file.", **define)
    flags.DEFINE_integer("warmup", 5, "Untimed calls before each timed block.", **define)
    flags.DEFINE_integer("rounds", 10, "Interleaved timing rounds.", **define)
    flags.DEFINE_enum("clock", "wall", ["wall", "thread_cpu"], "wall: elapsed time, as "
                      "mobile.benchmark; thread_cpu: the inference thread's CPU time (threads=1), "
                      "what a call costs on an idle core, for a loaded machine.", **define)
    flags.DEFINE_integer("population", 10, "First population of each search.", **define)
    flags.DEFINE_integer("parents", 4, "Candidates kept per generation.", **define)
    flags.DEFINE_integer("mutations", 6, "Mutated children per generation.", **define)
    flags.DEFINE_integer("crossovers", 2, "Crossover children per generation.", **define)
    flags.DEFINE_integer("generations", 4, "Generations per budget.", **define)
    flags.DEFINE_integer("seed", 0, "Seeds the sampled configurations, the dev halves and the "
                         "search.", **define)
    flags.DEFINE_string("data_dir", None, "Task data (GLUE tasks); built-in tasks need none.",
                        **define)


def main(argv, flags_values):
    cli.check_arguments(argv, flags_values, "model_dir", "output_dir")
    f = flags_values
    result = run_search(f.model_dir, f.output_dir, parse_budgets(f.budgets_ms), f.num_measured,
                        f.latency_dir, f.measure_only, f.seq_len, f.quantization, f.threads,
                        f.runs, f.warmup, f.rounds, f.population, f.parents, f.mutations,
                        f.crossovers, f.generations, f.seed, f.data_dir, clock=f.clock)
    print(search_report.format_latency_model(result))
    if not f.measure_only:
        print(search_report.format_table(result))
    print(f"wrote {os.path.join(f.output_dir, SEARCH_JSON)}")


if __name__ == "__main__":
    cli.run_main(main, _define_flags)
