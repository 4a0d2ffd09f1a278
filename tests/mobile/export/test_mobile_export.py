"""Per-cell TFLite export: parity with Keras, builtin ops only, manifest, CLI errors."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from ai_edge_litert.interpreter import Interpreter, OpResolverType
from dynabert_tf.io import checkpoint
from dynabert_tf.core import grid as grid_lib
from dynabert_tf.elastic import cost
from mobile import export as export_lib
from mobile.export import client_metadata as client_lib
from mobile.export import tflite as tflite_lib
from mobile.errors import ExportError
from mobile.litert.parity import keras_outputs, parity, softmax
from tests.helpers import REPO_ROOT, TINY_DEEP, random_inputs, tiny_classifier

SEQ_LEN = 16
CELLS = "w1.00_d1.00,w0.25_d0.50"
# Dynamic-range quantization (int8 weights, activations quantized on the fly) of the tiny
# model (hidden 32, so few values share each scale): the max |logit difference| observed is
# ~11% of the largest |logit| (~0.26 of ~2.4). The bound is 20% of the largest |logit|.
# (On the real-size MiniLM cells it is ~4e-3 absolute; see benchmarks/results/mobile.md.)
DYNAMIC_RANGE_MAX_RELATIVE_DIFF = 0.2


def make_workdir(root, with_eval_grid=True):
    """A tiny trained-model layout: root/final (HF dir) + root/eval_grid.json."""
    keras.utils.set_random_seed(0)
    model = tiny_classifier(config=TINY_DEEP)
    # Pooler and head scaled so that logits are O(1) (a trained model's are; the 0.02-std
    # initialisation gives ~0.01) and argmax comparisons mean something.
    rng = np.random.default_rng(0)
    for dense, std in ((model.backbone.pooler, 0.5), (model.head.dense, 1.0)):
        dense.kernel.assign(rng.normal(0, std, dense.kernel.shape))
    vocab = os.path.join(root, "vocab_src.txt")
    tokens = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]",
                                                                  "[MASK]"]
    tokens += ["the", "a", "movie", "film", "good", "bad", "great", "boring", "is", "was",
               "not", "very", "fun", "dull", ".", ","]
    assert len(tokens) == TINY_DEEP.vocab_size
    with open(vocab, "w") as f:
        f.write("\n".join(tokens) + "\n")
    checkpoint.save_task_model(model, os.path.join(root, "final"), vocab, {
        "id2label": {"0": "negative", "1": "positive"}, "finetuning_task": "rt_polarity",
        "max_seq_length": SEQ_LEN})
    if with_eval_grid:
        cells = {grid_lib.cell_name(w, d): {
            "width_mult": w, "depth_mult": d, "metrics": {"accuracy": 0.9 - 0.01 * i},
            "params": cost.count_params(TINY_DEEP, w, d),
            "flops": cost.count_flops(TINY_DEEP, w, d)}
            for i, (w, d) in enumerate(grid_lib.grid())}
        with open(os.path.join(root, "eval_grid.json"), "w") as f:
            json.dump({"task": "rt_polarity", "model": "width_depth",
                       "primary_metric": "accuracy", "cells": cells}, f)
    return root


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return make_workdir(str(tmp_path_factory.mktemp("work")))


@pytest.fixture(scope="module")
def keras_model(workdir):
    return checkpoint.load_task_model(os.path.join(workdir, "final"))


@pytest.fixture(scope="module")
def exported(workdir, tmp_path_factory):
    """{quantization: (output_dir, manifest)} for the two cells of CELLS."""
    result = {}
    for quantization in ("none", "dynamic_range"):
        out = str(tmp_path_factory.mktemp(quantization))
        result[quantization] = (out, export_lib.export_model(
            workdir, out, quantization, seq_len=SEQ_LEN, cells=CELLS, progress=False))
    return result


def fixture_inputs(count=40):
    """Batch-1 inputs with varied padding and segments."""
    return [random_inputs(batch_size=1, seq_len=SEQ_LEN, seed=seed, pad_last=seed % 7)
            for seed in range(count)]


def compare(out_dir, entry, keras_model, inputs):
    runner = Interpreter(model_path=os.path.join(out_dir, entry["file"])).get_signature_runner(
        "serving_default")
    diffs, agree, scale = [], [], 0.0
    for x in inputs:
        outputs = runner(**x)
        got = outputs["logits"]
        expected = np.asarray(keras_model(x, width_mult=entry["width_mult"],
                                          depth_mult=entry["depth_mult"]))
        diffs.append(np.abs(got - expected).max())
        agree.append(got.argmax() == expected.argmax())
        scale = max(scale, float(np.abs(expected).max()))
        # The probabilities output is the softmax of the file's own logits.
        assert np.abs(outputs["probabilities"] - softmax(got)).max() <= 1e-6
    return max(diffs), float(np.mean(agree)), scale


def test_float32_matches_keras(exported, keras_model):
    out, manifest = exported["none"]
    for entry in manifest["cells"]:
        max_diff, agreement, _ = compare(out, entry, keras_model, fixture_inputs())
        assert max_diff <= 1e-4, entry["cell"]
        assert agreement == 1.0
        measured = parity(os.path.join(out, entry["file"]), keras_outputs(
            keras_model, stacked(fixture_inputs()), entry["width_mult"],
            entry["depth_mult"]), stacked(fixture_inputs()))
        assert measured["max_abs_probability_diff"] <= 1e-5, entry["cell"]


def stacked(examples):
    return {name: np.concatenate([x[name] for x in examples]) for name in examples[0]}


def test_dynamic_range_close_to_keras(exported, keras_model):
    out, manifest = exported["dynamic_range"]
    for entry in manifest["cells"]:
        max_diff, agreement, scale = compare(out, entry, keras_model, fixture_inputs())
        assert max_diff <= DYNAMIC_RANGE_MAX_RELATIVE_DIFF * scale, (entry["cell"], max_diff)
        assert agreement >= 0.95, (entry["cell"], agreement)
    # Quantized weights make the files smaller than float32 ones.
    none_bytes = {e["cell"]: e["bytes"] for e in exported["none"][1]["cells"]}
    assert all(e["bytes"] < none_bytes[e["cell"]] for e in manifest["cells"])


def test_files_load_and_use_only_builtin_ops(exported):
    for out, manifest in exported.values():
        for entry in manifest["cells"]:
            # Without the default XNNPACK delegate, so the op list shows the model's own ops.
            interpreter = Interpreter(
                model_path=os.path.join(out, entry["file"]),
                experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
            runner = interpreter.get_signature_runner("serving_default")
            assert runner(**fixture_inputs(1)[0])["logits"].shape == (1, 2)
            ops = {op["op_name"] for op in interpreter._get_ops_details()}
            assert not any(op.startswith("Flex") or "CUSTOM" in op.upper() for op in ops), ops
            assert "GELU" in ops  # the exact-erf GELU became the builtin, not Erf / Flex ops
            assert ops == set(entry["ops"])
            with open(os.path.join(out, entry["file"]), "rb") as f:
                assert tflite_lib.check_builtin_ops(f.read()) == entry["ops"]


def test_manifest_consistent_with_files(exported, workdir, keras_model):
    out, manifest = exported["dynamic_range"]
    assert manifest == json.load(open(os.path.join(out, "manifest.json")))
    assert manifest["model_dir"] == os.path.abspath(os.path.join(workdir, "final"))
    assert (manifest["task"], manifest["primary_metric"]) == ("rt_polarity", "accuracy")
    assert manifest["labels"] == ["negative", "positive"]
    with open(os.path.join(out, manifest["vocab"])) as f, \
            open(os.path.join(workdir, "final", "vocab.txt")) as g:
        assert f.read() == g.read()
    with open(os.path.join(out, manifest["labels_file"])) as f:
        assert f.read().split() == manifest["labels"]
    files = sorted(n for n in os.listdir(out) if n.endswith(".tflite"))
    assert files == sorted(e["file"] for e in manifest["cells"])
    assert [e["cell"] for e in manifest["cells"]] == CELLS.split(",")
    grid = json.load(open(os.path.join(workdir, "eval_grid.json")))["cells"]
    for entry in manifest["cells"]:
        w, d = entry["width_mult"], entry["depth_mult"]
        assert entry["file"] == f"{grid_lib.cell_name(w, d)}.tflite" == f"{entry['cell']}.tflite"
        assert entry["bytes"] == os.path.getsize(os.path.join(out, entry["file"]))
        assert entry["quantization"] == "dynamic_range" and entry["seq_len"] == SEQ_LEN
        assert entry["params"] == cost.count_params(TINY_DEEP, w, d)
        assert entry["flops"] == cost.count_flops(TINY_DEEP, w, d, SEQ_LEN)
        assert entry["metrics"] == grid[entry["cell"]]["metrics"]
        assert entry["inputs"] == [{"name": n, "dtype": "int32", "shape": [1, SEQ_LEN]}
                                   for n in ("token_ids", "segment_ids", "padding_mask")]
        # Beside the logits, their softmax (for clients that threshold scores).
        assert entry["outputs"] == [{"name": name, "dtype": "float32", "shape": [1, 2]}
                                    for name in ("logits", "probabilities")]
        assert "mediapipe_text_classifier" in entry["clients"]
    assert manifest["standard_metadata"].startswith("mediapipe ")
    assert not [n for n in os.listdir(out) if n.endswith(".partial")]


def test_files_are_self_describing(exported, workdir):
    out, manifest = exported["dynamic_range"]
    entry = manifest["cells"][1]
    metadata = tflite_lib.read_tflite_metadata(os.path.join(out, entry["file"]))
    info = json.loads(metadata["dynabert.json"])
    assert (info["cell"], info["labels"], info["seq_len"]) == (entry["cell"],
                                                               ["negative", "positive"], SEQ_LEN)
    assert metadata["labels.txt"].decode().split() == ["negative", "positive"]
    with open(os.path.join(workdir, "final", "vocab.txt"), "rb") as f:
        assert metadata["vocab.txt"] == f.read()
    # vocab.txt and labels.txt are TFLite Metadata's associated files (what MediaPipe and
    # the Task Library read), not entries of our own as well.
    assert "TFLITE_METADATA" in metadata and "vocab.txt" in client_lib.associated_files(
        open(os.path.join(out, entry["file"]), "rb").read())


def test_float16_int8_and_manifest_merge(workdir, keras_model, tmp_path):
    out = str(tmp_path / "f16")
    export_lib.export_model(workdir, out, "float16", SEQ_LEN, "w0.50_d0.75", progress=False)
    manifest = export_lib.export_model(workdir, out, "float16", SEQ_LEN, "w1.00_d0.50",
                                       progress=False)
    # The second run keeps the first run's cell; entries stay in grid order.
    assert [e["cell"] for e in manifest["cells"]] == ["w0.50_d0.75", "w1.00_d0.50"]
    for entry in manifest["cells"]:
        max_diff, agreement, scale = compare(out, entry, keras_model, fixture_inputs(20))
        assert max_diff <= 1e-2 * scale and agreement == 1.0

    out8 = str(tmp_path / "int8")
    manifest = export_lib.export_model(workdir, out8, "int8", SEQ_LEN, "w0.50_d0.75",
                                       representative_examples=16, progress=False)
    entry = manifest["cells"][0]
    assert manifest["representative_data"]  # says whether task data or random tokens
    assert "QUANTIZE" in entry["ops"] or "DEQUANTIZE" in entry["ops"]
    assert entry["inputs"][0]["dtype"] == "int32"
    max_diff, agreement, _ = compare(out8, entry, keras_model, fixture_inputs(20))
    # Full-integer on a tiny random model, calibrated on rt_polarity text that the fixture's
    # 120-token vocabulary maps mostly to [UNK]: coarse, but the labels must mostly agree.
    assert np.isfinite(max_diff) and agreement >= 0.8


def test_interrupted_export_keeps_finished_files(workdir, tmp_path, monkeypatch):
    out = str(tmp_path / "partial")
    real_convert, calls = tflite_lib.convert_saved_model, []

    def convert_then_fail(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise ExportError("simulated failure")
        return real_convert(*args, **kwargs)

    monkeypatch.setattr(tflite_lib, "convert_saved_model", convert_then_fail)
    with pytest.raises(ExportError, match="simulated"):
        export_lib.export_model(workdir, out, "none", SEQ_LEN, CELLS, progress=False)
    assert sorted(os.listdir(out)) == [".lock", "labels.txt", "manifest.json", "vocab.txt",
                                       "w1.00_d1.00.tflite"]
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    assert [e["cell"] for e in manifest["cells"]] == ["w1.00_d1.00"]


def test_flex_ops_fail_loudly(tmp_path):
    import tensorflow as tf

    class NeedsFlex(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
        def serve(self, x):
            return {"logits": tf.math.digamma(x)}

    module = NeedsFlex()
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.serve})
    with pytest.raises(ExportError, match="not TFLite builtins.*tf.Digamma"):
        tflite_lib.convert_saved_model(str(tmp_path), "none")


def test_parse_cells():
    grid = grid_lib.grid()
    assert export_lib.parse_cells("all", grid) == grid
    assert export_lib.parse_cells("w0.25_d0.50,w1.00_d1.00", grid) == [(1.0, 1.0), (0.25, 0.5)]
    for bad in ("w0.3_d1", "w0.50", "x", "w0.50_d0.75,"):
        with pytest.raises(ExportError, match="bad cell name"):
            export_lib.parse_cells(bad, grid)
    with pytest.raises(ExportError, match="not in the model's grid"):
        export_lib.parse_cells("w0.30_d1.00", grid)


def run_cli(*args):
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    return subprocess.run([sys.executable, "-m", "mobile.export", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args,code,message", [
    (["--cells=w0.3_d1"], 1, "error: bad cell name 'w0.3_d1'"),
    (["--cells=w0.30_d1.00"], 1, "error: cell w0.30_d1.00 is not in the model's grid"),
    (["--quantization=int4"], 2, "error: unknown quantization 'int4'"),  # a flag: status 2
    (["--model_dir={empty}"], 1, "error: no trained DynaBERT in {empty}: expected "),
])
def test_cli_errors_are_one_line(workdir, tmp_path, args, code, message):
    empty = str(tmp_path / "empty")
    os.makedirs(empty)
    args = [a.format(empty=empty) for a in args]
    if not any(a.startswith("--model_dir") for a in args):
        args.append(f"--model_dir={workdir}")
    result = run_cli(*args, f"--output_dir={tmp_path / 'out'}", f"--seq_len={SEQ_LEN}")
    assert result.returncode == code
    assert result.stderr.strip().splitlines()[-1].startswith(message.format(empty=empty))
    assert "Traceback" not in result.stderr
    assert not os.path.exists(tmp_path / "out" / "manifest.json")


def test_cli_exports(workdir, tmp_path):
    out = tmp_path / "cli"
    result = run_cli(f"--model_dir={workdir}", f"--output_dir={out}", "--cells=w0.25_d0.75",
                     "--quantization=none", f"--seq_len={SEQ_LEN}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "w0.25_d0.75" in result.stdout and "wrote 1 cells" in result.stdout
    manifest = json.load(open(out / "manifest.json"))
    assert [e["file"] for e in manifest["cells"]] == ["w0.25_d0.75.tflite"]
    # Passing the model dir itself (not the workdir) also works and finds eval_grid.json.
    model_path, _ = export_lib.resolve_model_dir(os.path.join(workdir, "final"))
    assert export_lib.read_eval_grid(model_path)["primary_metric"] == "accuracy"
