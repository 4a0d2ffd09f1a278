"""Times one training step: plain fine-tuning vs the DynaBERT grid steps, in ONE process.

    .venv/bin/python -m benchmarks.train_step                        # MiniLM-L6 shape, random init
    .venv/bin/python -m benchmarks.train_step --checkpoint=minilm_l6 # the real MiniLM-L6
    .venv/bin/python -m benchmarks.train_step --checkpoint DIR       # any HF/keras-hub dir

Variants (same optimizer, tf.function, dropout on as in training):
  plain         one ordinary full-size fine-tuning step (label loss)
  stage1        DynaBERT_W: widths (1, .75, .5, .25), depth 1, teacher at full width
  stage2        DynaBERT, the paper's 12 cells: widths (1, .75, .5, .25) x depths
                (1, .75, .5), teacher at the student's width, shared-prefix multi-depth forward
  stage2_cells  stage2 with each cell run separately (no shared prefix)
  plain_seqS    plain at a short sequence length (dynamic padding gain)
  stage1_minilm stage1 with MiniLM's last-layer relations instead of the hidden MSE
  stage1_both   stage1 with both (not in the default list: --variants=stage1,stage1_minilm,...)
Timed steps of all variants are interleaved round-robin, so a change in machine load hits
every variant alike; the reported figure is the median per variant. With --memory_steps N
(default 2) each variant then also runs alone in a fresh process (N steps after the warm-up)
and its peak resident memory (the child's VmHWM) is reported.
"""

import argparse
import functools
import os
import platform
import statistics
import sys
import subprocess
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from dynabert_tf import optimization  # noqa: E402
from dynabert_tf.io import checkpoint  # noqa: E402
from dynabert_tf.models.config import BertConfig  # noqa: E402
from dynabert_tf.distillation.grid_trainer import GridTrainer  # noqa: E402
from dynabert_tf.models.backbone import DynaBertBackbone
from dynabert_tf.models import task_model  # noqa: E402

MINILM_L6 = BertConfig(vocab_size=30522, hidden_size=384, num_layers=6, num_heads=12,
                       intermediate_size=1536)
WIDTHS = (1.0, 0.75, 0.5, 0.25)  # the paper's grid: 4 widths x 3 depths = 12 cells
DEPTHS = (1.0, 0.75, 0.5)
NEEDS_TEACHER = ("stage1", "stage2", "stage2_cells", "stage1_minilm", "stage1_both")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="HF / keras-hub dir, or 'minilm_l6' (the real "
                        "MiniLM-L6 asset); default: random MiniLM-L6")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--short_seq_len", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant")
    parser.add_argument("--warmup_steps", type=int, default=2, help="untimed steps (tracing)")
    parser.add_argument("--intra_threads", type=int, default=2)
    parser.add_argument("--inter_threads", type=int, default=1)
    parser.add_argument("--jit_compile", action="store_true", help="XLA for every variant")
    parser.add_argument("--variants", default="plain,stage1,stage2,stage2_cells,plain_seqS")
    parser.add_argument("--memory_steps", type=int, default=2,
                        help="steps of each variant alone in its own process for its peak "
                             "RSS; 0: no memory runs")
    parser.add_argument("--output", default="benchmarks/results/train_step.md",
                        help="report file; '' prints the timings only")
    return parser.parse_args()


def make_classifier(path):
    if path == "minilm_l6":
        from dynabert_tf.io import assets

        path = assets.minilm_dir()
    if path:
        return checkpoint.load_task_model(path, num_classes=2)
    return task_model.classifier(DynaBertBackbone.from_config_object(MINILM_L6), num_classes=2)


def make_batch(config, batch_size, seq_len, seed=0):
    rng = np.random.default_rng(seed)
    features = {
        "token_ids": rng.integers(1, config.vocab_size, (batch_size, seq_len)).astype("int32"),
        "segment_ids": np.zeros((batch_size, seq_len), "int32"),
        "padding_mask": np.ones((batch_size, seq_len), "int32")}
    labels = rng.integers(0, 2, batch_size).astype("int32")
    return tf.nest.map_structure(tf.constant, (features, labels))


def make_step(trainer, jit_compile):
    trainer.compile(optimizer=optimization.create_optimizer(2e-5, total_steps=1000))
    trainer.optimizer.build(trainer.student.trainable_variables)
    return tf.function(trainer.train_step, jit_compile=jit_compile)


def build_variants(names, student, teacher, args):
    config = student.bert_config
    long_batch = make_batch(config, args.batch_size, args.seq_len)
    short_batch = make_batch(config, args.batch_size, args.short_seq_len)
    trainers = {
        "plain": lambda: GridTrainer(student, loss_mode="labels"),
        "stage1": lambda: GridTrainer(student, teacher, width_mults=(1.0, 0.75, 0.5, 0.25),
                                      teacher_width="full", lambda_hidden=0.1),
        "stage2": lambda: GridTrainer(student, teacher, width_mults=WIDTHS, depth_mults=DEPTHS,
                                      teacher_width="same", lambda_hidden=1.0),
        "stage2_cells": lambda: GridTrainer(student, teacher, width_mults=WIDTHS,
                                            depth_mults=DEPTHS, teacher_width="same",
                                            lambda_hidden=1.0, share_depth_prefix=False),
        "plain_seqS": lambda: GridTrainer(student, loss_mode="labels"),
        **{f"stage1_{objective}": functools.partial(
            GridTrainer, student, teacher, width_mults=(1.0, 0.75, 0.5, 0.25),
            teacher_width="full", lambda_hidden=0.1, distill_objective=objective)
           for objective in ("minilm", "both")},
    }
    unknown = set(names) - set(trainers)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; known: {sorted(trainers)}")
    return {name: (make_step(trainers[name](), args.jit_compile),
                   short_batch if name == "plain_seqS" else long_batch) for name in names}


