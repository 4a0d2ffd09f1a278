"""MediaPipe's TextClassifier against the project's LiteRT run, every cell, all dev sentences.

    python -m mobile.export --model_dir=workdirs/demo --output_dir=/tmp/demo_tflite
    python benchmarks/mediapipe_agreement.py --tflite_dir=/tmp/demo_tflite \
        --model_dir=workdirs/demo --output=benchmarks/results/mediapipe_agreement_demo.json

Per cell: the project's run (the training side's `BertInputEncoder` on the dev text, the
file in LiteRT) and MediaPipe Tasks' `TextClassifier` on the same file, given the text as
README's "Use it from an app" says (`client_text`: accents stripped) and, for the sentences
that normalization changes, as it is (what an app that skips it gets). Reported: label
agreement (all sentences; the accented ones), max |probability difference|, and dev accuracy
of each. JSON + markdown beside it.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("tflite_dir", None, "Per-cell export (mobile.export) of the model.")
flags.DEFINE_string("model_dir", None, "The workdir or model dir it was exported from.")
flags.DEFINE_integer("examples", None, "First N dev sentences (default all).")
flags.DEFINE_string("output", None, "JSON results (.md beside it).")
flags.mark_flags_as_required(["tflite_dir", "model_dir", "output"])


def mediapipe_probabilities(path, texts):
    """[n, classes] scores of MediaPipe's first head (the probabilities) by class index."""
    from mediapipe.tasks.python.core import base_options
    from mediapipe.tasks.python.text import text_classifier

    options = text_classifier.TextClassifierOptions(
        base_options=base_options.BaseOptions(model_asset_path=path))
    rows = []
    with text_classifier.TextClassifier.create_from_options(options) as classifier:
        for text in texts:
            head = classifier.classify(text).classifications[0]
            assert head.head_name == "probability", head.head_name
            rows.append([c.score for c in sorted(head.categories, key=lambda c: c.index)])
    return np.asarray(rows)


def markdown(results):
    lines = [f"{results['examples']} {results['task']} dev sentences ({results['accented']} "
             f"changed by `client_text`), files of {results['tflite_dir']} "
             f"({results['quantization']}, {results['writer']}); MediaPipe "
             f"{results['mediapipe']}.", "",
             "| cell | agreement | accented agreement | max abs d prob | LiteRT acc | "
             "MediaPipe acc | unnormalized: agreement | unnormalized: acc |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results["cells"]:
        lines.append(f"| {r['cell']} | {r['agreement']:.4f} | {r['accented_agreement']:.4f} | "
                     f"{r['max_abs_probability_diff']:.1e} | {r['litert_accuracy']:.4f} | "
                     f"{r['mediapipe_accuracy']:.4f} | {r['raw_agreement']:.4f} | "
                     f"{r['raw_accuracy']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    from importlib import metadata

    from dynabert_tf import data
    from dynabert_tf.core import files
    from mobile import export, litert as benchmark
    from mobile.export import inputs as inputs_lib
    from mobile.runtime.tokenizer import client_text

    manifest = benchmark.load_manifest(FLAGS.tflite_dir)
    model_path, _ = export.resolve_model_dir(FLAGS.model_dir)
    task = data.get_task(manifest["task"])
    examples = data.load_examples(task, task.dev_splits[0])[:FLAGS.examples]
    texts = [e.text_a for e in examples]
    if any(e.text_b is not None for e in examples):
        raise SystemExit("error: sentence-pair tasks are not measured here")
    dev, labels = inputs_lib.task_inputs(manifest["task"], "dev",
                                         os.path.join(model_path, export.VOCAB),
                                         manifest["seq_len"], FLAGS.examples)
    normalized = [client_text(t) for t in texts]
    changed = [i for i, (a, b) in enumerate(zip(texts, normalized)) if a != b]
    results = {"task": manifest["task"], "examples": len(texts), "accented": len(changed),
               "tflite_dir": FLAGS.tflite_dir, "quantization": manifest["quantization"],
               "writer": manifest.get("standard_metadata"),
               "mediapipe": metadata.version("mediapipe"),
               "accented_examples": [texts[i] for i in changed], "cells": []}
    for entry in manifest["cells"]:
        start = time.time()
        path = os.path.join(FLAGS.tflite_dir, entry["file"])
        outputs = benchmark.tflite_outputs(path, dev)
        scores = outputs.get("probabilities", outputs.get("logits"))
        ours = scores.argmax(-1)
        theirs_scores = mediapipe_probabilities(path, normalized)
        theirs = theirs_scores.argmax(-1)
        raw = theirs.copy()
        if changed:
            raw[changed] = mediapipe_probabilities(path, [texts[i] for i in changed]).argmax(-1)
        row = {
            "cell": entry["cell"],
            "agreement": float(np.mean(ours == theirs)),
            "accented_agreement": (float(np.mean(ours[changed] == theirs[changed]))
                                   if changed else 1.0),
            "disagreements": [texts[i] for i in np.flatnonzero(ours != theirs)],
            "max_abs_probability_diff": (float(np.abs(outputs["probabilities"]
                                                      - theirs_scores).max())
                                         if "probabilities" in outputs else None),
            "litert_accuracy": float(np.mean(ours == labels)),
            "mediapipe_accuracy": float(np.mean(theirs == labels)),
            "raw_agreement": float(np.mean(ours == raw)),
            "raw_accuracy": float(np.mean(raw == labels)),
            "raw_disagreements": [texts[i] for i in np.flatnonzero(ours != raw)],
            "seconds": round(time.time() - start, 1)}
        results["cells"].append(row)
        print({k: v for k, v in row.items() if "disagreements" not in k}, flush=True)
    files.write_json(FLAGS.output, results)
    files.write_atomic(os.path.splitext(FLAGS.output)[0] + ".md", markdown(results), mode="w")
    print(markdown(results))


if __name__ == "__main__":
    app.run(main)
