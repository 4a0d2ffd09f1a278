"""The elastic TFLite file on MiniLM-L6 shape: size, per-signature latency, real lengths.

Step 1: a real-size workdir (MiniLM-L6 weights + a 2-class head) and the two exports:

    .venv/bin/python benchmarks/mobile_keras_hub.py --make_workdir=W
    .venv/bin/python -m mobile.export --model_dir=W --output_dir=P                   # 12 files
    .venv/bin/python -m mobile.export --model_dir=W --output_dir=E --format=elastic \\
        --seq_buckets=32,64                                           # one file, 36 signatures

Step 2: this script, in one process, LiteRT with XNNPACK, batch 1, one thread by default:

    .venv/bin/python benchmarks/elastic_tflite.py --per_cell_dir=P --elastic_dir=E

  * sizes: the elastic file, the full cell's file, the 12 files together, and what the
    converter alone wrote / identical constants merged would weigh (the manifest's sharing
    statistics);
  * every cell's signature against the cell's own file at seq 128, the two timed in
    interleaved rounds (median of --runs calls each, wall and CPU time);
  * parity: every cell's signature against the cell's own file on the first
    --parity_examples dev sentences (max |logit difference|, label agreement);
  * real lengths: each rt_polarity dev sentence through the smallest bucket that holds it
    vs through the 128-token signature, alternating per sentence (medians over the
    sentences), with the labels of the two compared.

Prints markdown tables and writes --output (JSON).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from dynabert_tf.core import files  # noqa: E402

flags.DEFINE_string("per_cell_dir", None, "mobile.export output, --format=per_cell.")
flags.DEFINE_string("elastic_dir", None, "mobile.export output, --format=elastic.")
flags.DEFINE_integer("threads", 1, "LiteRT threads.")
flags.DEFINE_integer("runs", 40, "Timed calls per signature / file at seq 128.")
flags.DEFINE_integer("rounds", 4, "Interleaved rounds the runs are spread over.")
flags.DEFINE_list("real_length_cells", ["w1.00_d1.00", "w0.25_d0.50"],
                  "Cells timed on the real dev sentences.")
flags.DEFINE_integer("sentences", 0, "Dev sentences to time (0: all).")
flags.DEFINE_integer("parity_examples", 200, "Dev sentences for the parity check (0: none).")
flags.DEFINE_string("output", "/tmp/elastic_tflite.json", "JSON results.")
FLAGS = flags.FLAGS


def sizes(per_cell, elastic):
    files_bytes = {e["cell"]: e["bytes"] for e in per_cell["cells"]}
    stored = elastic["files"][0]
    sharing = stored["weight_sharing"] or {}
    full = files_bytes["w1.00_d1.00"]
    rows = {"per_cell_total": sum(files_bytes.values()), "full_cell_file": full,
            "converter_output": stored["converter_bytes"],
            "identical_merged": stored["bytes"] + sharing.get("prefix_bytes", 0),
            "elastic_file": stored["bytes"], "signatures": len(stored["signatures"])}
    rows["ratios_to_full_cell"] = {k: rows[k] / full for k in (
        "per_cell_total", "converter_output", "identical_merged", "elastic_file")}
    return rows


def _timed(runner, inputs):
    """(wall ms, CPU ms of this thread) of one call. With one LiteRT thread the work runs on
    the calling thread, so the CPU time is what the call costs, whatever else the machine
    runs; the wall time also counts the waits for a core."""
    wall, cpu = time.perf_counter(), time.thread_time()
    outputs = runner(**inputs)
    return (time.perf_counter() - wall) * 1e3, (time.thread_time() - cpu) * 1e3, outputs


def per_signature_latency(per_cell_dir, per_cell, elastic_dir, elastic):
    """Each cell's signature vs its own file: `runs` calls each, in `rounds` interleaved
    rounds (every file and signature once per round)."""
    from mobile import litert as benchmark_lib
    from mobile.export import inputs as inputs_lib

    path = os.path.join(elastic_dir, elastic["cells"][0]["file"])
    own_files = {e["cell"]: e["file"] for e in per_cell["cells"]}
    x = inputs_lib.random_token_inputs(1, elastic["seq_len"], 100, seed=1)
    runners = {}
    for entry in elastic["cells"]:
        runners[(entry["cell"], "own")] = benchmark_lib.signature_runner(
            os.path.join(per_cell_dir, own_files[entry["cell"]]), FLAGS.threads)
        runners[(entry["cell"], "signature")] = benchmark_lib.signature_runner(
            path, FLAGS.threads, entry["signature"])
    samples = {key: ([], []) for key in runners}
    per_round = max(1, FLAGS.runs // FLAGS.rounds)
    for _ in range(FLAGS.rounds):
        for key, runner in runners.items():
            for _ in range(3):
                runner(**x)
            for _ in range(per_round):
                wall, cpu, _ = _timed(runner, x)
                samples[key][0].append(wall)
                samples[key][1].append(cpu)
    rows = []
    for entry in elastic["cells"]:
        own, sig = samples[(entry["cell"], "own")], samples[(entry["cell"], "signature")]
        rows.append({"cell": entry["cell"],
                     "own_file_ms": float(np.median(own[0])),
                     "signature_ms": float(np.median(sig[0])),
                     "ratio": float(np.median(sig[0]) / np.median(own[0])),
                     "own_file_cpu_ms": float(np.median(own[1])),
                     "signature_cpu_ms": float(np.median(sig[1])),
                     "cpu_ratio": float(np.median(sig[1]) / np.median(own[1]))})
    return rows


def _rss_mb():
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def resident_memory(elastic_dir, elastic):
    """VmRSS (MB) growth: the elastic file opened, after its first signature ran, after all
    of the cells' signatures ran (XNNPACK packs each signature's weights on its first call)."""
    from ai_edge_litert.interpreter import Interpreter

    from mobile.export import inputs as inputs_lib

    start = _rss_mb()
    interpreter = Interpreter(model_path=os.path.join(elastic_dir, elastic["cells"][0]["file"]),
                              num_threads=FLAGS.threads)
    opened = _rss_mb()
    x = inputs_lib.random_token_inputs(1, elastic["seq_len"], 100, seed=1)
    interpreter.get_signature_runner(elastic["cells"][0]["signature"])(**x)
    first = _rss_mb()
    for entry in elastic["cells"][1:]:
        interpreter.get_signature_runner(entry["signature"])(**x)
    return {"opened_mb": opened - start, "first_signature_mb": first - start,
            "all_cells_mb": _rss_mb() - start}


def parity(per_cell_dir, per_cell, elastic_dir, elastic):
    """{cell: {"max_abs_logit_diff", "label_agreement"}}: signature vs own file, seq_len."""
    from ai_edge_litert.interpreter import Interpreter

    from mobile import litert as benchmark_lib
    from mobile.export import inputs as inputs_lib

    inputs, _ = inputs_lib.task_inputs(elastic["task"] or "rt_polarity", "dev",
                                       os.path.join(elastic_dir, elastic["vocab"]),
                                       elastic["seq_len"], FLAGS.parity_examples)
    own_files = {e["cell"]: e["file"] for e in per_cell["cells"]}
    interpreter = Interpreter(model_path=os.path.join(elastic_dir, elastic["cells"][0]["file"]))
    result = {}
    for entry in elastic["cells"]:
        signature = interpreter.get_signature_runner(entry["signature"])
        own = benchmark_lib.signature_runner(os.path.join(per_cell_dir,
                                                          own_files[entry["cell"]]))
        diff, agree = 0.0, []
        for i in range(len(inputs["token_ids"])):
            x = {k: v[i:i + 1] for k, v in inputs.items()}
            got, expected = signature(**x), own(**x)
            name = next(iter(got))
            diff = max(diff, float(np.abs(got[name] - expected[name]).max()))
            agree.append(got[name].argmax() == expected[name].argmax())
        result[entry["cell"]] = {"max_abs_logit_diff": diff,
                                 "label_agreement": float(np.mean(agree)),
                                 "examples": len(agree)}
    return result


def real_lengths(elastic_dir, elastic, cell):
    from ai_edge_litert.interpreter import Interpreter

    from mobile.export import elastic_file as elastic_lib
    from mobile.export import inputs as inputs_lib

    seq_len = elastic["seq_len"]
    entry = next(e for e in elastic["cells"] if e["cell"] == cell)
    buckets = {int(k): v for k, v in entry["seq_buckets"].items()}
    buckets[seq_len] = entry["signature"]
    vocab = os.path.join(elastic_dir, elastic["vocab"])
    inputs, _ = inputs_lib.task_inputs(elastic["task"] or "rt_polarity", "dev", vocab, seq_len,
                                       FLAGS.sentences or None)
    lengths = inputs["padding_mask"].sum(1)
    interpreter = Interpreter(model_path=os.path.join(elastic_dir, entry["file"]),
                              num_threads=FLAGS.threads)
    runners = {length: interpreter.get_signature_runner(name)
               for length, name in buckets.items()}
    one = lambda i, length: {k: v[i:i + 1, :length] for k, v in inputs.items()}
    for length in buckets:  # warm-up: XNNPACK prepares each signature on its first call
        for _ in range(3):
            runners[length](**one(0, length))
    bucketed, fixed, bucketed_cpu, fixed_cpu, agree, used = [], [], [], [], [], []
    for i, length in enumerate(lengths):
        bucket = elastic_lib.bucket_for(int(length), list(buckets))
        wall, cpu, short = _timed(runners[bucket], one(i, bucket))
        bucketed.append(wall)
        bucketed_cpu.append(cpu)
        wall, cpu, full = _timed(runners[seq_len], one(i, seq_len))
        fixed.append(wall)
        fixed_cpu.append(cpu)
        name = next(iter(short))
        agree.append(short[name].argmax() == full[name].argmax())
        used.append(bucket)
    counts = {str(b): int(np.sum(np.asarray(used) == b)) for b in sorted(buckets)}
    return {"cell": cell, "sentences": len(lengths),
            "tokens_median": float(np.median(lengths)), "tokens_mean": float(lengths.mean()),
            "bucket_counts": counts,
            "bucketed_median_ms": float(np.median(bucketed)),
            "fixed_median_ms": float(np.median(fixed)),
            "ratio": float(np.median(bucketed) / np.median(fixed)),
            "bucketed_mean_ms": float(np.mean(bucketed)), "fixed_mean_ms": float(np.mean(fixed)),
            "bucketed_cpu_median_ms": float(np.median(bucketed_cpu)),
            "fixed_cpu_median_ms": float(np.median(fixed_cpu)),
            "cpu_ratio": float(np.median(bucketed_cpu) / np.median(fixed_cpu)),
            "label_agreement": float(np.mean(agree))}


def main(argv):
    del argv
    from mobile import litert as benchmark_lib

    per_cell = files.read_json(os.path.join(FLAGS.per_cell_dir, "manifest.json"), "manifest")
    elastic = files.read_json(os.path.join(FLAGS.elastic_dir, "manifest.json"), "manifest")
    load_before = os.getloadavg()
    memory = resident_memory(FLAGS.elastic_dir, elastic)  # first, in a fresh process
    result = {"machine": benchmark_lib.machine_info(), "threads": FLAGS.threads,
              "sizes": sizes(per_cell, elastic), "resident_memory": memory,
              "latency_seq128": per_signature_latency(FLAGS.per_cell_dir, per_cell,
                                                      FLAGS.elastic_dir, elastic),
              "parity": (parity(FLAGS.per_cell_dir, per_cell, FLAGS.elastic_dir, elastic)
                         if FLAGS.parity_examples else None),
              "real_lengths": [real_lengths(FLAGS.elastic_dir, elastic, cell)
                               for cell in FLAGS.real_length_cells]}
    result["load_average_before_after"] = [list(load_before), list(os.getloadavg())]
    files.write_json(FLAGS.output, result)

    s = result["sizes"]
    print("| file | MB | x full cell |\n|---|---|---|")
    for key in ("full_cell_file", "per_cell_total", "converter_output", "identical_merged",
                "elastic_file"):
        ratio = s[key] / s["full_cell_file"]
        print(f"| {key} | {s[key] / 1e6:.2f} | {ratio:.2f} |")
    print("\n| cell | own file ms | signature ms | ratio | own file CPU ms | signature CPU ms "
          "| CPU ratio |\n|---|---|---|---|---|---|---|")
    for row in result["latency_seq128"]:
        print(f"| {row['cell']} | {row['own_file_ms']:.2f} | {row['signature_ms']:.2f} | "
              f"{row['ratio']:.3f} | {row['own_file_cpu_ms']:.2f} | "
              f"{row['signature_cpu_ms']:.2f} | {row['cpu_ratio']:.3f} |")
    print("\n| cell | sentences | median tokens | buckets | bucketed ms | fixed-128 ms | ratio "
          "| bucketed CPU ms | fixed-128 CPU ms | CPU ratio | labels agree |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")
    for row in result["real_lengths"]:
        print(f"| {row['cell']} | {row['sentences']} | {row['tokens_median']:.0f} | "
              f"{row['bucket_counts']} | {row['bucketed_median_ms']:.2f} | "
              f"{row['fixed_median_ms']:.2f} | {row['ratio']:.3f} | "
              f"{row['bucketed_cpu_median_ms']:.2f} | {row['fixed_cpu_median_ms']:.2f} | "
              f"{row['cpu_ratio']:.3f} | {100 * row['label_agreement']:.1f}% |")
    if result["parity"]:
        worst = max(r["max_abs_logit_diff"] for r in result["parity"].values())
        agree = min(r["label_agreement"] for r in result["parity"].values())
        print(f"\nparity, signature vs own file, {FLAGS.parity_examples} dev sentences: "
              f"max |logit diff| {worst:.3g}, label agreement >= {100 * agree:.1f}%")
    print(f"\nresident memory growth (MB): {result['resident_memory']}")
    print(f"\nload {result['load_average_before_after']}; wrote {FLAGS.output}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["per_cell_dir", "elastic_dir"])
    app.run(main)
