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
  keras_hub     keras-hub's BertBackbone + a Dense classifier of the same shape, one plain
                fine-tuning step (AdamW, label loss): the peer a Keras user would pick
  forward_b1, forward_b32   our full-size Keras inference forward (training=False) at batch
                1 and 32
Every variant runs in each --precision (float32, mixed_bfloat16, mixed_float16: the Keras
dtype policy its models are built under; float16 steps go through Keras' LossScaleOptimizer);
with --fused_layer_norm=both the training variants also run with the fused LayerNorm +
residual (`dynabert_tf.layers.common.FUSE_RESIDUAL_LAYER_NORM`, read when a step is traced),
as `<variant>+fused`. Timed steps of all variants are interleaved round-robin, so a change in
machine load hits every variant alike; the reported figure is the median per variant. The
ceiling: a `tf.matmul` of --matmul_shape ([4096, 384] x [384, 1536], MiniLM-L6's FFN at batch
32 x seq 128) in each precision's compute dtype, interleaved too, in GFLOP/s. With
--memory_steps N (default 2) each variant then also runs alone in a fresh process (N steps
after the warm-up) and its peak resident memory (the child's VmHWM) is reported.
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

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from dynabert_tf import optimization, precision  # noqa: E402
from dynabert_tf.core import files  # noqa: E402
from dynabert_tf.core.choices import PRECISIONS  # noqa: E402
from dynabert_tf.layers import common  # noqa: E402
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
NOT_TRAINING = ("keras_hub", "forward_b1", "forward_b32")  # no fused LayerNorm twin


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="HF / keras-hub dir, or 'minilm_l6' (the real "
                        "MiniLM-L6 asset); default: random MiniLM-L6")
    parser.add_argument("--config", help="a dir with a config.json: that architecture with "
                        "random weights (a quick check: --config=configs/tiny_bert)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--short_seq_len", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant")
    parser.add_argument("--warmup_steps", type=int, default=2, help="untimed steps (tracing)")
    parser.add_argument("--intra_threads", type=int, default=2)
    parser.add_argument("--inter_threads", type=int, default=1)
    parser.add_argument("--jit_compile", action="store_true", help="XLA for every variant")
    parser.add_argument("--variants", default="plain,stage1,stage2,stage2_cells,plain_seqS,"
                        "keras_hub,forward_b1,forward_b32")
    parser.add_argument("--precision", default="float32",
                        help=f"comma-separated Keras policies among {', '.join(PRECISIONS)}: "
                             "every variant runs in each")
    parser.add_argument("--fused_layer_norm", default="off", choices=("off", "on", "both"),
                        help="training variants with the fused LayerNorm + residual, without "
                             "it, or both (A/B in one run)")
    parser.add_argument("--matmul_shape", default="4096,384,1536",
                        help="M,K,N of the ceiling matmul; '' skips it")
    parser.add_argument("--memory_steps", type=int, default=2,
                        help="steps of each variant alone in its own process for its peak "
                             "RSS; 0: no memory runs")
    parser.add_argument("--output", default="benchmarks/results/train_step.md",
                        help="report file; '' prints the timings only")
    args = parser.parse_args()
    args.precisions = args.precision.split(",")
    for name in args.precisions:
        precision.check(name)
    return args


def make_classifier(path, config_dir=None):
    if config_dir:
        from dynabert_tf.presets import hf_config

        return task_model.classifier(DynaBertBackbone.from_config_object(
            hf_config.read_config(config_dir)), num_classes=2)
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


def make_step(trainer, jit_compile, policy):
    """The trainer's tf.function step; under mixed_float16 `compile` wraps the optimizer in
    a LossScaleOptimizer (the trainer's policy), which the grid trainer scales losses by."""
    trainer.compile(optimizer=precision.for_policy(
        optimization.create_optimizer(2e-5, total_steps=1000), policy))
    trainer.optimizer.build(trainer.student.trainable_variables)
    return tf.function(lambda features, labels: trainer.train_step((features, labels)),
                       jit_compile=jit_compile)


def keras_hub_step(config, policy, jit_compile):
    """keras-hub's BertBackbone + Dense(2) on its pooled output (`config`'s shape), one
    plain AdamW step of the label loss, as a tf.function of (features, labels)."""
    import keras_hub

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=config.vocab_size, num_layers=config.num_layers,
        num_heads=config.num_heads, hidden_dim=config.hidden_size,
        intermediate_dim=config.intermediate_size,
        max_sequence_length=config.max_position_embeddings,
        num_segments=config.type_vocab_size, dropout=config.hidden_dropout)
    head = keras.layers.Dense(2, name="classifier")
    head.build((None, config.hidden_size))
    variables = backbone.trainable_variables + head.trainable_variables
    optimizer = precision.for_policy(
        optimization.create_optimizer(2e-5, total_steps=1000), policy)
    optimizer.build(variables)
    scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

    def step(features, labels):
        with tf.GradientTape() as tape:
            pooled = backbone(features, training=True)["pooled_output"]
            logits = tf.cast(head(pooled), tf.float32)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                labels, logits, from_logits=True))
            target = optimizer.scale_loss(loss) if scaled else loss
        optimizer.apply(tape.gradient(target, variables), variables)
        return loss

    return tf.function(step, jit_compile=jit_compile)


