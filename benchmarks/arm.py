"""LiteRT's ARM (NEON) kernels under emulation: every exported file run in an arm64 userland.

Step 1, once (root; Debian + PyPI): the arm64 userland and the instruction-counting plugin,
under $ARM_CACHE (default /work/arm-cache):

    bash benchmarks/arm_setup.sh

Step 2: exported files (`python -m mobile.export`, one output directory per quantization mode),
then this script:

    .venv/bin/python benchmarks/arm.py --tflite_dirs=DIR_INT8,DIR_DYNAMIC,DIR_FP16,DIR_FP32

For each file of each manifest (optionally only --cells), on the same --examples inputs (the
task's dev examples, else random tokens) and with one interpreter thread on both sides:

  * x86: `arm_guest_runner.run_file` in this process (LiteRT's x86 kernels);
  * ARM: the same runner under `qemu-aarch64 -L ROOTFS ROOTFS/usr/bin/python3.11`, i.e. the
    aarch64 ai-edge-litert wheel and its ARM kernels, with the insn_count plugin: once on 1
    example and once on all --examples; guest instructions per inference =
    (insns(n) - insns(1)) / (n - 1), so interpreter start-up and file loading cancel out;
  * ARM vs x86: label agreement (argmax) and max |d logit| over the examples.

Guest instructions are a cost proxy that emulation cannot distort (the wall time under qemu
can). Results go to --output (JSON, one entry per file; entries already there for the same file
bytes are skipped, so a killed run resumes) and a markdown table beside it (.md).
"""

import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from benchmarks import arm_guest_runner  # noqa: E402
from dynabert_tf.core import files  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODE_NAMES = {"none": "float32"}

FLAGS = flags.FLAGS


def guest_command(cache, model, inputs, outputs, count, signature, insns_file, cpu):
    """qemu-aarch64 command line running arm_guest_runner.py in the arm64 root."""
    rootfs = os.path.join(cache, "rootfs")
    return ["qemu-aarch64", "-cpu", cpu, "-plugin", f"{os.path.join(cache, 'libinsn_count.so')},"
            f"out={insns_file}", "-L", rootfs, os.path.join(rootfs, "usr/bin/python3.11"),
            os.path.join(HERE, "arm_guest_runner.py"), model, inputs, outputs,
            "--count", str(count), "--signature", signature, "--threads", "1"]


GUEST_ENV = {"PATH": "/usr/bin:/bin", "PYTHONPATH": "/opt/litert", "OPENBLAS_NUM_THREADS": "1",
             "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/tmp", "LANG": "C.UTF-8"}


def run_on_arm(cache, model, inputs_path, count, signature, scratch, cpu):
    """({output name: [count, ...]}, guest instructions, wall seconds) of one guest run."""
    outputs = os.path.join(scratch, f"arm_out_{count}.npz")
    insns_file = os.path.join(scratch, f"insns_{count}.txt")
    start = time.perf_counter()
    done = subprocess.run(guest_command(cache, model, inputs_path, outputs, count, signature,
                                        insns_file, cpu), env=GUEST_ENV, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"guest run of {model} failed ({done.returncode}): "
                           f"{done.stderr.strip()[-2000:]}")
    with np.load(outputs) as saved:
        result = {name: saved[name] for name in saved.files}
    with open(insns_file) as f:
        return result, int(f.read()), seconds


def compare(arm, x86):
    """{"label_agreement", "max_abs_logit_diff", "bitwise_equal"} of ARM vs x86 outputs."""
    diff = max(float(np.abs(arm[k].astype("float64") - x86[k]).max()) for k in x86)
    agree = [arm[k].argmax(-1) == x86[k].argmax(-1) for k in x86 if x86[k].shape[-1] > 1]
    return {"label_agreement": float(np.mean(agree)) if agree else None,
            "max_abs_logit_diff": diff,
            "bitwise_equal": all(np.array_equal(arm[k], x86[k]) for k in x86)}


