"""The run-time on real exports of a tiny model (built once through the `mobile.export` and
`mobile.benchmark` command lines): its outputs equal each per-cell LiteRT file's, the elastic
file's signatures agree with them, buckets, the policy in the loop, no TensorFlow imported."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mobile.runtime import ModelFileError, Runtime, load_spec
from mobile.runtime.model_file import read_metadata
from tests.helpers import REPO_ROOT

SEQ_LEN, BUCKET = 16, 8
CELLS = ("w1.00_d1.00", "w0.50_d0.75", "w0.25_d0.50")  # most accurate first (fixture metrics)
WORDS = ["the", "a", "movie", "film", "good", "bad", "great", "boring", "is", "was", "not",
         "very", "fun", "cafe", ".", "##s"]
SHORT = "the film was not very fun ."  # 7 words + [CLS], [SEP]: the full length
SENTENCES = ["the movie is good .", "a film", "Café films", "boring", SHORT,
             "the movie was very very very good and not boring at all , a great film ."]


def _run(args, **kwargs):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300, **kwargs)


def _make_workdir(root):
    """A tiny trained-model layout: root/final (HF dir) + root/eval_grid.json whose dev
    accuracy grows with the cell's size."""
    import keras

    from dynabert_tf.core import grid as grid_lib
    from dynabert_tf.io import checkpoint
    from tests.helpers import TINY_DEEP, tiny_classifier

    keras.utils.set_random_seed(0)
    model = tiny_classifier(config=TINY_DEEP)
    rng = np.random.default_rng(0)
    for dense, std in ((model.backbone.pooler, 0.5), (model.head.dense, 1.0)):
        dense.kernel.assign(rng.normal(0, std, dense.kernel.shape))
    tokens = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]",
                                                                  "[MASK]"] + WORDS
    assert len(tokens) == TINY_DEEP.vocab_size
    vocab = os.path.join(root, "vocab_src.txt")
    with open(vocab, "w") as f:
        f.write("\n".join(tokens) + "\n")
    checkpoint.save_task_model(model, os.path.join(root, "final"), vocab, {
        "id2label": {"0": "negative", "1": "positive"}, "finetuning_task": "rt_polarity",
        "max_seq_length": SEQ_LEN})
    cells = {grid_lib.cell_name(w, d): {"width_mult": w, "depth_mult": d,
                                        "metrics": {"accuracy": round(0.5 + 0.4 * w * d, 4)}}
             for w, d in grid_lib.grid()}
    with open(os.path.join(root, "eval_grid.json"), "w") as f:
        json.dump({"task": "rt_polarity", "model": "width_depth", "primary_metric": "accuracy",
                   "cells": cells}, f)


