"""Which client opens which quantization mode, and what the probabilities output costs.

    python benchmarks/clients.py --model_dir=workdirs/demo --work_dir=/tmp/clients \
        --task_library_python=/tmp/tfls/bin/python --output=benchmarks/results/clients.json

For each quantization mode, one cell (`--cell`) is exported as `mobile.export` writes it
(TFLite Metadata included) and opened by each client in a subprocess of its own (a client
that aborts on a file must not end the run):

    mediapipe      MediaPipe Tasks' TextClassifier (mediapipe from requirements.txt)
    task_library   the TFLite Task Library's BertNLClassifier (tflite-support 0.4.4: its
                   pins, protobuf<4 and numpy<2, conflict with TensorFlow's, so it runs in
                   the virtual environment `--task_library_python`, e.g.
                   `python -m venv /tmp/tfls && /tmp/tfls/bin/pip install tflite-support==0.4.4 "numpy<2"`;
                   it needs libusb-1.0 on Linux)

Each client classifies `client_text` of a few sentences; the row says whether it opened the
file, its first error line if not, and how often its top label equals the project's LiteRT
run. Then the cost of the probabilities output: the cell with and without it (the same
conversion otherwise), LiteRT thread-CPU time per call, interleaved rounds. JSON + markdown.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from benchmarks.client_subprocess import run_client  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Training workdir or model dir to export.")
flags.DEFINE_string("work_dir", None, "Where the exported files go (deleted files: yours).")
flags.DEFINE_string("cell", "w1.00_d1.00", "The cell exported in every mode.")
flags.DEFINE_list("quantizations", ["none", "float16", "dynamic_range", "int8", "int16x8"],
                  "Modes to export.")
flags.DEFINE_integer("seq_len", 128, "Exported sequence length.")
flags.DEFINE_string("task_library_python", None, "Python of a venv with tflite-support.")
flags.DEFINE_integer("runs", 200, "Timed calls per file and round for the softmax cost.")
flags.DEFINE_string("output", None, "JSON results (.md beside it).")
flags.mark_flags_as_required(["model_dir", "work_dir", "output"])

SENTENCES = ["a gripping, beautifully acted film .",
             "the plot is a mess and the jokes fall flat .",
             "Un café-crème of a movie: naïve, clichéd, yet charming!",
             "It's NOT good... at all?"]

MEDIAPIPE = r"""
import json, sys
from mediapipe.tasks.python.core import base_options
from mediapipe.tasks.python.text import text_classifier
options = text_classifier.TextClassifierOptions(
    base_options=base_options.BaseOptions(model_asset_path=sys.argv[1]))
out = []
with text_classifier.TextClassifier.create_from_options(options) as c:
    for text in json.loads(sys.argv[2]):
        head = c.classify(text).classifications[0]
        out.append({"head": head.head_name, "top": max(head.categories,
                    key=lambda x: x.score).category_name})
print("RESULT " + json.dumps(out))
"""

TASK_LIBRARY = r"""
import json, sys
from tflite_support.task import text
c = text.BertNLClassifier.create_from_file(sys.argv[1])
out = []
for t in json.loads(sys.argv[2]):
    cats = c.classify(t).classifications[0].categories
    out.append({"top": max(cats, key=lambda x: x.score).category_name})