def measure_file(cache, model, inputs, signature, scratch, cpu):
    """One file: x86 outputs, two guest runs, their comparison and instruction counts."""
    count = len(next(iter(inputs.values())))
    inputs_path = os.path.join(scratch, "inputs.npz")
    np.savez(inputs_path, **inputs)
    x86 = arm_guest_runner.run_file(model, inputs, signature=signature, threads=1)
    _, insns_one, seconds_one = run_on_arm(cache, model, inputs_path, 1, signature, scratch,
                                                cpu)
    arm, insns_all, seconds_all = run_on_arm(cache, model, inputs_path, count, signature,
                                             scratch, cpu)
    per_inference = (insns_all - insns_one) / (count - 1)
    return {**compare(arm, x86), "examples": count,
            "guest_insns_per_inference": per_inference,
            "guest_insns_startup": insns_one - per_inference,
            "guest_insns_runs": {"1": insns_one, str(count): insns_all},
            "emulated_seconds_per_inference": (seconds_all - seconds_one) / (count - 1)}


def entries(tflite_dirs, cells):
    """(key, directory, manifest, entry) for every file to measure, in the given order."""
    from mobile import litert as benchmark

    for directory in tflite_dirs:
        manifest = benchmark.load_manifest(directory)
        for entry in manifest["cells"]:
            if cells and entry["cell"] not in cells:
                continue
            mode = entry.get("quantization", manifest.get("quantization"))
            signature = entry.get("signature") or manifest.get("signature", "serving_default")
            yield f"{entry['cell']}/{MODE_NAMES.get(mode, mode)}/{signature}", directory, \
                manifest, {**entry, "quantization": mode, "signature": signature}


def dir_inputs(directory, manifest, count):
    """(inputs, description): the task's dev examples from the export's vocabulary."""
    from mobile import litert as benchmark

    with open(os.path.join(directory, manifest.get("vocab", "vocab.txt"))) as f:
        vocab_size = sum(1 for _ in f)
    return benchmark.parity_inputs(manifest, directory, count, vocab_size)


def format_table(results):
    """Markdown: one row per cell and mode, cells in first-seen order, float32 last."""
    order = {"int8": 0, "int16x8": 1, "dynamic_range": 2, "float16": 3, "float32": 4}
    rows = sorted(results["files"].values(),
                  key=lambda r: (list(results["cells_order"]).index(r["cell"]),
                                 order.get(r["mode"], 9), r["signature"]))
    float32 = {r["cell"]: r["guest_insns_per_inference"] for r in rows if r["mode"] == "float32"}
    lines = ["| cell | mode | MB | ARM vs x86 labels | max abs dlogit | bit-equal | "
             "guest Minsn / inference | vs float32 | emulated s / inference |",
             "|---|---|---:|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        ratio = (f"{r['guest_insns_per_inference'] / float32[r['cell']]:.2f}"
                 if r["cell"] in float32 else "-")
        agreement = ("-" if r["label_agreement"] is None
                     else f"{r['label_agreement']:.3f} ({r['examples']})")
        lines.append(f"| {r['cell']} | {r['mode']} | {r['bytes'] / 1e6:.1f} | {agreement} | "
                     f"{r['max_abs_logit_diff']:.2e} | {'yes' if r['bitwise_equal'] else 'no'} | "
                     f"{r['guest_insns_per_inference'] / 1e6:,.0f} | {ratio} | "
                     f"{r['emulated_seconds_per_inference']:.1f} |")
    return "\n".join(lines) + "\n"


def versions():
    import ai_edge_litert.interpreter  # noqa: F401
    from importlib import metadata

    qemu = subprocess.run(["qemu-aarch64", "--version"], capture_output=True, text=True)
    return {"qemu": qemu.stdout.splitlines()[0] if qemu.stdout else None,
            "ai_edge_litert": metadata.version("ai-edge-litert"),
            "numpy": np.__version__, "threads": 1}


