"""Keras forward latency of every cell on the real MiniLM-L6 weights (batch 1, seq 128).

    python benchmarks/forward_latency.py [--threads=2] [--runs=30]

Slicing must give a real speed-up: prints latency(cell)/latency(full) beside the FLOPs ratio
and their quotient (1.00: the cell costs exactly what its FLOPs say; target <= 1.15 for every
cell of width >= 0.5).
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
from dynabert_tf.elastic import grid as grid_lib  # noqa: E402
from dynabert_tf.elastic import cost  # noqa: E402
from dynabert_tf.evaluation import cell_forward  # noqa: E402


def time_cell(model, inputs, width, depth, runs):
    forward = cell_forward(model, width, depth)
    for _ in range(3):
        forward(inputs)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        forward(inputs)["logits"].numpy()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--seq_len", type=int, default=128)
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    model = checkpoint.load_task_model(assets.minilm_dir(), num_classes=2)
    rng = np.random.default_rng(0)
    inputs = {"token_ids": tf.constant(rng.integers(1000, 30000, (1, args.seq_len)), tf.int32),
              "segment_ids": tf.zeros((1, args.seq_len), tf.int32),
              "padding_mask": tf.ones((1, args.seq_len), tf.int32)}
    full_ms = full_flops = None
    print(f"Keras forward, batch 1, seq {args.seq_len}, {args.threads} threads, "
          f"median of {args.runs}")
    print(f"{'cell':<13}{'ms':>8}{'ms/full':>9}{'FLOPs/full':>12}{'time/FLOPs':>12}")
    for width, depth in grid_lib.grid():
        ms = time_cell(model, inputs, width, depth, args.runs)
        flops = cost.count_flops(model.bert_config, width, depth, args.seq_len)
        full_ms, full_flops = full_ms or ms, full_flops or flops
        time_ratio, flops_ratio = ms / full_ms, flops / full_flops
        print(f"{grid_lib.cell_name(width, depth):<13}{ms:>8.2f}{time_ratio:>9.3f}"
              f"{flops_ratio:>12.3f}{time_ratio / flops_ratio:>12.2f}")


if __name__ == "__main__":
    main()