def forward_step(student, jit_compile):
    """Our full-size Keras inference forward: features -> logits."""
    return tf.function(lambda features, labels: student(features, training=False),
                       jit_compile=jit_compile)


def build_variants(names, student, teacher, args, policy):
    """{name: (step, batch)} of the variants `names` under `policy` (models built under it)."""
    config = student.bert_config
    long_batch = make_batch(config, args.batch_size, args.seq_len)
    short_batch = make_batch(config, args.batch_size, args.short_seq_len)
    special = {
        "keras_hub": lambda: (keras_hub_step(config, policy, args.jit_compile), long_batch),
        "forward_b1": lambda: (forward_step(student, args.jit_compile),
                               make_batch(config, 1, args.seq_len)),
        "forward_b32": lambda: (forward_step(student, args.jit_compile),
                                make_batch(config, 32, args.seq_len))}
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
    unknown = set(names) - set(trainers) - set(special)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; known: "
                         f"{sorted({*trainers, *special})}")
    return {name: special[name]() if name in special else
            (make_step(trainers[name](), args.jit_compile, policy),
             short_batch if name == "plain_seqS" else long_batch) for name in names}


def build_entries(names, args):
    """[(label, precision, fused, step, batch)]: every variant in every precision (models
    built under that policy), plus `<variant>+fused` twins with --fused_layer_norm=both."""
    fused_modes = {"off": (False,), "on": (True,), "both": (False, True)}[args.fused_layer_norm]
    entries = []
    for policy in args.precisions:
        with precision.policy(policy):
            student = make_classifier(args.checkpoint, args.config)
            teacher = (make_classifier(args.checkpoint, args.config)
                       if any(name in NEEDS_TEACHER for name in names) else None)
            for fused in fused_modes:
                wanted = [n for n in names if not (fused and n in NOT_TRAINING)]
                built = build_variants(wanted, student, teacher, args, policy)
                entries += [(name + "+fused" * (fused and args.fused_layer_norm == "both"),
                             policy, fused, step, batch) for name, (step, batch) in built.items()]
    return entries, student.bert_config


def run_entry(entry):
    """One call of the entry's step, its results fetched; traced (on its first call) with the
    entry's LayerNorm fusion and under its policy."""
    _, policy, fused, step, batch = entry
    common.FUSE_RESIDUAL_LAYER_NORM = fused
    with precision.policy(policy):
        tf.nest.map_structure(lambda t: t.numpy(), step(*batch))