print("RESULT " + json.dumps(out))
"""


def litert_labels(path, encoder, labels, texts):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=path).get_signature_runner("serving_default")
    tops = []
    for text in texts:
        packed = encoder.encode(text)
        out = runner(**{k: np.asarray([getattr(packed, k)], np.int32)
                        for k in ("token_ids", "segment_ids", "padding_mask")})
        tops.append(labels[int(out.get("logits", out.get("probabilities"))[0].argmax())])
    return tops


def softmax_cost(model, cell, work_dir, seq_len):
    """Thread-CPU ms per call of the cell with and without the probabilities output."""
    from dynabert_tf.core import grid as grid_lib
    from mobile.export import cells as cells_lib
    from mobile.litert import timing

    width, depth = grid_lib.parse_cell_name(cell)[:2]
    paths = {}
    for with_probs in (False, True):
        paths[with_probs] = os.path.join(work_dir, f"softmax_{int(with_probs)}.tflite")
        cells_lib.export_cell(model, width, depth, paths[with_probs], seq_len,
                              "dynamic_range", probabilities=with_probs)
    # A copy of the logits-only file, timed as a third file: the A/A noise of the ratio.
    paths["copy"] = os.path.join(work_dir, "softmax_0_copy.tflite")
    with open(paths[False], "rb") as f, open(paths["copy"], "wb") as g:
        g.write(f.read())
    measured = timing.time_files(list(paths.values()), (1,), runs=FLAGS.runs, rounds=5,
                                 clock="thread_cpu")
    result = {name: measured[paths[flag]]["1"]["median"]
              for name, flag in (("logits_only_ms", False), ("with_probabilities_ms", True),
                                 ("logits_only_copy_ms", "copy"))}
    result["ratio"] = result["with_probabilities_ms"] / result["logits_only_ms"]
    result["noise_ratio"] = result["logits_only_copy_ms"] / result["logits_only_ms"]
    del paths["copy"]
    result["bytes"] = {name: os.path.getsize(paths[flag])
                       for name, flag in (("logits_only", False), ("with_probabilities", True))}
    result["machine"] = timing.machine_info()
    return result


def markdown(results):
    lines = [f"Cell {results['cell']} of {results['model_dir']}, seq_len {results['seq_len']}; "
             f"writer {results['writer']}; top label vs the project's LiteRT run on "
             f"{len(SENTENCES)} sentences (client_text).", "",
             "| quantization | outputs | bytes | MediaPipe TextClassifier | "
             "Task Library BertNLClassifier |", "|---|---|---:|---|---|"]
    for row in results["rows"]:
        cells = []
        for client in ("mediapipe", "task_library"):
            r = row.get(client)
            if r is None:
                cells.append("not run")
            elif r["opens"]:
                cells.append(f"opens; top label {r['agreement']:.0%} = LiteRT")
            else:
                cells.append(f"fails: `{r['error']}`")
        lines.append(f"| {row['quantization']} | {', '.join(row['outputs'])} | "
                     f"{row['bytes']:,} | {cells[0]} | {cells[1]} |")
    cost = results.get("softmax_cost")
    if cost:
        lines += ["", f"Probabilities output (dynamic_range, 1 thread, thread-CPU median): "
                  f"{cost['logits_only_ms']:.3f} ms without, {cost['with_probabilities_ms']:.3f}"
                  f" ms with (x{cost['ratio']:.3f}; the same file timed twice: "
                  f"x{cost['noise_ratio']:.3f}); load average "
                  f"{cost['machine']['load_average']}."]
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    from dynabert_tf.core import files
    from dynabert_tf.io import checkpoint
    from mobile import export
    from mobile.export import client_metadata
    from mobile.runtime import model_file
    from mobile.runtime.tokenizer import WordPieceEncoder, client_text

    os.makedirs(FLAGS.work_dir, exist_ok=True)
    texts = [client_text(t) for t in SENTENCES]
    rows = []
    for quantization, class_outputs in [(q, c) for q in FLAGS.quantizations
                                        for c in ("both", "probabilities")]:
        out = os.path.join(FLAGS.work_dir, f"{quantization}_{class_outputs}")
        manifest = export.export_model(FLAGS.model_dir, out, quantization, FLAGS.seq_len,
                                       FLAGS.cell, representative_examples=100,
                                       progress=False, class_outputs=class_outputs)
        entry = manifest["cells"][0]
        path = os.path.join(out, entry["file"])
        metadata = model_file.read_metadata(path)
        encoder = WordPieceEncoder(metadata["vocab.txt"], FLAGS.seq_len)
        reference = litert_labels(path, encoder, manifest["labels"], SENTENCES)
        row = {"quantization": quantization, "class_outputs": class_outputs,
               "outputs": [o["name"] for o in entry["outputs"]], "bytes": entry["bytes"],
               "ops": entry["ops"], "clients": entry["clients"], "reference": reference}
        clients = {"mediapipe": (sys.executable, MEDIAPIPE)}
        if FLAGS.task_library_python:
            clients["task_library"] = (FLAGS.task_library_python, TASK_LIBRARY)
        for client, (python, script) in clients.items():
            result = run_client(python, script, path, texts)
            if result["opens"]:
                result["agreement"] = float(np.mean(
                    [t["top"] == r for t, r in zip(result["tops"], reference)]))
            row[client] = result
            print(quantization, class_outputs, client, result.get("agreement"),
                  result["error"], flush=True)
        rows.append(row)
    model = checkpoint.load_task_model(export.resolve_model_dir(FLAGS.model_dir)[0])
    results = {"model_dir": FLAGS.model_dir, "cell": FLAGS.cell, "seq_len": FLAGS.seq_len,
               "writer": client_metadata.writer_version(), "sentences": SENTENCES,
               "rows": rows,
               "softmax_cost": softmax_cost(model, FLAGS.cell, FLAGS.work_dir, FLAGS.seq_len)}
    files.write_json(FLAGS.output, results)
    files.write_atomic(os.path.splitext(FLAGS.output)[0] + ".md", markdown(results), mode="w")
    print(markdown(results))


if __name__ == "__main__":
    app.run(main)
