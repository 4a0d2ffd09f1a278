"""Latency of .tflite files (or signatures of one) in the LiteRT interpreter, batch 1.

Every file runs in `ai_edge_litert.interpreter.Interpreter` (XNNPACK, the default CPU
delegate) through a signature runner; `time_files` spreads the timed calls of several files
over interleaved rounds, so a burst of background load is shared by all of them rather than
skewing one.
"""

import os
import platform
import time

import numpy as np

from dynabert_tf.core import progress as progress_lib
import mobile.export.inputs as inputs_lib
import mobile.export.tflite as tflite_lib
from mobile.errors import ExportError

# "wall": elapsed time. "thread_cpu": CPU time of the calling thread, which runs the whole
# inference at threads=1 (XNNPACK without a thread pool): what the call costs when no other
# process takes the core, so timings on a loaded machine are not inflated by preemption.
CLOCKS = {"wall": time.perf_counter, "thread_cpu": time.thread_time}


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


def target(item):
    """(path, signature) of a file path or a (path, signature) pair."""
    return (item, None) if isinstance(item, str) else tuple(item)


def timing_inputs(runner):
    """Batch-1 inputs of the runner's sequence length (random ids below 100)."""
    seq_len = int(runner.get_input_details()[tflite_lib.INPUT_NAMES[0]]["shape"][1])
    # Ids below 100 are valid in any vocabulary; static shapes make timing content-free.
    return inputs_lib.random_token_inputs(1, seq_len, 100, seed=1)


def sample_latencies(path, threads, runs=50, warmup=5, inputs=None, signature=None,
                     clock="wall"):
    """`runs` latencies (ms) of one batch-1 call, after `warmup` untimed calls, by `clock`
    (`CLOCKS`; "thread_cpu" only at threads=1)."""
    if clock not in CLOCKS or (clock == "thread_cpu" and threads != 1):
        raise ExportError(f"clock must be one of {', '.join(CLOCKS)} (thread_cpu at one "
                          f"thread only), got {clock!r} at {threads} threads")
    now = CLOCKS[clock]
    runner = signature_runner(path, threads, signature)
    inputs = timing_inputs(runner) if inputs is None else inputs
    for _ in range(warmup):
        runner(**inputs)
    times = []
    for _ in range(runs):
        start = now()
        runner(**inputs)
        times.append((now() - start) * 1e3)
    return times


def summarize(times):
    """{"median", "p90", "mean", "min", "samples"} of latencies in ms."""
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
    `progress`: a `dynabert_tf.core.progress.bar` (or None), advanced once per file and
    round. `clock`: see `sample_latencies`."""
    per_round = max(1, -(-runs // rounds))
    samples = {p: {t: [] for t in threads} for p in paths}
    for _ in range(rounds):
        for path in paths:
            file_path, signature = target(path)
            for t in threads:
                samples[path][t] += sample_latencies(file_path, t, per_round, warmup,
                                                     signature=signature, clock=clock)
            progress_lib.advance(progress)
    return {p: {str(t): summarize(samples[p][t]) for t in threads} for p in paths}


def machine_info():
    """Platform, machine, processor, CPU count and load average of this machine."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor() or None, "cpu_count": os.cpu_count(),
            "load_average": [round(x, 2) for x in load] if load else None}