def matmul_ceiling(shape, precisions, rounds):
    """{compute dtype: median GFLOP/s} of tf.matmul [M, K] x [K, N] in each precision's
    compute dtype, timed interleaved (`rounds` timed calls each, after one untimed)."""
    m, k, n = (int(v) for v in shape.split(","))
    dtypes = sorted({keras.mixed_precision.Policy(p).compute_dtype for p in precisions})
    rng = np.random.default_rng(0)
    operands = {d: (tf.constant(rng.normal(size=(m, k)), d),
                    tf.constant(rng.normal(size=(k, n)), d)) for d in dtypes}
    matmul = tf.function(tf.matmul)
    times = {d: [] for d in dtypes}
    for d in dtypes:
        matmul(*operands[d]).numpy()
    for _ in range(rounds):
        for d in dtypes:
            start = time.perf_counter()
            matmul(*operands[d]).numpy()
            times[d].append(time.perf_counter() - start)
    return {d: 2 * m * k * n / statistics.median(t) / 1e9 for d, t in times.items()}


def load_average():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    args = parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.intra_threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_threads)
    load_before = load_average()
    names = args.variants.split(",")
    entries, config = build_entries(names, args)
    keys = [(label, policy) for label, policy, *_ in entries]
    for key, entry in zip(keys, entries):
        start = time.perf_counter()
        for _ in range(max(1, args.warmup_steps)):  # the first call traces
            run_entry(entry)
        print(f"{key[0]} [{key[1]}]: traced + warm-up in {time.perf_counter() - start:.1f} s",
              flush=True)
    times = {key: [] for key in keys}
    cpu_times = {key: [] for key in keys}
    for rep in range(args.steps):
        for key, entry in zip(keys, entries):
            start, cpu_start = time.perf_counter(), time.process_time()
            run_entry(entry)
            times[key].append(time.perf_counter() - start)
            cpu_times[key].append(time.process_time() - cpu_start)
        print(f"round {rep + 1}/{args.steps}: " + ", ".join(
            f"{n} [{p}] {t[-1]:.2f}s ({cpu_times[n, p][-1]:.2f} cpu-s)"
            for (n, p), t in times.items()), flush=True)
    ceiling = (matmul_ceiling(args.matmul_shape, args.precisions, max(3, args.steps))
               if args.matmul_shape else {})
    for dtype, gflops in ceiling.items():
        print(f"matmul {args.matmul_shape} {dtype}: {gflops:.1f} GFLOP/s", flush=True)
    load_after = load_average()
    if not args.output:
        print_peak_rss()
        return
    peak_rss = ({key: peak_rss_mb(key, args) for key in keys} if args.memory_steps else {})
    load_memory = load_average()
    write_report(args, times, cpu_times, peak_rss, (load_before, load_after, load_memory),
                 config, ceiling)


def peak_rss_mb(key, args):
    """Peak resident memory (MB) of a fresh process running only the variant of `key`
    ((label, precision); a `+fused` label runs with --fused_layer_norm=on).

    The child reports its own VmHWM: a forked child's ru_maxrss would include this process's
    memory at fork time.
    """
    label, policy = key
    name = label.removesuffix("+fused")
    fused = "on" if label.endswith("+fused") or args.fused_layer_norm == "on" else "off"
    command = [sys.executable, "-m", "benchmarks.train_step", f"--variants={name}",
               f"--precision={policy}", f"--fused_layer_norm={fused}", "--matmul_shape=",
               f"--steps={args.memory_steps}", f"--warmup_steps={args.warmup_steps}",
               f"--batch_size={args.batch_size}", f"--seq_len={args.seq_len}",
               f"--short_seq_len={args.short_seq_len}", f"--intra_threads={args.intra_threads}",
               f"--inter_threads={args.inter_threads}", "--memory_steps=0", "--output="]
    if args.checkpoint:
        command.append(f"--checkpoint={args.checkpoint}")
    if args.config:
        command.append(f"--config={args.config}")
    if args.jit_compile:
        command.append("--jit_compile")
    result = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("VmHWM:")]
    if result.returncode or not lines:
        raise SystemExit(f"memory run of {name} failed (exit {result.returncode}):\n"
                         f"{result.stderr[-2000:]}")
    megabytes = int(lines[-1].split()[1]) / 1024  # kB
    print(f"{label} [{policy}]: peak RSS {megabytes:.0f} MB in its own process", flush=True)
    return megabytes


