"""python -m mobile.search: per-layer sub-networks under LiteRT latency budgets.

    python -m mobile.search --model_dir=WORKDIR --output_dir=OUT [--budgets_ms=1.5,2.5,3.5] \
        [--num_measured=28] [--threads=1] [--clock=wall|thread_cpu] [--measure_only] \
        [--latency_dir=OUT/latency] [--population=10 --parents=4 --mutations=6 \
        --crossovers=2 --generations=4] [--seed=0]

Parses the flags into a `SearchSettings`, calls `mobile.search.run_search` (the package's
doc describes the steps and what is written) and prints the latency model and the table.
The flags (exit status 2), then the model dir, are checked first (`search.preflight`), before
TensorFlow is imported and anything is exported or timed.
"""

import os

from mobile import cli
from mobile import search


def define_flags(flag_values):
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
    flags.DEFINE_enum("quantization", "dynamic_range", list(search.QUANTIZATIONS),
                      "Quantization of the exported files.", **define)
    flags.DEFINE_integer("seq_len", 128, "Static sequence length of the exported files.",
                         **define)
    flags.DEFINE_integer("threads", 1, "LiteRT interpreter threads for every timing.", **define)
    flags.DEFINE_integer("runs", 100, "Timed calls per file.", **define)
    flags.DEFINE_integer("warmup", 5, "Untimed calls before each timed block.", **define)
    flags.DEFINE_integer("rounds", 10, "Interleaved timing rounds.", **define)
    flags.DEFINE_enum("clock", "wall", list(search.CLOCKS), "wall: elapsed time, as "
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


def settings_of(flags_values):
    """The checked `SearchSettings` of the parsed flags; UsageError naming the first flag
    that cannot work (--threads: 1..the machine's CPUs)."""
    f = flags_values
    cli.check_threads([f.threads])
    try:
        settings = _settings(f)
        search.preflight.check_settings(settings)
    except search.ExportError as e:
        raise cli.UsageError(str(e)) from None
    return settings


def _settings(f):
    return search.SearchSettings(
        budgets_ms=search.parse_budgets(f.budgets_ms), num_measured=f.num_measured,
        latency_dir=f.latency_dir, measure_only=f.measure_only, seq_len=f.seq_len,
        quantization=f.quantization, threads=f.threads, runs=f.runs, warmup=f.warmup,
        rounds=f.rounds, clock=f.clock, population=f.population, parents=f.parents,
        mutations=f.mutations, crossovers=f.crossovers, generations=f.generations,
        seed=f.seed, data_dir=f.data_dir)


def main(argv, flags_values):
    cli.check_arguments(argv, flags_values, "model_dir", "output_dir")
    settings = settings_of(flags_values)
    search.preflight.check_inputs(flags_values.model_dir, flags_values.output_dir, settings)
    result = search.run_search(flags_values.model_dir, flags_values.output_dir, settings)
    print(search.format_latency_model(result))
    if not flags_values.measure_only:
        print(search.format_table(result))
    print(f"wrote {os.path.join(flags_values.output_dir, search.SEARCH_JSON)}")


if __name__ == "__main__":
    cli.run_main(main, define_flags)
