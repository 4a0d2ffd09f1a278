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
OUT/manifest.json, draws OUT/pareto.png and prints a table.
"""

import datetime
import logging
import os
import platform
import sys
import time

import numpy as np

from mobile import cli
from mobile import export as export_lib
from dynabert_tf.core import files
from mobile import inputs as inputs_lib
from mobile import pareto
from mobile import tflite as tflite_lib
from mobile.errors import ExportError

BENCHMARK = "benchmark.json"


def _bar(total, enabled, desc):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="file", file=sys.stderr, disable=None)


def load_manifest(tflite_dir):
    path = os.path.join(tflite_dir, export_lib.MANIFEST)
    if not os.path.isfile(path):
        raise ExportError(f"no {export_lib.MANIFEST} in {tflite_dir} "
                          "(write one with python -m mobile.export)")
    manifest = export_lib.read_json_object(path, export_lib.MANIFEST)
    if not manifest.get("cells"):
        raise ExportError(f"{path} lists no cells")
    for key, kind in (("cell", str), ("file", str), ("width_mult", (int, float)),
                      ("depth_mult", (int, float))):
        if not isinstance(manifest["cells"], list) or not all(
                isinstance(e, dict) and isinstance(e.get(key), kind)
                for e in manifest["cells"]):
            raise ExportError(f"{path}: every entry of 'cells' needs a {key} "
                              f"({'text' if kind is str else 'number'})")
    missing = [e["file"] for e in manifest["cells"]
               if not os.path.isfile(os.path.join(tflite_dir, e["file"]))]
    if missing:
        raise ExportError(f"files listed in {path} are missing: {', '.join(missing)}")
    return manifest


def signature_runner(path, threads=1, signature=None):
    """A LiteRT runner of `signature` (default `serving_default`) of the file at `path`."""
    from ai_edge_litert.interpreter import Interpreter

    signature = signature or tflite_lib.SIGNATURE
    try:
        interpreter = Interpreter(model_path=path, num_threads=threads)
        return interpreter.get_signature_runner(signature)
    except (ValueError, RuntimeError) as e:  # what LiteRT raises for a file it cannot run
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ExportError(f"{path} is not a TFLite model with a {signature} "
                          f"signature: {reason}") from None


def _target(item):
    """(path, signature) of a file path or a (path, signature) pair."""
    return (item, None) if isinstance(item, str) else tuple(item)


def _timing_inputs(runner):
    seq_len = int(runner.get_input_details()[tflite_lib.INPUT_NAMES[0]]["shape"][1])
    # Ids below 100 are valid in any vocabulary; static shapes make timing content-free.
    return inputs_lib.random_token_inputs(1, seq_len, 100, seed=1)


# "wall": elapsed time. "thread_cpu": CPU time of the calling thread, which runs the whole
# inference at threads=1 (XNNPACK without a thread pool): what the call costs when no other
# process takes the core, so timings on a loaded machine are not inflated by preemption.
CLOCKS = {"wall": time.perf_counter, "thread_cpu": time.thread_time}


def sample_latencies(path, threads, runs=50, warmup=5, inputs=None, signature=None,
                     clock="wall"):
    """`runs` latencies (ms) of one batch-1 call, after `warmup` untimed calls, by `clock`
    (`CLOCKS`; "thread_cpu" only at threads=1)."""
    if clock not in CLOCKS or (clock == "thread_cpu" and threads != 1):
        raise ExportError(f"clock must be one of {', '.join(CLOCKS)} (thread_cpu at one "
                          f"thread only), got {clock!r} at {threads} threads")
    now = CLOCKS[clock]
    runner = signature_runner(path, threads, signature)
    inputs = _timing_inputs(runner) if inputs is None else inputs
    for _ in range(warmup):
        runner(**inputs)
    times = []
    for _ in range(runs):
        start = now()
        runner(**inputs)
        times.append((now() - start) * 1e3)
    return times


def summarize(times):
    times = np.asarray(times)
    return {"median": float(np.median(times)), "p90": float(np.percentile(times, 90)),
            "mean": float(times.mean()), "min": float(times.min()), "samples": int(times.size)}


def time_file(path, threads, runs=50, warmup=5, inputs=None):
    """{"median", "p90", "mean", "min", "samples"} latency in ms of one batch-1 call."""
    return summarize(sample_latencies(path, threads, runs, warmup, inputs))


def time_files(paths, threads, runs=50, warmup=5, rounds=5, progress=None, clock="wall"):
    """{path: {str(t): summary}}: the runs of each (file, threads) spread over `rounds`
    interleaved rounds (every file once per round), so a change in background load hits all
    files alike instead of whichever file was being timed. An item of `paths` may be a
    (path, signature) pair (an elastic file's signature); the result is keyed by the items.
    `clock`: see `sample_latencies`."""
    per_round = max(1, -(-runs // rounds))
    samples = {p: {t: [] for t in threads} for p in paths}
    for _ in range(rounds):
        for path in paths:
            file_path, signature = _target(path)
            for t in threads:
                samples[path][t] += sample_latencies(file_path, t, per_round, warmup,
                                                     signature=signature, clock=clock)
            if progress is not None:
                progress.update(1)
    return {p: {str(t): summarize(samples[p][t]) for t in threads} for p in paths}


def tflite_outputs(path, inputs, threads=2, signature=None):
    """{output name: [n, ...]} of a TFLite file, one example at a time (the files are batch 1)."""
    runner = signature_runner(path, threads, signature)
    count = len(inputs[tflite_lib.INPUT_NAMES[0]])
    rows = [runner(**{k: inputs[k][i:i + 1] for k in tflite_lib.INPUT_NAMES})
            for i in range(count)]
    return {name: np.concatenate([row[name] for row in rows]) for name in rows[0]}


def keras_outputs(model, inputs, width_mult, depth_mult, batch_size=32, hidden_mult=1.0):
    """{output name: [n, ...]} of the dynamic Keras model at a cell."""
    import tensorflow as tf

    from dynabert_tf.evaluation import cell_forward

    forward = cell_forward(model, width_mult, depth_mult, hidden_mult)  # {name: tensor}
    count = len(inputs[tflite_lib.INPUT_NAMES[0]])
    batches = [forward({k: tf.constant(inputs[k][i:i + batch_size])
                        for k in tflite_lib.INPUT_NAMES}) for i in range(0, count, batch_size)]
    return {name: np.concatenate([np.asarray(b[name]) for b in batches]) for name in batches[0]}


def parity_inputs(manifest, model_path, count, vocab_size, data_dir=None):
    """(inputs, description): `count` dev examples of the manifest's task, else random tokens."""
    task, seq_len = manifest.get("task"), manifest["seq_len"]
    vocab = os.path.join(model_path, export_lib.VOCAB)
    try:
        inputs, _ = inputs_lib.task_inputs(task, "dev", vocab, seq_len, count, data_dir)
        return inputs, f"{task} dev, first {len(inputs['token_ids'])} examples"
    except Exception as e:  # no data module, unknown task, no files: say so, go on
        reason = f"{type(e).__name__}: {e}".splitlines()[0]
        logging.warning("parity on random tokens: %s dev data unavailable (%s)", task, reason)
        return (inputs_lib.random_token_inputs(count, seq_len, vocab_size, seed=7),
                f"random tokens ({count}): {task!r} dev data unavailable ({reason})")


def parity(path, keras_reference, inputs, signature=None):
    """{"max_abs_logit_diff", "label_agreement", "examples"} of a file vs the reference
    outputs ({name: array}): the largest difference over all outputs, and how often the
    argmax (the label; a span's start and end token) agrees, over all outputs."""
    outputs = tflite_outputs(path, inputs, signature=signature)
    diff = max(float(np.abs(outputs[name] - keras_reference[name]).max()) for name in outputs)
    agree = [outputs[name].argmax(-1) == keras_reference[name].argmax(-1)
             for name in outputs if outputs[name].shape[-1] > 1]  # regression: no labels
    return {"max_abs_logit_diff": diff,
            "label_agreement": float(np.mean(agree)) if agree else None,
            "examples": int(len(next(iter(outputs.values()))))}


def machine_info():
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor() or None, "cpu_count": os.cpu_count(),
            "load_average": [round(x, 2) for x in load] if load else None}


