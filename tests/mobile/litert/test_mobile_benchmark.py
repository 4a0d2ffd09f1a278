"""LiteRT benchmark: latency fields, parity, manifest write-back, table, plot, CLI errors."""

import json
import os
import subprocess
import sys

import pytest

from mobile import litert as benchmark
from mobile import export as export_lib
from tests.helpers import REPO_ROOT
from tests.mobile.export.test_mobile_export import SEQ_LEN, make_workdir


@pytest.fixture(scope="module")
def benchmarked(tmp_path_factory):
    workdir = make_workdir(str(tmp_path_factory.mktemp("work")))
    out = str(tmp_path_factory.mktemp("tflite"))
    export_lib.export_model(workdir, out, "dynamic_range", SEQ_LEN, "w1.00_d1.00,w0.50_d0.75",
                            progress=False)
    result = benchmark.benchmark_dir(out, threads=(1, 2), runs=4, warmup=1, rounds=2,
                                     parity_model_dir=workdir, parity_examples=12,
                                     progress=False)
    return out, result


def test_benchmark_json_and_manifest(benchmarked):
    out, result = benchmarked
    assert result == json.load(open(os.path.join(out, "benchmark.json")))
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    assert [r["cell"] for r in result["cells"]] == [e["cell"] for e in manifest["cells"]]
    assert result["machine"]["cpu_count"] and result["parity_data"]
    for r, entry in zip(result["cells"], manifest["cells"]):
        assert r["bytes"] == entry["bytes"] == os.path.getsize(os.path.join(out, entry["file"]))
        assert set(entry["latency_ms"]) == {"1", "2"}
        for timing in entry["latency_ms"].values():
            assert 0 < timing["median"] <= timing["p90"] and timing["samples"] == 4
        assert entry["latency_ms"] == r["latency_ms"]
        assert entry["flops_ratio"] == pytest.approx(entry["flops"] / manifest["cells"][0]["flops"])
        assert entry["parity"]["examples"] == 12
        assert entry["parity"]["label_agreement"] >= 0.9
        assert entry["parity"]["max_abs_logit_diff"] < 1.0
    assert manifest["cells"][0]["latency_ratio"] == {"1": 1.0, "2": 1.0}
    assert manifest["benchmark"]["threads"] == [1, 2]
    assert os.path.getsize(os.path.join(out, "pareto.png")) > 1000


def test_format_table(benchmarked):
    _, result = benchmarked
    table = benchmark.format_table(result)
    assert "w0.50_d0.75" in table and "1T median ms" in table and "label agree" in table
    markdown = benchmark.format_table(result, markdown=True).splitlines()
    assert markdown[0].startswith("| cell") and len(markdown) == 2 + len(result["cells"])


def test_parity_falls_back_to_random_tokens_and_says_so(tmp_path):
    manifest = {"task": "no_such_task", "seq_len": SEQ_LEN}
    inputs, note = benchmark.parity_inputs(manifest, str(tmp_path), 5, vocab_size=120)
    assert inputs["token_ids"].shape == (5, SEQ_LEN) and inputs["token_ids"].max() < 120
    assert note.startswith("random tokens") and "unavailable" in note


def test_cli_errors_are_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    result = subprocess.run([sys.executable, "-m", "mobile.benchmark",
                             f"--tflite_dir={tmp_path}"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: no manifest.json in {tmp_path} (write one with python -m mobile.export)")
