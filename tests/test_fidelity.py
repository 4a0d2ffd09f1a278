"""The fidelity report end to end on the tiny smoke model: structure, 12 cells per method."""

import json
import os
import subprocess
import sys

import numpy as np

from benchmarks import fidelity

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _smoke_report(root, out):
    # The smoke config with tf.functions run eagerly: tracing would dominate these one-step
    # stages (graph mode is covered by test_train.py's smoke run).
    flagfile = os.path.join(os.path.dirname(root), "smoke_eager.flags")
    with open(flagfile, "w") as f:
        f.write(f"--flagfile={os.path.join(ROOT, 'configs', 'smoke.flags')}\n--run_eagerly\n")
    result = subprocess.run(
        [sys.executable, "benchmarks/fidelity.py", f"--root={root}",
         f"--flagfile={flagfile}", "--tasks=rt_polarity", "--seeds=1",
         f"--output_dir={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=1500,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_report_pipeline_on_the_smoke_config(tmp_path):
    out = tmp_path / "report"
    assert "] done in" in _smoke_report(tmp_path / "runs", out)  # its stages trained
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
    seed_dir = tmp_path / "runs" / "rt_polarity" / "seed1"
    assert not list(seed_dir.rglob("*.safetensors")), "a reported seed keeps no weights"
    assert (seed_dir / "dynabert" / "eval_grid.json").is_file()

    assert "] done in" not in _smoke_report(tmp_path / "runs", out)  # re-read, not retrained
    assert json.load(open(out / "fidelity.json"))["tasks"]["rt_polarity"]["table"] == task["table"]


def test_verdicts_follow_the_numbers():
    assert fidelity.verdict(0.05, 0.01) == "holds"
    assert fidelity.verdict(-0.05, 0.01) == "does not hold"
    assert fidelity.verdict(0.015, 0.01) == "within noise"
    noise, critical = fidelity._noise([0.8, 0.82], [0.7, 0.74], "accuracy", 1000)
    assert noise > 0 and critical > 12  # Student's t, 1 degree of freedom
    assert fidelity.verdict(0.01, 0.01, critical) == "within noise"


def test_seeds_are_paired():
    # Both methods move together with the seed (shared teacher): the paired error is ~0, so
    # a small but consistent difference holds; unpaired it would drown in the seed spread.
    a, b = [0.70, 0.80, 0.90], [0.69, 0.79, 0.89]
    noise, critical = fidelity._noise(a, b, "accuracy", 1000)
    assert noise < 1e-9
    assert fidelity.verdict(np.mean(a) - np.mean(b), noise, critical) == "holds"


def test_one_seed_uses_the_test_set_sampling_error():
    noise, critical = fidelity._noise([0.8], [0.7], "accuracy", 1000)
    assert critical == 2.0
    np.testing.assert_allclose(noise, np.sqrt(2 * 0.8 * 0.2 / 1000))


def test_bad_arguments_fail_before_training(tmp_path):
    for argument in ("--tasks=bogus", "--methods=dynabert,foo", "--seeds=1,x"):
        result = subprocess.run(
            [sys.executable, "benchmarks/fidelity.py", argument, f"--root={tmp_path}"],
            cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 2, argument
        assert result.stderr.strip().splitlines()[-1].startswith("fidelity.py: error:")
        assert "Traceback" not in result.stderr
    assert not os.listdir(tmp_path)
