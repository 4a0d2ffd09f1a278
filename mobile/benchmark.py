"""Latency, size and Keras parity of exported cells in the LiteRT interpreter.

    python -m mobile.benchmark --tflite_dir=OUT [--threads=1,2] [--runs=50] [--warmup=5] \
        [--rounds=5] [--parity [--model_dir=WORKDIR]] [--parity_examples=200] [--noplot]

Every file of OUT/manifest.json runs in `ai_edge_litert.interpreter.Interpreter` (XNNPACK,
the default CPU delegate) at batch 1 through its `serving_default` signature runner; the
median and p90 of `--runs` timed calls are reported per thread count, with
latency(w, d) / latency(1, 1) beside FLOPs(w, d) / FLOPs(1, 1). The runs are spread over
`--rounds` interleaved rounds (each round times every file after `--warmup` untimed calls),
so a burst of background load is shared by all cells rather than skewing one.

An elastic export (`--format=elastic`: one file, a signature per cell) is timed the same way,
each entry through its own `signature`.

With --parity, each file's logits are compared with the dynamic Keras model run at that cell
on real dev examples of the manifest's task (random tokens if the task's data is not
available; the output says which): max |logit difference| and label agreement.

Writes OUT/benchmark.json, adds `latency_ms`, `latency_ratio` and `parity` to the entries of
OUT/manifest.json, draws OUT/pareto.png and prints a table. The work is
`mobile.litert.benchmark_dir`; this module parses the flags and prints. The flags are checked
first (exit status 2): each --threads in 1..the machine's CPUs, since more threads than CPUs
time the wait for a core, not the model, and would replace that thread count's latencies.
"""

import os

from mobile import cli
from mobile import export as export_lib
from mobile import litert


def define_flags(flag_values):
    from absl import flags

    define = {"flag_values": flag_values}
    flags.DEFINE_string("tflite_dir", None, "Directory written by mobile.export.", **define)
    flags.DEFINE_list("threads", ["1", "2"], "Interpreter thread counts to time, each in "
                      "1..the machine's CPUs (default: 1,2, or 1 on a one-CPU machine).",
                      **define)
    flags.DEFINE_integer("runs", 50, "Timed calls per file and thread count.", **define)
    flags.DEFINE_integer("warmup", 5, "Untimed calls before each timed block.", **define)
    flags.DEFINE_integer("rounds", 5, "The runs are spread over this many interleaved rounds "
                         "(every file once per round).", **define)
    flags.DEFINE_boolean("parity", False, "Compare logits with the Keras model at each cell.",
                         **define)
    flags.DEFINE_string("model_dir", None, "Workdir or model dir for --parity (default: the "
                        "manifest's model_dir).", **define)
    flags.DEFINE_integer("parity_examples", 200, "Dev examples used for --parity.", **define)
    flags.DEFINE_string("data_dir", None, "Task data (GLUE tasks); built-in tasks need none.",
                        **define)
    flags.DEFINE_boolean("plot", True, "Write OUT/pareto.png.", **define)


def main(argv, flags_values):
    cli.check_arguments(argv, flags_values, "tflite_dir")
    requested = flags_values.threads
    if not flags_values["threads"].present:  # the default 1,2: those this machine has
        requested = [t for t in requested if int(t) <= (os.cpu_count() or 1)]
    threads = cli.check_threads(requested)
    cli.check_at_least(flags_values, runs=1, rounds=1, warmup=0)
    if flags_values.parity:
        cli.check_at_least(flags_values, parity_examples=1)
    model_dir = None
    if flags_values.parity:
        model_dir = (flags_values.model_dir
                     or litert.load_manifest(flags_values.tflite_dir).get("model_dir"))
        if not model_dir:
            raise cli.UsageError("--parity needs --model_dir (the manifest records no model)")
        export_lib.resolve_model_dir(model_dir)  # its config.json, before TensorFlow starts
    benchmark = litert.benchmark_dir(flags_values.tflite_dir, threads, flags_values.runs,
                                     flags_values.warmup, model_dir,
                                     flags_values.parity_examples, flags_values.plot,
                                     data_dir=flags_values.data_dir, rounds=flags_values.rounds)
    machine = benchmark["machine"]
    print(f"LiteRT {benchmark['litert_version']}, {machine['machine']}, "
          f"{machine['cpu_count']} CPUs, load {machine['load_average']} -> "
          f"{benchmark['load_average_after']}, seq {benchmark['seq_len']}, "
          f"{benchmark['quantization']}, {benchmark['runs']} runs in {benchmark['rounds']} rounds")
    if benchmark["parity_data"]:
        print(f"parity data: {benchmark['parity_data']}")
    print(litert.format_table(benchmark))
    print(f"wrote {os.path.join(flags_values.tflite_dir, litert.BENCHMARK)}")


if __name__ == "__main__":
    cli.run_main(main, define_flags)
