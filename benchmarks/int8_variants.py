"""Which parts of a cell must stay float for full-integer int8 to agree with float?

    python benchmarks/int8_variants.py --model_dir=workdirs/demo --cell=w1.00_d1.00 \
        --calibration_examples=100 --eval_examples=1054 --output=/tmp/int8_variants.json

One calibration (the converter's calibrate-only pass: the slow part) per calibration set,
then one `mlir_quantize` per variant (seconds): each variant keeps a different set of
operators or nodes in float. Every variant's file runs in LiteRT on the first
--eval_examples dev sentences and is compared with the Keras cell: label agreement, accuracy,
max |d logit| and file size; the files of one run (with the cell's dynamic-range file, for
scale) are then timed together in interleaved rounds (1 thread).

Variants (`VARIANTS`), each with the LayerNorms and residual adds float
(`tflite.LAYERNORM_RESIDUAL_OPS`): nothing else float (the int8 export before this study),
the FFN output projections, the attention output projections, the attention matmuls (scores,
context), the FFN output projections and the attention matmuls, or every projection float;
the FFN output projections and attention matmuls float plus the FFN's GELU, the attention
output projections, both, or the GELU and the attention softmax (`mobile.export
--quantization=int8` now); and the same calibrated on more, shuffled training sentences
(--more_calibration).
Results: BENCHMARKS.md §5, "Full-integer int8".
"""

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from dynabert_tf.core import files  # noqa: E402
from mobile.export import tflite as tflite_lib  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Workdir or model dir (as mobile.export).")
flags.DEFINE_string("cell", "w1.00_d1.00", "Grid cell to measure.")
flags.DEFINE_integer("seq_len", 128, "Sequence length of the exported file.")
flags.DEFINE_integer("calibration_examples", 100, "Training sentences for calibration.")
flags.DEFINE_integer("more_calibration", 0, "Also calibrate on this many shuffled training "
                     "sentences (0: skip).")
flags.DEFINE_integer("eval_examples", 1054, "Dev sentences compared (first N).")
flags.DEFINE_list("variants", None, "Subset of variant names (default all).")
flags.DEFINE_integer("runs", 30, "Timed calls per file (1 thread), spread over --rounds.")
flags.DEFINE_integer("rounds", 5, "Interleaved timing rounds (every file once per round).")
flags.DEFINE_string("output", None, "JSON results file (entries merge; done ones skip).")
flags.mark_flags_as_required(["model_dir", "output"])

# Name -> (ops kept float, node-name patterns kept float), each beside
# `tflite.LAYERNORM_RESIDUAL_OPS`. Node names are the output tensor names of the calibrated
# model, e.g. ".../transformer_layer_0_1/feedforward_1/output_projection/MatMul"; `_quantize`
# resolves the regular expressions.
FFN_OUTPUT = tflite_lib.INT8_FLOAT_NODES
VARIANTS = {
    "layernorm_residual_float": ((), ()),  # the int8 export before INT8_FLOAT_NODES
    "ffn_output_float": ((), FFN_OUTPUT),
    "attention_output_float": ((), (r"attention[^/]*/MatMul_5",)),
    "attention_matmuls_float": (("BATCH_MATMUL",), ()),
    "ffn_output_and_attention_matmuls_float": (("BATCH_MATMUL",), FFN_OUTPUT),
    "projections_float": (("FULLY_CONNECTED",), ()),
    # the FFN's GELU: its int8 output range is set by the few large activations that feed
    # the (float) output projection
    "ffn_gelu_output_and_attention_matmuls_float": (("BATCH_MATMUL", "GELU"), FFN_OUTPUT),
    "ffn_output_attention_output_and_matmuls_float": (
        ("BATCH_MATMUL",), FFN_OUTPUT + (r"attention[^/]*/MatMul_5",)),
    "ffn_gelu_output_attention_output_and_matmuls_float": (
        ("BATCH_MATMUL", "GELU"), FFN_OUTPUT + (r"attention[^/]*/MatMul_5",)),
    "ffn_gelu_output_softmax_and_matmuls_float": (("BATCH_MATMUL", "GELU", "SOFTMAX"),
                                                  FFN_OUTPUT),  # the export (INT8_FLOAT_OPS)
}


