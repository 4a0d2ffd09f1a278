"""Real-size mobile numbers: our exported cells vs a keras-hub BERT of the same shape.

Step 1 (once): a real-size workdir from the MiniLM-L6-H384 weights, wrapped as a 2-class
rt_polarity classifier (latency and TFLite-vs-Keras parity do not depend on training):

    .venv/bin/python benchmarks/mobile_keras_hub.py --make_workdir=/tmp/minilm_work

Step 2: export and benchmark the 12 cells with the project's tools:

    .venv/bin/python -m mobile.export --model_dir=/tmp/minilm_work --output_dir=/tmp/minilm_tflite
    .venv/bin/python -m mobile.benchmark --tflite_dir=/tmp/minilm_tflite --threads=1,2 \
        --parity --parity_examples=200

Step 3: keras-hub `BertBackbone` (vocab 30522, 6 layers, 12 heads, hidden 384, FFN 1536) + a
Dense classifier on its pooled output, exported the same way (ExportArchive -> SavedModel ->
TFLiteConverter.from_saved_model, dynamic-range quantization, builtin ops), timed in the same
LiteRT interpreter in the same process as our full-size file, alternating between the two:

    .venv/bin/python benchmarks/mobile_keras_hub.py \
        --ours=/tmp/minilm_tflite/w1.00_d1.00.tflite --output_dir=/tmp/keras_hub_tflite

(keras-hub's BERT uses the tanh GELU; ours the exact erf GELU of the Hugging Face checkpoint.
Both become the builtin GELU op.)
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from dynabert_tf.core import files  # noqa: E402

flags.DEFINE_string("make_workdir", None, "Write a real-size MiniLM workdir here and exit.")
flags.DEFINE_string("minilm_dir", None, "HF MiniLM dir (default: dynabert_tf.io.assets.minilm_dir()).")
flags.DEFINE_string("ours", None, "Our full-size .tflite (w1.00_d1.00) to time against.")
flags.DEFINE_string("output_dir", "/tmp/keras_hub_tflite", "Where the keras-hub file goes.")
flags.DEFINE_integer("seq_len", 128, "Static sequence length.")
flags.DEFINE_list("threads", ["1", "2"], "Interpreter thread counts.")
flags.DEFINE_integer("runs", 50, "Timed calls per file, thread count and round.")
flags.DEFINE_integer("rounds", 3, "Alternating rounds (ours, keras-hub, ours, ...).")
flags.DEFINE_integer("warmup", 5, "Untimed calls before timing.")
FLAGS = flags.FLAGS


def make_workdir(path, minilm_dir=None):
    """WORKDIR/final = MiniLM-L6 backbone + a fresh 2-class head, task rt_polarity."""
    from dynabert_tf.io import checkpoint
    from dynabert_tf.models import task_model

    if minilm_dir is None:
        from dynabert_tf.io import assets
        minilm_dir = assets.minilm_dir()
    backbone = checkpoint.load_backbone(minilm_dir)
    classifier = task_model.classifier(backbone, 2)
    checkpoint.save_task_model(
        classifier, os.path.join(path, "final"), os.path.join(minilm_dir, "vocab.txt"),
        {"id2label": {"0": "negative", "1": "positive"}, "finetuning_task": "rt_polarity",
         "max_seq_length": 128})
    return path


def keras_hub_classifier():
    import keras
    import keras_hub

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=30522, num_layers=6, num_heads=12, hidden_dim=384,
        intermediate_dim=1536, max_sequence_length=512, num_segments=2)
    head = keras.layers.Dense(2, name="classifier")
    return backbone, head


def export_keras_hub(path, seq_len):
    import keras
    import tensorflow as tf

    from mobile.export import tflite as tflite_lib

    backbone, head = keras_hub_classifier()
    head.build((None, 384))
    archive = keras.export.ExportArchive()
    archive.track(backbone)
    archive.track(head)

    def serve(token_ids, segment_ids, padding_mask):
        outputs = backbone({"token_ids": token_ids, "segment_ids": segment_ids,
                            "padding_mask": padding_mask}, training=False)
        return {"logits": head(outputs["pooled_output"])}

    archive.add_endpoint("serving_default", serve, input_signature=[
        tf.TensorSpec([1, seq_len], tf.int32, name=n) for n in tflite_lib.INPUT_NAMES])
    with tempfile.TemporaryDirectory() as tmp:
        archive.write_out(os.path.join(tmp, "sm"), verbose=False)
        tflite = tflite_lib.convert_saved_model(os.path.join(tmp, "sm"), "dynamic_range")
    ops = tflite_lib.check_builtin_ops(tflite)
    with open(path, "wb") as f:
        f.write(tflite)
    return ops


def main(argv):
    del argv
    if FLAGS.make_workdir:
        print(make_workdir(FLAGS.make_workdir, FLAGS.minilm_dir))
        return
    if not FLAGS.ours or not os.path.isfile(FLAGS.ours):
        raise app.UsageError("--ours must name our full-size .tflite file")
    from mobile import litert as benchmark
    from mobile.export import tflite as tflite_lib

    os.makedirs(FLAGS.output_dir, exist_ok=True)
    theirs = os.path.join(FLAGS.output_dir, "keras_hub_bert_minilm_shape.tflite")
    their_ops = export_keras_hub(theirs, FLAGS.seq_len)
    with open(FLAGS.ours, "rb") as f:
        our_ops = tflite_lib.op_names(f.read())
    load_before = os.getloadavg()
    models = {"ours (DynaBERT w1.00_d1.00)": FLAGS.ours, "keras-hub BertBackbone": theirs}
    threads = [int(t) for t in FLAGS.threads]
    samples = {name: {t: [] for t in threads} for name in models}
    for _ in range(FLAGS.rounds):
        for t in threads:
            for name, path in models.items():
                timing = benchmark.time_file(path, t, FLAGS.runs, FLAGS.warmup)
                samples[name][t].append(timing["median"])
    result = {"seq_len": FLAGS.seq_len, "runs": FLAGS.runs, "rounds": FLAGS.rounds,
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "files": {}}
    print(f"{'model':<30}{'MB':>8}" + "".join(f"{f'{t}T median ms':>16}" for t in threads))
    for name, path in models.items():
        entry = {"file": path, "bytes": os.path.getsize(path),
                 "median_ms": {str(t): float(np.median(samples[name][t])) for t in threads},
                 "round_medians_ms": {str(t): samples[name][t] for t in threads}}
        result["files"][name] = entry
        print(f"{name:<30}{entry['bytes'] / 1e6:>8.2f}"
              + "".join(f"{entry['median_ms'][str(t)]:>16.2f}" for t in threads))
    result["ops"] = {"ours": our_ops, "keras_hub": their_ops}
    print("ops only in ours:", sorted(set(our_ops) - set(their_ops)))
    print("ops only in keras-hub:", sorted(set(their_ops) - set(our_ops)))
    print("load average before/after:", load_before, result["load_average_after"])
    files.write_json(os.path.join(FLAGS.output_dir, "comparison.json"), result)


if __name__ == "__main__":
    app.run(main)