def benchmark_dir(tflite_dir, threads=(1, 2), runs=50, warmup=5, parity_model_dir=None,
                  parity_examples=200, plot=True, progress=True, data_dir=None, rounds=5):
    """Benchmarks every file in OUT/manifest.json; returns the benchmark dict (also written)."""
    from ai_edge_litert import __version__ as litert_version

    threads = [int(t) for t in threads]
    if not threads or min(threads) < 1:
        raise ExportError(f"--threads needs positive integers, got {threads}")
    manifest = load_manifest(tflite_dir)
    entries = manifest["cells"]
    started = machine_info()

    model, parity_data, parity_note = None, None, None
    if parity_model_dir:
        from dynabert_tf.io import checkpoint

        model_path, _ = export_lib.resolve_model_dir(parity_model_dir)
        model = checkpoint.load_task_model(model_path)
        parity_data, parity_note = parity_inputs(manifest, model_path, parity_examples,
                                                 model.bert_config.vocab_size, data_dir)

    paths = [(os.path.join(tflite_dir, e["file"]), e.get("signature")) for e in entries]
    bar = _bar(len(paths) * rounds, progress, "timing")
    try:
        latencies = time_files(paths, threads, runs, warmup, rounds, bar)
    finally:
        if bar is not None:
            bar.close()  # an error line starts on a line of its own
    results = []
    for entry, target in zip(entries, cli.progress(paths, progress and model is not None,
                                                   desc="parity")):
        path, signature = target
        result = {"cell": entry["cell"], "file": entry["file"], "bytes": os.path.getsize(path),
                  "params": entry.get("params"), "flops": entry.get("flops"),
                  "latency_ms": latencies[target]}
        if model is not None:
            reference = keras_outputs(model, parity_data, entry["width_mult"],
                                     entry["depth_mult"],
                                     hidden_mult=entry.get("hidden_mult", 1.0))
            result["parity"] = parity(path, reference, parity_data, signature)
        results.append(result)

    full = next((r for r in results if r["cell"] == "w1.00_d1.00"), None)
    for result in results:
        result["flops_ratio"] = (result["flops"] / full["flops"]
                                 if full and result.get("flops") else None)
        result["latency_ratio"] = ({t: result["latency_ms"][t]["median"]
                                    / full["latency_ms"][t]["median"]
                                    for t in result["latency_ms"]} if full else None)
    benchmark = {
        "tflite_dir": os.path.abspath(tflite_dir), "quantization": manifest.get("quantization"),
        "seq_len": manifest.get("seq_len"), "threads": threads, "runs": runs, "warmup": warmup,
        "rounds": rounds,
        "litert_version": litert_version, "delegate": "XNNPACK (LiteRT default)",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": started, "load_average_after": machine_info()["load_average"],
        "parity_data": parity_note, "cells": results,
    }
    files.write_json(os.path.join(tflite_dir, BENCHMARK), benchmark)

    by_cell = {r["cell"]: r for r in results}
    for entry in entries:
        result = by_cell[entry["cell"]]
        entry["latency_ms"] = result["latency_ms"]
        entry["latency_ratio"] = result["latency_ratio"]
        entry["flops_ratio"] = result["flops_ratio"]
        if "parity" in result:
            entry["parity"] = result["parity"]
    manifest["benchmark"] = {k: benchmark[k] for k in
                             ("threads", "runs", "warmup", "rounds", "litert_version", "date",
                              "machine", "parity_data")}
    files.write_json(os.path.join(tflite_dir, export_lib.MANIFEST), manifest)
    if plot:
        pareto.plot_pareto(manifest, os.path.join(tflite_dir, "pareto.png"))
    return benchmark


