"""Cell selection under latency / size budgets, on a hand-made manifest."""

import hashlib
import json
import os
import subprocess
import sys

import pytest

from mobile import pareto
from mobile.selection import SelectionError, select_cell
from tests.helpers import REPO_ROOT



def entry(cell, accuracy, ms1, ms2, size):
    w, d = float(cell[1:5]), float(cell[7:])
    return {"cell": cell, "width_mult": w, "depth_mult": d, "file": f"{cell}.tflite",
            "bytes": size, "params": size, "flops": int(1e9 * w * d),
            "metrics": None if accuracy is None else {"accuracy": accuracy},
            "latency_ms": {"1": {"median": ms1, "p90": ms1 * 1.2},
                           "2": {"median": ms2, "p90": ms2 * 1.2}}}


@pytest.fixture
def manifest():
    return {"task": "rt_polarity", "primary_metric": "accuracy", "seq_len": 128,
            "quantization": "dynamic_range", "cells": [
                entry("w1.00_d1.00", 0.90, 40.0, 24.0, 23_000_000),
                entry("w0.50_d1.00", 0.88, 22.0, 13.0, 18_000_000),
                entry("w1.00_d0.50", 0.88, 20.0, 12.0, 17_800_000),
                entry("w0.50_d0.50", 0.86, 11.0, 7.0, 15_000_000),
                entry("w0.25_d0.50", 0.80, 6.0, 4.0, 13_700_000)]}


def test_best_metric_within_latency(manifest):
    assert select_cell(manifest)["cell"] == "w1.00_d1.00"  # no budget: the best
    assert select_cell(manifest, max_latency_ms=30)["cell"] == "w1.00_d0.50"  # tie -> faster
    assert select_cell(manifest, max_latency_ms=30, threads=2)["cell"] == "w1.00_d1.00"
    assert select_cell(manifest, max_latency_ms=10.5, threads=1)["cell"] == "w0.25_d0.50"
    assert select_cell(manifest, max_latency_ms=11, threads=1)["cell"] == "w0.50_d0.50"


def test_size_budget(manifest):
    assert select_cell(manifest, max_bytes=17_900_000)["cell"] == "w1.00_d0.50"
    assert select_cell(manifest, max_latency_ms=15, max_bytes=14_000_000)["cell"] == "w0.25_d0.50"


def test_none_fits(manifest):
    with pytest.raises(SelectionError, match="no cell runs within 5 ms .* fastest is "
                                             "w0.25_d0.50 at 6.00 ms"):
        select_cell(manifest, max_latency_ms=5)
    with pytest.raises(SelectionError, match="smallest is w0.25_d0.50"):
        select_cell(manifest, max_bytes=1000)


def test_missing_latencies_or_metrics(manifest):
    with pytest.raises(SelectionError, match="no latencies for 4 thread"):
        select_cell(manifest, max_latency_ms=100, threads=4)
    bare = {"cells": [{**e, "metrics": None} for e in manifest["cells"]]}
    with pytest.raises(SelectionError, match="no dev metric"):
        select_cell(bare, max_latency_ms=100)
    # Opt-in fallback: the largest cell (by FLOPs) that fits.
    chosen = select_cell(bare, max_latency_ms=12, rank_by_flops_without_metrics=True)
    assert chosen["cell"] == "w0.50_d0.50"
    with pytest.raises(SelectionError, match="no cells"):
        select_cell({"cells": []})


def test_metric_falls_back_to_the_only_one(manifest):
    del manifest["primary_metric"]
    assert select_cell(manifest, max_latency_ms=30)["cell"] == "w1.00_d0.50"


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "mobile.select", *args], cwd=REPO_ROOT,
                          env={**os.environ, "PYTHONPATH": REPO_ROOT}, capture_output=True,
                          text=True, timeout=120)


def test_cli(manifest, tmp_path):
    for cell in manifest["cells"]:  # the chosen cell's file is checked against its entry
        content = cell["cell"].encode()
        (tmp_path / cell["file"]).write_bytes(content)
        cell.update(bytes=len(content), sha256=hashlib.sha256(content).hexdigest())
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    result = run_cli(f"--manifest={path}", "--max_latency_ms=12", "--threads=2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "w1.00_d0.50" and "accuracy=0.8800" in result.stdout
    result = run_cli(f"--manifest={path}", "--max_latency_ms=1")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: no cell runs within 1 ms")
    result = run_cli(f"--manifest={tmp_path / 'missing.json'}", "--max_latency_ms=1")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: no manifest at")


def test_pareto_plot(manifest, tmp_path):
    path = pareto.plot_pareto(manifest, str(tmp_path / "pareto.png"))
    assert os.path.getsize(path) > 1000
    bare = {**manifest, "primary_metric": None,
            "cells": [{**e, "metrics": None} for e in manifest["cells"]]}
    assert os.path.getsize(pareto.plot_pareto(bare, str(tmp_path / "cost.png"))) > 1000


def test_pareto_default_threads_are_ones_every_timed_cell_has():
    # Cell b was benchmarked at 1 thread only: 2 threads would look cheapest only because
    # b's latency is missing there.
    a = {"cell": "a", "latency_ms": {"1": {"median": 4.0}, "2": {"median": 3.0}}}
    b = {"cell": "b", "latency_ms": {"1": {"median": 9.0}}}
    assert pareto.default_threads([a, b]) == 1
    assert pareto.default_threads([a]) == 2
    assert pareto.default_threads([{"cell": "c"}]) == 1
