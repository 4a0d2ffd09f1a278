"""The fidelity report end to end on the tiny smoke model: structure, 12 cells per method."""

import json
import os
import subprocess
import sys

from benchmarks import fidelity

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_report_pipeline_on_the_smoke_config(tmp_path):
    out = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, "benchmarks/fidelity.py", f"--root={tmp_path / 'runs'}",
         "--flagfile=configs/smoke.flags", "--tasks=rt_polarity", "--seeds=1",
         f"--output_dir={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=1500,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.load(open(out / "fidelity.json"))
    task = report["tasks"]["rt_polarity"]
    assert set(task["table"]) == set(fidelity.METHODS)
    for method, cells in task["table"].items():
        assert len(cells) == 12, method
        assert all(len(values) == 1 for values in cells.values())
    assert {c["verdict"] for c in task["claims"]} <= {"holds", "does not hold", "within noise"}
    assert len(task["claims"]) == len(fidelity.CLAIMS) + 1
    assert (out / "fidelity_rt_polarity.png").stat().st_size > 1000
    assert "| **average** |" in (out / "fidelity.md").read_text()


def test_verdicts_follow_the_numbers():
    assert fidelity.verdict(0.05, 0.01) == "holds"
    assert fidelity.verdict(-0.05, 0.01) == "does not hold"
    assert fidelity.verdict(0.015, 0.01) == "within noise"
    assert fidelity._noise([0.8, 0.82], [0.7, 0.74], "accuracy", 1000) > 0