def build_exports(base):
    """{"elastic": dir, "per_cell": dir} of the tiny model's three CELLS (float, so that files
    agree to round-off); built once per test session under `base`."""
    out = {"elastic": os.path.join(base, "elastic"), "per_cell": os.path.join(base, "per_cell")}
    done = os.path.join(base, "done")
    if os.path.exists(done):
        return out
    os.makedirs(base, exist_ok=True)
    _make_workdir(base)
    common = ["-m", "mobile.export", f"--model_dir={base}", "--quantization=none",
              f"--seq_len={SEQ_LEN}", f"--cells={','.join(CELLS)}"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    jobs = [subprocess.Popen([sys.executable, *common, f"--output_dir={out['elastic']}",
                              "--format=elastic", f"--seq_buckets={BUCKET}"], cwd=REPO_ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
            subprocess.Popen([sys.executable, *common, f"--output_dir={out['per_cell']}"],
                             cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)]
    for job in jobs:
        log = job.communicate(timeout=600)[0]
        assert job.returncode == 0, log[-3000:]
    bench = _run(["-m", "mobile.benchmark", f"--tflite_dir={out['elastic']}", "--threads=1",
                  "--runs=5", "--rounds=1", "--warmup=2", "--noplot"])
    assert bench.returncode == 0, bench.stderr[-3000:]
    open(done, "w").close()
    return out


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    return build_exports(str(tmp_path_factory.getbasetemp() / "runtime_exports"))


@pytest.fixture(scope="module")
def elastic(exports):
    return Runtime.load(exports["elastic"], calibration_runs=3)


def file_logits(path, packed, seq_len=SEQ_LEN, signature="serving_default"):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=path).get_signature_runner(signature)
    feeds = {"token_ids": packed.token_ids, "segment_ids": packed.segment_ids,
             "padding_mask": packed.padding_mask}
    return runner(**{k: np.asarray([v[:seq_len]], np.int32) for k, v in feeds.items()})[
        "logits"][0]


def test_spec_from_the_file_and_the_manifest(exports):
    spec = load_spec(exports["elastic"])
    assert (spec.format, spec.cell_names, spec.lengths) == ("elastic", list(CELLS),
                                                            [BUCKET, SEQ_LEN])
    assert spec.labels == ["negative", "positive"] and spec.metric_name == "accuracy"
    assert [c.metric for c in spec.cells] == [0.9, 0.65, 0.55]
    metadata = read_metadata(spec.files[0])  # weight-shared file: read without TensorFlow
    assert metadata["vocab.txt"].decode().splitlines()[-2:] == WORDS[-2:]
    assert load_spec(spec.files[0]).cell_names == list(CELLS)  # the .tflite, manifest beside it
    per_cell = load_spec(exports["per_cell"])
    assert per_cell.format == "per_cell" and per_cell.lengths == [SEQ_LEN]
    single = load_spec(os.path.join(exports["per_cell"], "w0.25_d0.50.tflite"))
    assert single.cell_names == ["w0.25_d0.50"]


def test_outputs_equal_each_per_cell_file(exports):
    runtime = Runtime.load(exports["per_cell"], calibration_runs=1)
    for cell in CELLS:
        path = os.path.join(exports["per_cell"], f"{cell}.tflite")
        for text in SENTENCES:
            answer = runtime.classify(text, cell=cell)
            packed = runtime.encoder.encode(text)
            np.testing.assert_array_equal(answer.outputs["logits"], file_logits(path, packed))
            assert answer.cell == cell and answer.seq_len == SEQ_LEN


def test_elastic_signatures_agree_with_the_per_cell_files(exports, elastic):
    for cell in CELLS:
        path = os.path.join(exports["per_cell"], f"{cell}.tflite")
        for text in SENTENCES:
            answer = elastic.classify(text, cell=cell)
            packed = elastic.encoder.encode(text)
            # The smallest bucket that holds the sentence; padding is masked, so the logits
            # are the full-length file's.
            assert answer.seq_len == (BUCKET if packed.length <= BUCKET else SEQ_LEN)
            np.testing.assert_allclose(answer.outputs["logits"], file_logits(path, packed),
                                       atol=1e-4)
            probabilities = list(answer.probabilities.values())
            assert sum(probabilities) == pytest.approx(1.0)
            assert answer.label == ["negative", "positive"][int(np.argmax(probabilities))]


def test_buckets_and_ids(elastic):
    assert elastic.bucket(3) == BUCKET and elastic.bucket(BUCKET) == BUCKET
    assert elastic.bucket(BUCKET + 1) == SEQ_LEN and elastic.bucket(500) == SEQ_LEN
    packed = elastic.encoder.encode("the movie is good .")
    assert packed.token_ids[:7] == [101, 104, 106, 112, 108, 118, 102]  # [CLS] ... [SEP]
    by_text = elastic.classify("the movie is good .", cell="w0.50_d0.75")
    by_ids = elastic.classify_ids(packed.token_ids[:packed.length], cell="w0.50_d0.75")
    assert by_ids.outputs == by_text.outputs and by_ids.seq_len == BUCKET


def test_the_policy_picks_per_request(exports):
    runtime = Runtime.load(exports["elastic"], calibration_runs=3)
    relaxed = runtime.classify("the movie is good .", slo_ms=10_000)
    assert relaxed.cell == CELLS[0] and relaxed.deadline_met
    assert relaxed.latency_ms > 0 and relaxed.total_ms >= relaxed.latency_ms
    impossible = runtime.classify("the movie is good .", slo_ms=1e-6)
    assert impossible.cell == min(CELLS, key=lambda c: runtime.idle_ms[c, BUCKET])
    assert not impossible.deadline_met
    runtime.policy.set_cap("w0.50_d0.75")  # e.g. battery saver
    assert runtime.classify("a film", slo_ms=10_000).cell == "w0.50_d0.75"
    fixed = Runtime.load(exports["elastic"], policy="fixed:w0.25_d0.50", calibration_runs=1)
    assert {fixed.classify(t, slo_ms=10_000).cell for t in SENTENCES} == {"w0.25_d0.50"}
    overhead = runtime.controller_overhead_us()
    assert overhead["count"] == 3 and overhead["median"] > 0


def test_backs_off_when_the_device_slows_down(exports):
    runtime = Runtime.load(exports["elastic"], calibration_runs=5)
    # A target the best cell meets idle with room (plus Python's per-call overhead), then a
    # simulated 40x slower device: within a few requests a smaller cell serves.
    slo_ms = 4 * runtime.idle_ms[CELLS[0], SEQ_LEN] + 2.0
    long_text = SENTENCES[-1]
    assert runtime.classify(long_text, slo_ms=slo_ms).cell == CELLS[0]
    runtime.simulated_slowdown = 40.0
    cells = [runtime.classify(long_text, slo_ms=slo_ms).cell for _ in range(12)]
    assert cells[-1] != CELLS[0] and runtime.policy.slowdown() > 5


def test_manifest_latencies_and_memory(exports):
    runtime = Runtime.load(exports["elastic"], calibration_runs=0)  # the benchmark's
    manifest = json.load(open(os.path.join(exports["elastic"], "manifest.json")))
    full = manifest["cells"][0]["latency_ms"]["1"]["median"]
    assert runtime.idle_ms[CELLS[0], SEQ_LEN] == pytest.approx(full)
    assert runtime.idle_ms[CELLS[0], BUCKET] == pytest.approx(full * BUCKET / SEQ_LEN)
    memory = runtime.memory()
    assert memory["signatures"] == len(CELLS) * 2 and memory["file_bytes"] > 0
    assert memory["resident_all_signatures_bytes"] > 0
    assert memory["resident_single_cell_bytes"] is not None


def test_bad_models(tmp_path, exports):
    with pytest.raises(ModelFileError, match="no model at"):
        load_spec(str(tmp_path / "missing"))
    with pytest.raises(ModelFileError, match="has no manifest.json"):
        load_spec(str(tmp_path))
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer")
    with pytest.raises(ModelFileError, match="not a readable TFLite file"):
        load_spec(str(junk))
    with pytest.raises(ValueError, match="policy must be 'adaptive' or 'fixed:<cell>'"):
        Runtime.load(exports["elastic"], policy="greedy", calibration_runs=1)


def test_no_tensorflow_in_the_runtime(exports):
    code = ("import sys\n"
            "from mobile.runtime import Runtime\n"
            f"runtime = Runtime.load({exports['elastic']!r}, calibration_runs=1)\n"
            "answer = runtime.classify('the movie is good .', slo_ms=50)\n"
            "assert answer.cell and answer.label in ('negative', 'positive')\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'keras_hub', 'tf_keras'))\n"
            "print('imported:', bad)\n"
            "sys.exit(1 if bad else 0)\n")
    result = _run(["-c", code])
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
