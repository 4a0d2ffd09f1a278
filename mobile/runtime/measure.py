"""What the run-time costs beside the model: the policy's time per request, the memory of every
resident signature against one cell's, and whether serving queued requests in groups pays.

    python -m mobile.runtime.measure --model=out/rt_elastic [--requests=500]

Prints one JSON object. No TensorFlow. Times are this machine's, under its current load (said
in the output); the ratios within the run are what to compare.
"""

import argparse
import json
import os
import statistics
import time

import numpy as np

from mobile.runtime import Runtime
from mobile.runtime.policy import AdaptivePolicy, Option

SENTENCES = ["a gripping , funny film", "the movie is not good .",
             "an overlong , self-indulgent mess that never finds its footing , despite a "
             "committed cast and a few striking images in the second half of the story ."]


def policy_overhead_us(cells=12, decisions=20000):
    """Median µs of choose + observe for a policy over `cells` synthetic cells (3 buckets)."""
    options = [Option(f"c{i}", 0.5 + i / 100, {32: 1.0 + i, 64: 2.0 + i, 128: 4.0 + i},
                      cost=float(i + 1)) for i in range(cells)]
    policy = AdaptivePolicy(options)
    samples = []
    for i in range(decisions):
        start = time.perf_counter_ns()
        decision = policy.choose(8.0 + (i % 7), 64)
        policy.observe(decision.cell, 64, 3.0 + (i % 5))
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1e3


def batch_resize(runtime):
    """Whether a [1, L] signature runs at [4, L] (LiteRT resize): "ok" or the error."""
    from ai_edge_litert.interpreter import Interpreter

    sig = runtime.spec.cells[0].signatures[runtime.spec.seq_len]
    interpreter = Interpreter(model_path=sig.file)
    runner = interpreter.get_signature_runner(sig.key)
    try:
        inputs = {name: np.ones([4, sig.seq_len], np.int32)
                  for name in ("token_ids", "segment_ids", "padding_mask")}
        runner(**inputs)  # the runner resizes inputs whose shape differs
        return "ok"
    except Exception as e:  # noqa: BLE001 - the answer is the error
        return f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"


def grouping(runtime, requests, group):
    """Per-request ms of serving `requests` queued requests, one decision per `group`."""
    prepared = [runtime.prepare(SENTENCES[i % len(SENTENCES)], slo_ms=1e6)
                for i in range(requests)]
    start = time.perf_counter()
    for i in range(0, requests, group):
        batch = prepared[i:i + group]
        decision = runtime.decide(batch)
        for request in batch:
            runtime.execute(request, decision)
    return (time.perf_counter() - start) * 1e3 / requests


def measure(path, requests=500, threads=1):
    runtime = Runtime.load(path, threads=threads)
    for i in range(requests):
        runtime.classify(SENTENCES[i % len(SENTENCES)], slo_ms=1e6)
    groups = {}
    for _ in range(3):  # interleaved rounds
        for size in (1, 8):
            groups.setdefault(size, []).append(grouping(runtime, requests // 5, size))
    return {
        "model": runtime.spec.path, "cells": len(runtime.spec.cells),
        "signatures": len(runtime.model.keys), "threads": threads,
        "load_average": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
        "controller_us_in_runtime": runtime.controller_overhead_us(),
        "controller_us_12_cells_policy_only": round(policy_overhead_us(), 2),
        "memory": runtime.memory(),
        "batch_resize_to_4": batch_resize(runtime),
        "ms_per_request_group_1": round(min(groups[1]), 4),
        "ms_per_request_group_8": round(min(groups[8]), 4),
        "idle_ms": {f"{c}@{n}": round(v, 4) for (c, n), v in sorted(runtime.idle_ms.items())},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(measure(args.model, args.requests, args.threads), indent=1))


if __name__ == "__main__":
    main()
