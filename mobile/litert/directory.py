"""The benchmark of an export directory: every file (or signature) of OUT/manifest.json
timed in LiteRT, optionally compared with the Keras model, and the results recorded.

Writes OUT/benchmark.json, adds `latency_ms`, `latency_ratio` and `parity` to the entries of
OUT/manifest.json, draws OUT/pareto.png (`mobile.pareto`); `format_table` prints the table.

Latencies are kept per thread count (`latency_ms`: {"1": summary, "2": summary}): a run at
some thread counts replaces those and keeps the others' (an earlier run's, recorded in the
manifest's entries and `benchmark.by_threads`), in manifest.json and benchmark.json alike.
Every file is checked against its entry's size and sha256 (`mobile.manifest_check`) before
anything is timed.
"""

import datetime
import os

from dynabert_tf.core import files
from dynabert_tf.core import progress as progress_lib
import mobile.export.manifest as manifest_lib
import mobile.export.model_dir as model_dir_lib
from mobile import manifest_check
from mobile import pareto
from mobile.errors import ExportError, read_json_object
import mobile.litert.parity as parity_lib
import mobile.litert.timing as timing

BENCHMARK = "benchmark.json"


def load_manifest(tflite_dir):
    """OUT/manifest.json, checked: cells with a name, file and multipliers, each file the
    one its entry describes (size and sha256)."""
    path = os.path.join(tflite_dir, manifest_lib.MANIFEST)
    if not os.path.isfile(path):
        raise ExportError(f"no {manifest_lib.MANIFEST} in {tflite_dir} "
                          "(write one with python -m mobile.export)")
    manifest = read_json_object(path, manifest_lib.MANIFEST)
    if not manifest.get("cells"):
        raise ExportError(f"{path} lists no cells")
    for key, kind in (("cell", str), ("file", str), ("width_mult", (int, float)),
                      ("depth_mult", (int, float))):
        if not isinstance(manifest["cells"], list) or not all(
                isinstance(e, dict) and isinstance(e.get(key), kind)
                for e in manifest["cells"]):
            raise ExportError(f"{path}: every entry of 'cells' needs a {key} "
                              f"({'text' if kind is str else 'number'})")
    manifest_check.check_files(tflite_dir, manifest["cells"], ExportError)
    return manifest


def check_threads(threads):
    """The thread counts, ascending and once each; ExportError (a ValueError) unless every
    one is an integer >= 1."""
    threads = list(threads)
    try:
        counts = [int(t) for t in threads if not isinstance(t, (bool, float))]
    except (TypeError, ValueError):
        counts = []
    if not counts or len(counts) != len(threads) or min(counts) < 1:
        raise ExportError(f"--threads needs positive integers, got {list(threads)}")
    return sorted(set(counts))


def benchmark_dir(tflite_dir, threads=(1, 2), runs=50, warmup=5, parity_model_dir=None,
                  parity_examples=200, plot=True, progress=True, data_dir=None, rounds=5):
    """Benchmarks every file in OUT/manifest.json; returns the benchmark dict (also written)."""
    from ai_edge_litert import __version__ as litert_version

    threads = check_threads(threads)
    manifest = load_manifest(tflite_dir)
    entries = manifest["cells"]
    started = timing.machine_info()

    model, parity_data, parity_note = None, None, None
    if parity_model_dir:
        from dynabert_tf.io import checkpoint

        model_path, _ = model_dir_lib.resolve_model_dir(parity_model_dir)
        model = checkpoint.load_task_model(model_path)
        parity_data, parity_note = parity_lib.parity_inputs(
            manifest, model_path, parity_examples, model.bert_config.vocab_size, data_dir)

    paths = [(os.path.join(tflite_dir, e["file"]), e.get("signature")) for e in entries]
    bar = progress_lib.bar(len(paths) * rounds, progress, "timing", unit="file")
    try:
        latencies = timing.time_files(paths, threads, runs, warmup, rounds, bar)
    finally:
        progress_lib.close(bar)  # an error line starts on a line of its own
    results = []
    checked = progress_lib.wrap(paths, progress and model is not None, "parity", unit="cell")
    for target, entry in zip(checked, entries):  # the bar first: it closes when done
        path, signature = target
        result = {"cell": entry["cell"], "file": entry["file"], "bytes": os.path.getsize(path),
                  "params": entry.get("params"), "flops": entry.get("flops"),
                  "latency_ms": latencies[target]}
        if model is not None:
            reference = parity_lib.keras_outputs(model, parity_data, entry["width_mult"],
                                                 entry["depth_mult"],
                                                 hidden_mult=entry.get("hidden_mult", 1.0))
            result["parity"] = parity_lib.parity(path, reference, parity_data, signature)
        results.append(result)

    for result, entry in zip(results, entries):  # other thread counts: an earlier run's
        result["latency_ms"] = merge_latencies(entry.get("latency_ms"), result["latency_ms"])
    add_ratios(results)
    settings = {"runs": runs, "warmup": warmup, "rounds": rounds,
                "litert_version": litert_version,
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "machine": started}
    by_threads = {**earlier_settings(manifest.get("benchmark")),
                  **{str(t): settings for t in threads}}
    benchmark = {
        "tflite_dir": os.path.abspath(tflite_dir), "quantization": manifest.get("quantization"),
        "seq_len": manifest.get("seq_len"),
        "threads": sorted({int(t) for r in results for t in r["latency_ms"]}),
        "timed_threads": threads, **settings, "delegate": "XNNPACK (LiteRT default)",
        "load_average_after": timing.machine_info()["load_average"],
        "parity_data": parity_note, "by_threads": dict(sorted(by_threads.items(),
                                                              key=lambda kv: int(kv[0]))),
        "cells": results,
    }
    files.write_json(os.path.join(tflite_dir, BENCHMARK), benchmark)
    record_in_manifest(manifest, benchmark, tflite_dir)
    if plot:
        pareto.plot_pareto(manifest, os.path.join(tflite_dir, "pareto.png"))
    return benchmark