def main(argv):
    del argv
    if not FLAGS.tflite_dirs:
        raise app.UsageError("--tflite_dirs: give at least one mobile.export output directory")
    if FLAGS.examples < 2:
        raise app.UsageError(f"--examples must be >= 2, got {FLAGS.examples}")
    for needed in ("rootfs/usr/bin/python3.11", "rootfs/opt/litert/.installed",
                   "libinsn_count.so"):
        if not os.path.exists(os.path.join(FLAGS.arm_cache, needed)):
            raise app.UsageError(f"--arm_cache: {FLAGS.arm_cache}/{needed} is missing "
                                 "(run bash benchmarks/arm_setup.sh)")
    results = {"files": {}, "cells_order": []}
    if os.path.isfile(FLAGS.output):
        results = files.read_json(FLAGS.output, "arm results")
    results["versions"] = {**versions(), "qemu_cpu": FLAGS.cpu}
    inputs_cache = {}
    for key, directory, manifest, entry in entries(FLAGS.tflite_dirs, FLAGS.cells):
        if entry["cell"] not in results["cells_order"]:
            results["cells_order"].append(entry["cell"])
        done = results["files"].get(key)
        if done and done.get("sha256") == entry.get("sha256") and \
                done["examples"] == FLAGS.examples:
            print(f"{key}: done, skipped")
            continue
        data_key = (manifest.get("task"), manifest["seq_len"])
        if data_key not in inputs_cache:
            inputs_cache[data_key] = dir_inputs(directory, manifest, FLAGS.examples)
        inputs, description = inputs_cache[data_key]
        print(f"{key}: measuring ({description}) ...", flush=True)
        with tempfile.TemporaryDirectory(prefix="arm_bench_") as scratch:
            measured = measure_file(FLAGS.arm_cache, os.path.join(directory, entry["file"]),
                                    inputs, entry["signature"], scratch, FLAGS.cpu)
        results["files"][key] = {
            "cell": entry["cell"], "mode": MODE_NAMES.get(entry["quantization"],
                                                          entry["quantization"]),
            "signature": entry["signature"], "file": os.path.join(directory, entry["file"]),
            "bytes": entry["bytes"], "sha256": entry.get("sha256"), "seq_len": entry["seq_len"],
            "inputs": description, **measured}
        print(f"{key}: {results['files'][key]['guest_insns_per_inference'] / 1e6:,.0f} M guest "
              f"insns/inference, labels {measured['label_agreement']}, max |dlogit| "
              f"{measured['max_abs_logit_diff']:.2e}", flush=True)
        files.write_json(FLAGS.output, results)
    table = format_table(results)
    files.write_atomic(os.path.splitext(FLAGS.output)[0] + ".md", table, mode="w")
    files.write_json(FLAGS.output, results)
    print(table)


def define_flags():
    """The command-line flags (defined only when run as a script)."""
    flags.DEFINE_list("tflite_dirs", None, "mobile.export output directories (one per mode).")
    flags.DEFINE_list("cells", [], "Only these cells (default: every file of each manifest).")
    flags.DEFINE_integer("examples", 32, "Inputs per file (>= 2); the instruction count is the "
                         "difference between a run on all of them and a run on one.")
    flags.DEFINE_string("arm_cache", os.environ.get("ARM_CACHE", "/work/arm-cache"),
                        "Where benchmarks/arm_setup.sh put rootfs/ and libinsn_count.so.")
    flags.DEFINE_string("cpu", "cortex-a76", "qemu -cpu model: its features (HWCAPs) decide "
                        "which kernels LiteRT picks; the root's /proc/cpuinfo names an A76.")
    flags.DEFINE_string("output", os.path.join(HERE, "results", "arm.json"),
                        "JSON results; the markdown table goes beside it (.md).")


if __name__ == "__main__":
    define_flags()
    app.run(main)
