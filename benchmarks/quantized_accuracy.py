"""Dev accuracy of every exported cell beside its float (Keras) cell, and their label agreement.

    python benchmarks/quantized_accuracy.py --tflite_dir=O --model_dir=workdirs/demo \
        --output=benchmarks/results/int8_demo_grid.json

`mobile.benchmark --parity` reports agreement and max |d logit| on the first N dev sentences;
this adds the task metric the issue's int8 target is stated in (accuracy within 1 point of
float, >= 98% label agreement), on all dev sentences (classification tasks). Results: JSON +
a markdown table beside it.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from dynabert_tf.core import files  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("tflite_dir", None, "Directory written by mobile.export (per-cell files).")
flags.DEFINE_string("model_dir", None, "The workdir or model dir the files were exported from.")
flags.DEFINE_integer("examples", None, "First N dev sentences (default all).")
flags.DEFINE_list("cells", None, "Only these cells (default every cell of the manifest).")
flags.DEFINE_string("output", None, "JSON results file (.md written beside it); cells already "
                    "in it are kept and not measured again.")
flags.mark_flags_as_required(["tflite_dir", "model_dir", "output"])


def main(argv):
    del argv
    from dynabert_tf.io import checkpoint
    from mobile import export, litert as benchmark
    from mobile.export import inputs as inputs_lib

    manifest = benchmark.load_manifest(FLAGS.tflite_dir)
    model_path, _ = export.resolve_model_dir(FLAGS.model_dir)
    model = checkpoint.load_task_model(model_path)
    dev, labels = inputs_lib.task_inputs(manifest["task"], "dev",
                                         os.path.join(model_path, export.VOCAB),
                                         manifest["seq_len"], FLAGS.examples)
    done = (files.read_json(FLAGS.output, "results")["cells"]
            if os.path.isfile(FLAGS.output) else [])
    rows = list(done)
    for entry in manifest["cells"]:
        if (FLAGS.cells and entry["cell"] not in FLAGS.cells) or \
                entry["cell"] in {r["cell"] for r in done}:
            continue
        path = os.path.join(FLAGS.tflite_dir, entry["file"])
        got = benchmark.tflite_outputs(path, dev)["logits"].argmax(-1)
        want = benchmark.keras_outputs(model, dev, entry["width_mult"],
                                       entry["depth_mult"])["logits"].argmax(-1)
        rows.append({"cell": entry["cell"], "mb": os.path.getsize(path) / 1e6,
                     "label_agreement": float(np.mean(got == want)),
                     "accuracy": float(np.mean(got == labels)),
                     "float_accuracy": float(np.mean(want == labels))})
        print(rows[-1], flush=True)
        files.write_json(FLAGS.output, {"cells": rows})  # a stopped run keeps what it measured
    order = {e["cell"]: i for i, e in enumerate(manifest["cells"])}
    rows.sort(key=lambda r: order.get(r["cell"], len(order)))
    result = {"tflite_dir": os.path.abspath(FLAGS.tflite_dir),
              "quantization": manifest.get("quantization"), "task": manifest["task"],
              "examples": int(len(labels)), "cells": rows}
    files.write_json(FLAGS.output, result)
    lines = [f"{manifest.get('quantization')} vs float, {manifest['task']} dev "
             f"({len(labels)} sentences)", "",
             "| cell | MB | label agree | accuracy | float accuracy | difference |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['cell']} | {r['mb']:.1f} | {100 * r['label_agreement']:.2f}% | "
              f"{100 * r['accuracy']:.2f} | {100 * r['float_accuracy']:.2f} | "
              f"{100 * (r['accuracy'] - r['float_accuracy']):+.2f} |" for r in rows]
    with open(os.path.splitext(FLAGS.output)[0] + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(main)