def format_table(benchmark, markdown=False):
    """One row per cell: size, median/p90 per thread count, latency and FLOPs ratios, parity."""
    threads = [str(t) for t in benchmark["threads"]]
    has_parity = any("parity" in r for r in benchmark["cells"])
    header = ["cell", "MB"]
    for t in threads:
        header += [f"{t}T median ms", f"{t}T p90 ms"]
    header += [f"lat/lat(1,1) {t}T" for t in threads] + ["FLOPs/FLOPs(1,1)"]
    if has_parity:
        header += ["max |Δlogit|", "label agree"]
    rows = []
    for r in benchmark["cells"]:
        row = [r["cell"], f"{r['bytes'] / 1e6:.2f}"]
        for t in threads:
            row += [f"{r['latency_ms'][t]['median']:.2f}", f"{r['latency_ms'][t]['p90']:.2f}"]
        row += [f"{r['latency_ratio'][t]:.3f}" if r.get("latency_ratio") else "-" for t in threads]
        row.append(f"{r['flops_ratio']:.3f}" if r.get("flops_ratio") else "-")
        if has_parity:
            p = r.get("parity")
            agree = p and p.get("label_agreement")
            row += ([f"{p['max_abs_logit_diff']:.2e}", f"{agree:.3f}" if agree is not None
                     else "-"] if p else ["-", "-"])
        rows.append(row)
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    fmt = lambda cols: "  ".join(c.rjust(w) if i else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(cols, widths)))
    return "\n".join([fmt(header)] + [fmt(row) for row in rows])


