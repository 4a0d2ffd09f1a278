"""The TFLite Task Library's BertQuestionAnswerer on the project's span-extraction files.

    python -m venv /tmp/tfls && /tmp/tfls/bin/pip install tflite-support==0.4.4 "numpy<2"
    python benchmarks/question_answerer.py --work_dir=/tmp/qa \
        --task_library_python=/tmp/tfls/bin/python --output=benchmarks/results/question_answerer.json

The client packs `[CLS] question [SEP] context [SEP]` into 384 tokens (fixed), runs the file,
and keeps the best of the top-5 start x top-5 end positions that lie in the context, end >=
start, at most 32 tokens (tflite-support 0.4.4's `BertQuestionAnswerer` constants). A span
model with 384 positions or more (`--model_dir`; by default a tiny random one with
MiniLM-L6's vocabulary, which is enough to check the plumbing: same inputs, same logits,
same answers) is exported at `--seq_len=384` in each quantization mode. The project's side
runs its own tokenizer and LiteRT on the same question and context and applies the same
selection; reported per mode: whether the client opens the file and answers, and whether
its answers (start, end, logit) equal the project's. JSON + markdown beside it.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from benchmarks.client_subprocess import run_client  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Span model dir or workdir (default: a tiny random "
                    "span model with MiniLM-L6's vocabulary, built in --work_dir).")
flags.DEFINE_string("work_dir", None, "Where the exported files go.")
flags.DEFINE_list("quantizations", ["none", "float16", "dynamic_range"], "Modes to export.")
flags.DEFINE_string("task_library_python", None, "Python of a venv with tflite-support.")
flags.DEFINE_string("output", None, "JSON results (.md beside it).")
flags.mark_flags_as_required(["work_dir", "task_library_python", "output"])

SEQ_LEN = 384  # the client's kMaxSeqLen
TOP_K, MAX_ANSWER_TOKENS = 5, 32  # its kPredictAnsNum, kMaxAnsLen
_FACT = ("the tower was built in paris by the company of gustave eiffel for the world fair "
         "of 1889 , and it was the tallest structure in the world for many years after that .")
QUESTIONS = [("who built the tower ?", " ".join([_FACT] * n)) for n in (1, 4, 12)] + [
    ("when was it built ?", "it opened in 1889 . " * 40)]

CLIENT = r"""
import json, sys
from tflite_support.task import text
qa = text.BertQuestionAnswerer.create_from_file(sys.argv[1])
out = []
for question, context in json.loads(sys.argv[2]):
    out.append([[a.pos.start, a.pos.end, a.pos.logit, a.text]
                for a in qa.answer(context, question).answers])
print("RESULT " + json.dumps(out))
"""


def tiny_span_model_dir(root):
    """A random span model (2 layers, hidden 32, 512 positions) with MiniLM-L6's vocabulary,
    saved as a workdir's final/ with an evaluation grid."""
    import keras

    from dynabert_tf.core import grid as grid_lib
    from dynabert_tf.core import files, layout
    from dynabert_tf.io import checkpoint
    from dynabert_tf.models.backbone import DynaBertBackbone
    from dynabert_tf.models.config import BertConfig
    from dynabert_tf.models.task_model import DynaBertTaskModel
    from dynabert_tf.presets import named
    from dynabert_tf.tasks import heads

    config = BertConfig(vocab_size=30522, hidden_size=32, num_layers=2, num_heads=4,
                        intermediate_size=64, max_position_embeddings=512)
    keras.utils.set_random_seed(0)
    model = DynaBertTaskModel(DynaBertBackbone.from_config_object(config), heads.SpanHead())
    checkpoint.save_task_model(model, os.path.join(root, layout.FINAL),
                               vocab_path=layout.vocab_file(named.resolve("minilm_l6")),
                               extra_config={"finetuning_task": "squad_v1"})
    cells = {grid_lib.cell_name(w, d): {"width_mult": w, "depth_mult": d,
                                        "metrics": {"exact_match": 0.0, "f1": 0.0}}
             for w, d in grid_lib.grid()}
    files.write_json(os.path.join(root, layout.EVAL_GRID),
                     {"task": "squad_v1", "model": "final", "primary_metric": "f1",
                      "cells": cells})
    return root