def merge_latencies(earlier, now):
    """{str(threads): summary}: `now`'s thread counts, and `earlier`'s others, ascending."""
    kept = {t: v for t, v in (earlier if isinstance(earlier, dict) else {}).items()
            if t not in now and str(t).isdigit() and isinstance(v, dict)}
    return dict(sorted({**kept, **now}.items(), key=lambda kv: int(kv[0])))


def earlier_settings(recorded):
    """{str(threads): settings of the run that timed them} of a manifest's `benchmark` (one
    written before `by_threads` existed: its settings for each of its `threads`)."""
    if not isinstance(recorded, dict):
        return {}
    if isinstance(recorded.get("by_threads"), dict):
        return dict(recorded["by_threads"])
    keys = ("runs", "warmup", "rounds", "litert_version", "date", "machine")
    return {str(t): {k: recorded.get(k) for k in keys} for t in recorded.get("threads") or []}


def add_ratios(results):
    """Adds each result's FLOPs and median latency (per thread count) relative to the full
    cell's (None without a w1.00_d1.00 result)."""
    full = next((r for r in results if r["cell"] == "w1.00_d1.00"), None)
    for result in results:
        result["flops_ratio"] = (result["flops"] / full["flops"]
                                 if full and result.get("flops") else None)
        result["latency_ratio"] = ({t: result["latency_ms"][t]["median"]
                                    / full["latency_ms"][t]["median"]
                                    for t in result["latency_ms"] if t in full["latency_ms"]}
                                   if full else None)


def record_in_manifest(manifest, benchmark, tflite_dir):
    """Adds the benchmark's latencies (every thread count timed so far), ratios and parity to
    the manifest's entries and its settings as `benchmark`, and writes OUT/manifest.json."""
    by_cell = {r["cell"]: r for r in benchmark["cells"]}
    for entry in manifest["cells"]:
        result = by_cell[entry["cell"]]
        entry["latency_ms"] = result["latency_ms"]
        entry["latency_ratio"] = result["latency_ratio"]
        entry["flops_ratio"] = result["flops_ratio"]
        if "parity" in result:
            entry["parity"] = result["parity"]
    earlier_parity = (manifest.get("benchmark") or {}).get("parity_data")
    manifest["benchmark"] = {k: benchmark[k] for k in
                             ("threads", "runs", "warmup", "rounds", "litert_version", "date",
                              "machine", "by_threads")}
    manifest["benchmark"]["parity_data"] = benchmark["parity_data"] or earlier_parity
    files.write_json(os.path.join(tflite_dir, manifest_lib.MANIFEST), manifest)


def markdown_table(header, rows):
    """A Markdown table of `header` and `rows` (lists of strings)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


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
            timed = r["latency_ms"].get(t)  # a cell exported after an earlier run: not yet
            row += ([f"{timed['median']:.2f}", f"{timed['p90']:.2f}"] if timed else ["-", "-"])
        row += [f"{r['latency_ratio'][t]:.3f}" if (r.get("latency_ratio") or {}).get(t)
                is not None else "-" for t in threads]
        row.append(f"{r['flops_ratio']:.3f}" if r.get("flops_ratio") else "-")
        if has_parity:
            p = r.get("parity")
            agree = p and p.get("label_agreement")
            diff = p and (p["max_abs_logit_diff"] if p["max_abs_logit_diff"] is not None
                          else p.get("max_abs_probability_diff"))
            row += ([f"{diff:.2e}" if diff is not None else "-",
                     f"{agree:.3f}" if agree is not None else "-"] if p else ["-", "-"])
        rows.append(row)
    if markdown:
        return markdown_table(header, rows)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    fmt = lambda cols: "  ".join(c.rjust(w) if i else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(cols, widths)))
    return "\n".join([fmt(header)] + [fmt(row) for row in rows])
