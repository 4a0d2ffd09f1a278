"""Multi-worker overhead: one process x 2 threads vs 2 workers x 1 thread, same global batch.

    .venv/bin/python -m benchmarks.distributed                 # MiniLM-L6 shape, batch 32, seq 128
    .venv/bin/python -m benchmarks.distributed --steps 8 --variants plain,stage1

Each configuration runs the project's own training loop (train/loop.py `TrainingLoop` under a
train/runtime.py `Runtime`) in fresh processes: "one_process" is `--distribution=none` with 2
intra-op threads; "two_workers" is `--distribution=multi_worker`, two processes on
127.0.0.1 with 1 thread each (TF_CONFIG with two local ports). Step times after the warm-up
steps are taken from the loop's `on_step` hook; the figure is the median.

Also measured: the gradient bytes all-reduced per step (the student's trainable weights in
float32) and the time of one bare all-reduce of that many bytes between the two local
workers. From these, a model of N machines: step(N) = compute(1) / N + allreduce(N), with a
ring all-reduce moving 2 (N - 1) / N x bytes per worker at a stated network bandwidth.
"""

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BANDWIDTHS_GBIT = (10, 25, 100)
MACHINES = (1, 2, 4, 8, 16)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="plain,stage1",
                        help="plain: full-size label step; stage1: DynaBERT_W (4 widths, "
                        "teacher at full width)")
    parser.add_argument("--batch_size", type=int, default=32, help="global batch")
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6, help="timed steps")
    parser.add_argument("--warmup_steps", type=int, default=2)
    parser.add_argument("--output", help="also write the results as JSON here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run one process
    return parser.parse_args()


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_worker(spec):
    """One training process: times `steps` loop steps after `warmup_steps`; writes JSON."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(spec["threads"])
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    import numpy as np

    from benchmarks.train_step import MINILM_L6
    from dynabert_tf.distillation.grid_trainer import GridTrainer
    from dynabert_tf.models import task_model
    from dynabert_tf.models.backbone import DynaBertBackbone
    from train.loop import TrainingLoop
    from train.runtime import Runtime

    runtime = Runtime.create(spec["distribution"])
    keras.utils.set_random_seed(0)
    with runtime.scope():
        student = task_model.classifier(DynaBertBackbone.from_config_object(MINILM_L6), 2)
        if spec["variant"] == "plain":
            trainer = GridTrainer(student, None, loss_mode="labels")
        else:
            teacher = task_model.classifier(DynaBertBackbone.from_config_object(MINILM_L6), 2)
            trainer = GridTrainer(student, teacher, width_mults=(1.0, 0.75, 0.5, 0.25),
                                  teacher_width="full", lambda_hidden=0.1)
        optimizer = keras.optimizers.AdamW(2e-5)
    total = spec["warmup_steps"] + spec["steps"]
    rng = np.random.default_rng(0)
    batch, seq = spec["batch_size"], spec["seq_len"]
    features = {"token_ids": rng.integers(1, MINILM_L6.vocab_size, (total * batch, seq),
                                          dtype="int32"),
                "segment_ids": np.zeros((total * batch, seq), "int32"),
                "padding_mask": np.ones((total * batch, seq), "int32")}
    labels = rng.integers(0, 2, total * batch).astype("int32")
    stamps = []
    loop = TrainingLoop(trainer, optimizer, os.path.join(spec["state_dir"], spec["name"]),
                        runtime, checkpoint_every=0, verbose=0,
                        on_step=lambda step, loss: stamps.append(time.perf_counter()))
    loop.fit(lambda epoch: tf.data.Dataset.from_tensor_slices((features, labels)).batch(batch),
             1, total)
    step_seconds = np.diff(stamps[spec["warmup_steps"] - 1:]).tolist()
    gradient_bytes = 4 * sum(int(np.prod(v.shape)) for v in student.trainable_variables)
    result = {"step_seconds": step_seconds, "gradient_bytes": gradient_bytes}
    if spec["distribution"] == "multi_worker":
        result["allreduce_seconds"] = _time_allreduce(runtime, gradient_bytes)
    if runtime.is_chief:
        with open(spec["result"], "w") as f:
            json.dump(result, f)


def _time_allreduce(runtime, num_bytes, repeats=5):
    """Median seconds of one all-reduce of `num_bytes` of float32 between the workers."""
    import tensorflow as tf

    strategy = runtime.strategy
    values = tf.ones([num_bytes // 4])
    reduce = tf.function(lambda: strategy.reduce(
        tf.distribute.ReduceOp.SUM, strategy.run(lambda: values), axis=None))
    reduce()  # warm-up: tracing, connection set-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        float(reduce()[0])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _launch(spec, workers):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_CONFIG", None)
    if workers == 1:
        commands = [(spec, env)]
    else:
        cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(workers)]}
        commands = [(spec, {**env, "TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}})})
            for index in range(workers)]
    processes = [subprocess.Popen([sys.executable, "-m", "benchmarks.distributed",
                                   "--worker", json.dumps(s)], cwd=ROOT, env=e)
                 for s, e in commands]
    codes = [p.wait() for p in processes]
    if any(codes):
        raise RuntimeError(f"{spec['name']}: a process exited with {codes}")
    with open(spec["result"]) as f:
        return json.load(f)


def scaling_table(compute_seconds, gradient_bytes):
    """Expected seconds per step on N machines for each bandwidth (ring all-reduce)."""
    rows = []
    for machines in MACHINES:
        row = {"machines": machines}
        for gbit in BANDWIDTHS_GBIT:
            moved = 2 * (machines - 1) / machines * gradient_bytes
            row[f"{gbit}Gbit"] = compute_seconds / machines + moved * 8 / (gbit * 1e9)
        rows.append(row)
    return rows


def main():
    args = parse_args()
    if args.worker:
        return run_worker(json.loads(args.worker))
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
               "load_before": os.getloadavg()[0], "batch_size": args.batch_size,
               "seq_len": args.seq_len, "variants": {}}
    with tempfile.TemporaryDirectory() as scratch:
        for variant in args.variants.split(","):
            measured = {}
            for name, distribution, workers, threads in (
                    ("one_process", "none", 1, 2), ("two_workers", "multi_worker", 2, 1)):
                spec = {"name": f"{variant}_{name}", "variant": variant,
                        "distribution": distribution, "threads": threads,
                        "batch_size": args.batch_size, "seq_len": args.seq_len,
                        "steps": args.steps, "warmup_steps": args.warmup_steps,
                        "state_dir": scratch,
                        "result": os.path.join(scratch, f"{variant}_{name}.json")}
                measured[name] = _launch(spec, workers)
                median = statistics.median(measured[name]["step_seconds"])
                print(f"{variant} {name}: {median:.3f} s/step ({1 / median:.3f} steps/s)")
            one = statistics.median(measured["one_process"]["step_seconds"])
            two = statistics.median(measured["two_workers"]["step_seconds"])
            gradient_bytes = measured["two_workers"]["gradient_bytes"]
            results["variants"][variant] = {
                "one_process_s": one, "two_workers_s": two, "overhead": two / one,
                "gradient_bytes": gradient_bytes,
                "allreduce_s_localhost": measured["two_workers"]["allreduce_seconds"],
                "scaling": scaling_table(one, gradient_bytes)}
            print(f"{variant}: two workers / one process = {two / one:.2f}x; all-reduce of "
                  f"{gradient_bytes / 1e6:.1f} MB on localhost "
                  f"{measured['two_workers']['allreduce_seconds']:.3f} s")
    results["load_after"] = os.getloadavg()[0]
    print(json.dumps(results, indent=1))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