def project_answers(path, encoder, question, context):
    """[[start, end, logit]] of the project's LiteRT run, selected as the client selects."""
    from ai_edge_litert.interpreter import Interpreter

    packed = encoder.encode(question, context)
    out = Interpreter(model_path=path).get_signature_runner("serving_default")(
        **{k: np.asarray([getattr(packed, k)], np.int32)
           for k in ("token_ids", "segment_ids", "padding_mask")})
    start, end = out["start_logits"][0], out["end_logits"][0]
    # The client's context positions: the second segment, without its closing [SEP].
    context_positions = {i for i in range(packed.length - 1) if packed.segment_ids[i] == 1}
    tops = [np.argsort(-logits, kind="stable")[:TOP_K] for logits in (start, end)]
    found = [(int(s), int(e), float(start[s] + end[e])) for s in tops[0] for e in tops[1]
             if s in context_positions and e in context_positions and s <= e
             and e - s + 1 <= MAX_ANSWER_TOKENS]
    return sorted(found, key=lambda a: -a[2])


def agrees(client, ours, atol):
    return len(client) == len(ours) and all(
        c[0] == o[0] and c[1] == o[1] and abs(c[2] - o[2]) <= atol
        for c, o in zip(client, ours))


def markdown(results):
    lines = [f"{results['model']}, exported at seq_len {SEQ_LEN}, cell {results['cell']}; "
             f"tflite-support {results['client']}; {len(QUESTIONS)} question/context pairs.",
             "", "| quantization | BertQuestionAnswerer | answers (client) | "
             "same answers as LiteRT | max abs d logit |", "|---|---|---:|---|---:|"]
    for r in results["modes"]:
        if not r["opens"]:
            lines.append(f"| {r['quantization']} | fails: {r['error']} | | | |")
            continue
        lines.append(f"| {r['quantization']} | opens, answers | {r['answers']} | "
                     f"{r['agree']}/{len(QUESTIONS)} | {r['max_abs_logit_diff']:.1e} |")
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    from dynabert_tf.core import files, layout
    from mobile import export as export_lib
    from mobile.runtime.tokenizer import WordPieceEncoder

    model_dir = FLAGS.model_dir or tiny_span_model_dir(os.path.join(FLAGS.work_dir, "model"))
    vocab = layout.vocab_file(layout.final_model_dir(model_dir))
    with open(vocab) as f:
        encoder = WordPieceEncoder([line.rstrip("\n") for line in f], SEQ_LEN)
    version = run_client(FLAGS.task_library_python,
                         "import importlib.metadata as m, json; "
                         "print('RESULT ' + json.dumps(m.version('tflite-support')))", "", [])
    results = {"model": FLAGS.model_dir or "tiny random span model (MiniLM-L6 vocabulary)",
               "cell": "w1.00_d1.00", "client": version["tops"], "modes": []}
    for quantization in FLAGS.quantizations:
        out = os.path.join(FLAGS.work_dir, quantization)
        export_lib.export_model(model_dir, out, quantization, seq_len=SEQ_LEN,
                                cells=results["cell"], progress=False)
        path = os.path.join(out, f"{results['cell']}.tflite")
        client = run_client(FLAGS.task_library_python, CLIENT, path, QUESTIONS)
        row = {"quantization": quantization, "opens": client["opens"], "error": client["error"]}
        if client["opens"]:
            ours = [project_answers(path, encoder, q, c) for q, c in QUESTIONS]
            atol = 1e-5 if quantization == "none" else 1e-2
            row.update(
                answers=sum(len(a) for a in client["tops"]),
                agree=sum(agrees(c, o, atol) for c, o in zip(client["tops"], ours)),
                max_abs_logit_diff=max([abs(c[2] - o[2]) for cs, os_ in zip(client["tops"], ours)
                                        for c, o in zip(cs, os_)] or [0.0]),
                client_answers=client["tops"], project_answers=ours)
        results["modes"].append(row)
        print(row["quantization"], row.get("agree"), row["error"] or "")
    files.write_json(FLAGS.output, results)
    files.write_atomic(os.path.splitext(FLAGS.output)[0] + ".md", markdown(results), mode="w")
    print(markdown(results))


if __name__ == "__main__":
    app.run(main)