def print_peak_rss():
    with open("/proc/self/status") as f:
        print(next(line for line in f if line.startswith("VmHWM:")).strip(), flush=True)


def write_report(args, times, cpu_times, peak_rss, loads, config, ceiling):
    wall = {key: statistics.median(t) for key, t in times.items()}
    cpu = {key: statistics.median(t) for key, t in cpu_times.items()}
    rows = []
    for key in times:
        name, policy = key
        base, suffix = name.removesuffix("+fused"), "+fused" * name.endswith("+fused")
        plain = ("plain" + suffix, policy)  # ratios within one precision and fusion
        ratio = lambda medians: (f"{medians[key] / medians[plain]:.2f}x"
                                 if plain in medians else "-")
        speedup = (f"{wall[name, 'float32'] / wall[key]:.2f}x"
                   if (name, "float32") in wall else "-")
        label = name.replace("seqS", f"seq{args.short_seq_len}")
        batch = {"forward_b1": 1, "forward_b32": 32}.get(base, args.batch_size)
        seq = args.short_seq_len if base == "plain_seqS" else args.seq_len
        rss = f"{peak_rss[key]:.0f}" if key in peak_rss else "-"
        rows.append(f"| {label} | {policy} | {batch} | {seq} | {wall[key]:.3f} | "
                    f"{min(times[key]):.3f} | {ratio(wall)} | {speedup} | {cpu[key]:.2f} | "
                    f"{ratio(cpu)} | {rss} |")
    ceiling_line = ("Ceiling: tf.matmul [{0}, {1}] x [{1}, {2}], median of interleaved calls: "
                    .format(*args.matmul_shape.split(",")) + ", ".join(
                        f"{dtype} {gflops:.1f} GFLOP/s" for dtype, gflops in ceiling.items())
                    + "." if ceiling else "No matmul ceiling (--matmul_shape='').")
    cpu_model = subprocess.run(["bash", "-c", "lscpu | grep 'Model name' | cut -d: -f2"],
                               capture_output=True, text=True).stdout.strip()
    command = " ".join(["python -m benchmarks.train_step"] + [
        f"--{k}" if v is True else f"--{k}={v}" for k, v in vars(args).items()
        if v not in (None, False) and k not in ("output", "precisions")])
    text = "\n".join([
        "# Training-step benchmark", "",
        f"Command: `{command}`", "",
        f"Machine: {os.cpu_count()} CPU cores ({cpu_model or platform.processor()}), "
        f"TensorFlow {tf.__version__}, intra-op threads {args.intra_threads}, "
        f"inter-op {args.inter_threads}, "
        f"XLA {'on' if args.jit_compile else 'off'} for every variant.",
        f"Model: hidden {config.hidden_size}, {config.num_layers} layers, {config.num_heads} "
        f"heads, FFN {config.intermediate_size}, vocab {config.vocab_size} "
        f"({args.checkpoint or 'random init'}); batch {args.batch_size}; LayerNorm + residual "
        f"fusion: {args.fused_layer_norm}.",
        f"Load average (1, 5, 15 min) before: {loads[0]}; after the timed steps: {loads[1]}; "
        f"after the memory runs: {loads[2]}.",
        f"{args.warmup_steps} warm-up steps excluded; {args.steps} timed steps per variant, "
        "interleaved round-robin. Wall seconds per step, and CPU seconds of this process per "
        "step (user + system, all threads; less sensitive to other processes' load). " + (
            f"Peak RSS: the variant alone in a fresh process ({args.memory_steps} steps after "
            "the warm-up; model(s), optimizer, traced step), its VmHWM."
            if peak_rss else "No memory runs (--memory_steps=0)."),
        "Ratios to plain are within one precision (and fusion: a `+fused` row against "
        "plain+fused); 'float32 / this' is the same variant's float32 median over this one's "
        "(its speed-up).", ceiling_line, "",
        "| variant | precision | batch | seq | median wall s | min wall s | wall / plain "
        "| float32 / this | median cpu s | cpu / plain | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|", *rows, ""])
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
    files.write_atomic(args.output, text, mode="w")
    print(text)


if __name__ == "__main__":
    main()