def load_average():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    args = parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.intra_threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_threads)
    load_before = load_average()
    names = args.variants.split(",")
    student = make_classifier(args.checkpoint)
    teacher = (make_classifier(args.checkpoint)
               if any(name in NEEDS_TEACHER for name in names) else None)
    variants = build_variants(names, student, teacher, args)
    for name, (step, batch) in variants.items():
        start = time.perf_counter()
        for _ in range(args.warmup_steps):
            tf.nest.map_structure(lambda t: t.numpy(), step(batch))
        print(f"{name}: traced + {args.warmup_steps} warm-up steps in "
              f"{time.perf_counter() - start:.1f} s", flush=True)
    times = {name: [] for name in names}
    cpu_times = {name: [] for name in names}
    for rep in range(args.steps):
        for name, (step, batch) in variants.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            tf.nest.map_structure(lambda t: t.numpy(), step(batch))
            times[name].append(time.perf_counter() - start)
            cpu_times[name].append(time.process_time() - cpu_start)
        print(f"round {rep + 1}/{args.steps}: " + ", ".join(
            f"{n} {t[-1]:.2f}s ({cpu_times[n][-1]:.2f} cpu-s)" for n, t in times.items()),
            flush=True)
    load_after = load_average()
    if not args.output:
        print_peak_rss()
        return
    peak_rss = {name: peak_rss_mb(name, args) for name in names} if args.memory_steps else {}
    load_memory = load_average()
    write_report(args, times, cpu_times, peak_rss, (load_before, load_after, load_memory),
                 student.bert_config)


def peak_rss_mb(name, args):
    """Peak resident memory (MB) of a fresh process running only variant `name`.

    The child reports its own VmHWM: a forked child's ru_maxrss would include this process's
    memory at fork time.
    """
    command = [sys.executable, "-m", "benchmarks.train_step", f"--variants={name}",
               f"--steps={args.memory_steps}", f"--warmup_steps={args.warmup_steps}",
               f"--batch_size={args.batch_size}", f"--seq_len={args.seq_len}",
               f"--short_seq_len={args.short_seq_len}", f"--intra_threads={args.intra_threads}",
               f"--inter_threads={args.inter_threads}", "--memory_steps=0", "--output="]
    if args.checkpoint:
        command.append(f"--checkpoint={args.checkpoint}")
    if args.jit_compile:
        command.append("--jit_compile")
    result = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("VmHWM:")]
    if result.returncode or not lines:
        raise SystemExit(f"memory run of {name} failed (exit {result.returncode}):\n"
                         f"{result.stderr[-2000:]}")
    megabytes = int(lines[-1].split()[1]) / 1024  # kB
    print(f"{name}: peak RSS {megabytes:.0f} MB in its own process", flush=True)
    return megabytes


def print_peak_rss():
    with open("/proc/self/status") as f:
        print(next(line for line in f if line.startswith("VmHWM:")).strip(), flush=True)


def write_report(args, times, cpu_times, peak_rss, loads, config):
    wall = {name: statistics.median(t) for name, t in times.items()}
    cpu = {name: statistics.median(t) for name, t in cpu_times.items()}
    rows = []
    for name in times:
        ratio = lambda medians: (f"{medians[name] / medians['plain']:.2f}x"
                                 if "plain" in medians else "-")
        label = name.replace("seqS", f"seq{args.short_seq_len}")
        seq = args.short_seq_len if name == "plain_seqS" else args.seq_len
        rss = f"{peak_rss[name]:.0f}" if name in peak_rss else "-"
        rows.append(f"| {label} | {seq} | {wall[name]:.3f} | {min(times[name]):.3f} | "
                    f"{ratio(wall)} | {cpu[name]:.2f} | {ratio(cpu)} | {rss} |")
    cpu_model = subprocess.run(["bash", "-c", "lscpu | grep 'Model name' | cut -d: -f2"],
                               capture_output=True, text=True).stdout.strip()
    command = " ".join(["python -m benchmarks.train_step"] + [
        f"--{k}" if v is True else f"--{k}={v}" for k, v in vars(args).items()
        if v not in (None, False) and k != "output"])
    text = "\n".join([
        "# Training-step benchmark", "",
        f"Command: `{command}`", "",
        f"Machine: {os.cpu_count()} CPU cores ({cpu_model or platform.processor()}), "
        f"TensorFlow {tf.__version__}, intra-op threads {args.intra_threads}, "
        f"inter-op {args.inter_threads}, "
        f"XLA {'on' if args.jit_compile else 'off'} for every variant.",
        f"Model: hidden {config.hidden_size}, {config.num_layers} layers, {config.num_heads} "
        f"heads, FFN {config.intermediate_size}, vocab {config.vocab_size} "
        f"({args.checkpoint or 'random init'}); batch {args.batch_size}.",
        f"Load average (1, 5, 15 min) before: {loads[0]}; after the timed steps: {loads[1]}; "
        f"after the memory runs: {loads[2]}.",
        f"{args.warmup_steps} warm-up steps excluded; {args.steps} timed steps per variant, "
        "interleaved round-robin. Wall seconds per step, and CPU seconds of this process per "
        "step (user + system, all threads; less sensitive to other processes' load). " + (
            f"Peak RSS: the variant alone in a fresh process ({args.memory_steps} steps after "
            "the warm-up; model(s), optimizer, traced step), its VmHWM."
            if peak_rss else "No memory runs (--memory_steps=0)."), "",
        "| variant | seq | median wall s | min wall s | wall / plain | median cpu s "
        "| cpu / plain | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|", *rows, ""])
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
    with open(args.output, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