# --------------------------------------------------------------------------- entry point

def _define_flags(flag_values):
    from absl import flags

    define = {"flag_values": flag_values}
    flags.DEFINE_string("tflite_dir", None, "Directory written by mobile.export.", **define)
    flags.DEFINE_list("threads", ["1", "2"], "Interpreter thread counts to time.", **define)
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
    fail = cli.fail
    cli.check_arguments(argv, flags_values, "tflite_dir")
    try:
        threads = [int(t) for t in flags_values.threads]
    except ValueError:
        fail(f"--threads must be comma-separated integers, got {','.join(flags_values.threads)}")
    if flags_values.runs < 1 or flags_values.warmup < 0 or flags_values.rounds < 1:
        fail("--runs and --rounds must be >= 1 and --warmup >= 0")
    if flags_values.parity and flags_values.parity_examples < 1:
        fail(f"--parity_examples must be >= 1, got {flags_values.parity_examples}")
    model_dir = None
    if flags_values.parity:
        model_dir = (flags_values.model_dir
                     or load_manifest(flags_values.tflite_dir).get("model_dir"))
    benchmark = benchmark_dir(flags_values.tflite_dir, threads, flags_values.runs,
                              flags_values.warmup, model_dir, flags_values.parity_examples,
                              flags_values.plot, data_dir=flags_values.data_dir,
                              rounds=flags_values.rounds)
    machine = benchmark["machine"]
    print(f"LiteRT {benchmark['litert_version']}, {machine['machine']}, "
          f"{machine['cpu_count']} CPUs, load {machine['load_average']} -> "
          f"{benchmark['load_average_after']}, seq {benchmark['seq_len']}, "
          f"{benchmark['quantization']}, {benchmark['runs']} runs in {benchmark['rounds']} rounds")
    if benchmark["parity_data"]:
        print(f"parity data: {benchmark['parity_data']}")
    print(format_table(benchmark))
    print(f"wrote {os.path.join(flags_values.tflite_dir, BENCHMARK)}")


if __name__ == "__main__":
    cli.run_main(main, _define_flags)