def _calibrated(saved_model_dir, inputs):
    """The converter's calibrate-only model (calibration statistics recorded, not applied)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    count = len(inputs["token_ids"])
    converter.representative_dataset = lambda: (
        {n: inputs[n][i:i + 1] for n in tflite_lib.INPUT_NAMES} for i in range(count))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                           tf.lite.OpsSet.TFLITE_BUILTINS]
    converter._experimental_calibrate_only = True  # pylint: disable=protected-access
    return converter.convert()


def _quantize(calibrated, float_ops, node_patterns):
    """(int8 bytes, how many nodes the patterns kept float)."""
    nodes = tflite_lib.float_nodes(calibrated, node_patterns) if node_patterns else []
    return tflite_lib.quantize_calibrated(
        calibrated, tflite_lib.LAYERNORM_RESIDUAL_OPS + tuple(float_ops), node_patterns), \
        len(nodes)


def _measure(path, inputs, labels, reference):
    from mobile import litert as benchmark

    logits = benchmark.tflite_outputs(path, inputs, threads=2)["logits"]
    predicted = logits.argmax(-1)
    return {"label_agreement": float(np.mean(predicted == reference.argmax(-1))),
            "accuracy": float(np.mean(predicted == labels)),
            "max_abs_logit_diff": float(np.abs(logits - reference).max()),
            "mb": os.path.getsize(path) / 1e6}


def main(argv):
    del argv
    from dynabert_tf.core import grid as grid_lib
    from dynabert_tf.elastic import subnetwork
    from dynabert_tf.io import checkpoint
    from mobile import export, litert as benchmark
    from mobile.export import inputs as inputs_lib

    results = files.read_json(FLAGS.output, "results") if os.path.isfile(FLAGS.output) else {}
    model_path, _ = export.resolve_model_dir(FLAGS.model_dir)
    model = checkpoint.load_task_model(model_path)
    width_mult, depth_mult = grid_lib.parse_cell_name(FLAGS.cell)
    cell = subnetwork.extract_subnetwork(model, width_mult, depth_mult)
    config = files.read_json(os.path.join(model_path, "config.json"), "config.json")
    task = config.get("finetuning_task") or "rt_polarity"
    vocab = os.path.join(model_path, export.VOCAB)
    dev, labels = inputs_lib.task_inputs(task, "dev", vocab, FLAGS.seq_len, FLAGS.eval_examples)
    reference = benchmark.keras_outputs(model, dev, width_mult, depth_mult)["logits"]
    float_accuracy = float(np.mean(reference.argmax(-1) == labels))
    train, _ = inputs_lib.task_inputs(task, "train", vocab, FLAGS.seq_len, None)
    calibration_sets = {"first": {k: v[:FLAGS.calibration_examples] for k, v in train.items()}}
    if FLAGS.more_calibration:
        order = np.random.default_rng(0).permutation(len(train["token_ids"]))
        chosen = order[:FLAGS.more_calibration]
        calibration_sets["shuffled"] = {k: v[chosen] for k, v in train.items()}
    names = FLAGS.variants or list(VARIANTS)
    with tempfile.TemporaryDirectory(prefix="int8-variants-") as tmp:
        saved = tflite_lib.to_saved_model(cell, os.path.join(tmp, "saved_model"), FLAGS.seq_len)
        made = {}  # result key -> this run's file of it, timed together at the end
        made[f"{FLAGS.cell}/dynamic_range"] = os.path.join(tmp, "dynamic_range.tflite")
        files.write_atomic(made[f"{FLAGS.cell}/dynamic_range"], bytes(
            tflite_lib.convert_saved_model(saved, "dynamic_range")))  # the CPU default
        for set_name, calibration in calibration_sets.items():
            # The calibrated model is kept beside --output: a later variant skips calibration.
            tag = f"{set_name}{len(calibration['token_ids'])}"
            cache = f"{FLAGS.output}.{FLAGS.cell}.{tag}.calibrated.tflite"
            started = time.time()
            if os.path.isfile(cache):
                with open(cache, "rb") as f:
                    calibrated = f.read()
            else:
                calibrated = _calibrated(saved, calibration)
                files.write_atomic(cache, calibrated)
            for name in names:
                key = f"{FLAGS.cell}/{tag}/{name}"
                quantized, float_nodes = _quantize(calibrated, *VARIANTS[name])
                made[key] = os.path.join(tmp, f"{tag}_{name}.tflite")
                files.write_atomic(made[key], bytes(quantized))
                results.setdefault(key, {"float_nodes": float_nodes,
                                         "calibration_s": round(time.time() - started, 1)})
        for key, path in made.items():
            if "accuracy" not in results.setdefault(key, {}):
                results[key].update(_measure(path, dev, labels, reference),
                                    float_accuracy=float_accuracy,
                                    eval_examples=int(len(labels)))
                files.write_json(FLAGS.output, results)
                print(key, {k: results[key][k] for k in
                            ("label_agreement", "accuracy", "float_accuracy", "mb")}, flush=True)
        # Latency: every file of this run in interleaved rounds, so background load hits all.
        load = [round(x, 2) for x in os.getloadavg()]
        paths = list(made.values())
        wall = benchmark.time_files(paths, [1], FLAGS.runs, 3, FLAGS.rounds)
        cpu = benchmark.time_files(paths, [1], FLAGS.runs, 3, FLAGS.rounds, clock="thread_cpu")
        for key, path in made.items():
            results[key].update(latency_ms_1_thread=wall[path]["1"]["median"],
                                cpu_ms_1_thread=cpu[path]["1"]["median"],
                                timed_with=sorted(made), load_average=load)
        files.write_json(FLAGS.output, results)
        for key in made:
            print(key, f"wall {results[key]['latency_ms_1_thread']:.1f} ms, "
                  f"cpu {results[key]['cpu_ms_1_thread']:.1f} ms", flush=True)

if __name__ == "__main__":
    app.run(main)
