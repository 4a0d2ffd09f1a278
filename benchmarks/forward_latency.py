"""Keras forward latency of every cell on the real MiniLM-L6 weights (batch 1, seq 128).

    python benchmarks/forward_latency.py [--threads=2] [--runs=60] [--rounds=6]

Slicing must give a real speed-up: prints latency(cell)/latency(full) beside the FLOPs ratio
and their quotient (1.00: the cell costs exactly what its FLOPs say; target <= 1.15 for every
cell of width >= 0.5), and the same cell's extracted standalone model (a plain dense network
of that size, what slicing can at best match) timed in the same rounds.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from dynabert_tf.io import assets  # noqa: E402
from dynabert_tf.io import checkpoint  # noqa: E402
from dynabert_tf.core import grid as grid_lib  # noqa: E402
from dynabert_tf.elastic import cost  # noqa: E402
from dynabert_tf.elastic.subnetwork import extract_subnetwork  # noqa: E402
from dynabert_tf.evaluation import cell_forward  # noqa: E402


def time_cells(forwards, inputs, runs, rounds):
    """{key: median ms} of the traced `forwards` ({key: cell_forward}): the calls spread over
    `rounds` interleaved rounds, so a change in background load hits all of them alike."""
    for forward in forwards.values():
        for _ in range(3):
            forward(inputs)
    times = {key: [] for key in forwards}
    for _ in range(rounds):
        for key, forward in forwards.items():
            for _ in range(max(1, runs // rounds)):
                start = time.perf_counter()
                forward(inputs)["logits"].numpy()
                times[key].append(time.perf_counter() - start)
    return {key: 1000 * statistics.median(samples) for key, samples in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seq_len", type=int, default=128)
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    model = checkpoint.load_task_model(assets.minilm_dir(), num_classes=2)
    rng = np.random.default_rng(0)
    inputs = {"token_ids": tf.constant(rng.integers(1000, 30000, (1, args.seq_len)), tf.int32),
              "segment_ids": tf.zeros((1, args.seq_len), tf.int32),
              "padding_mask": tf.ones((1, args.seq_len), tf.int32)}
    cells = grid_lib.grid()
    # Each cell twice: sliced from the one elastic model, and as its extracted standalone
    # model (only the kept weights, a plain dense network of that size): the bound slicing
    # can reach on this runtime.
    forwards = {("sliced", cell): cell_forward(model, *cell) for cell in cells}
    forwards.update({("standalone", cell): cell_forward(extract_subnetwork(model, *cell))
                     for cell in cells})
    latencies = time_cells(forwards, inputs, args.runs, args.rounds)
    full_ms = latencies[("sliced", (1.0, 1.0))]
    full_flops = cost.count_flops(model.bert_config, 1.0, 1.0, args.seq_len)
    print(f"Keras forward, batch 1, seq {args.seq_len}, {args.threads} threads, median of "
          f"{args.runs} calls per model in {args.rounds} interleaved rounds")
    print(f"{'cell':<13}{'ms':>8}{'ms/full':>9}{'FLOPs/full':>12}{'time/FLOPs':>12}"
          f"{'standalone ms':>15}{'sliced/standalone':>19}")
    for cell in cells:
        ms, alone = latencies[("sliced", cell)], latencies[("standalone", cell)]
        flops = cost.count_flops(model.bert_config, *cell, args.seq_len)
        time_ratio, flops_ratio = ms / full_ms, flops / full_flops
        print(f"{grid_lib.cell_name(*cell):<13}{ms:>8.2f}{time_ratio:>9.3f}"
              f"{flops_ratio:>12.3f}{time_ratio / flops_ratio:>12.2f}{alone:>15.2f}"
              f"{ms / alone:>19.2f}")

if __name__ == "__main__":
    main()
