"""The fidelity report end to end on the tiny smoke model: structure, 12 cells per method."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import fidelity
from tests.helpers import REPO_ROOT

# The end-to-end run trains these; the ablations of Tables 6-8 are checked by their flags
# below and by test_ablation_stages.py (each adds a whole pipeline to this run).
E2E_METHODS = ("dynabert", "separate", "vanilla", "no_rewiring", "no_distillation", "direct")


def _smoke_report(root, out):
    # The smoke config with tf.functions run eagerly (tracing would dominate these few-step
    # stages; graph mode is covered by test_train.py's smoke run), on two batches.
    flagfile = os.path.join(os.path.dirname(root), "smoke_eager.flags")
    with open(flagfile, "w") as f:
        f.write(f"--flagfile={os.path.join(REPO_ROOT, 'configs', 'smoke.flags')}\n--run_eagerly\n"
                "--max_train_examples=32\n--max_eval_examples=32\n")
    result = subprocess.run(
        [sys.executable, "benchmarks/fidelity.py", f"--root={root}",
         f"--flagfile={flagfile}", "--tasks=rt_polarity", "--seeds=1",
         f"--methods={','.join(E2E_METHODS)}",
         f"--output_dir={out}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=1500,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_report_pipeline_on_the_smoke_config(tmp_path):
    out = tmp_path / "report"
    assert "] done in" in _smoke_report(tmp_path / "runs", out)  # its stages trained
    report = json.load(open(out / "fidelity.json"))
    task = report["tasks"]["rt_polarity"]
    assert set(task["table"]) == set(E2E_METHODS)
    for method, cells in task["table"].items():
        assert len(cells) == 12, method
        assert all(len(values) == 1 for values in cells.values())
    assert {c["verdict"] for c in task["claims"]} <= {"holds", "does not hold", "within noise"}
    compared = [c for c in fidelity.CLAIMS if {c[1], c[2]} <= set(E2E_METHODS)]
    assert [c["claim"] for c in task["claims"]] == [c[0] for c in compared] + [
        "full-size DynaBERT matches its teacher"]
    assert (out / "fidelity_rt_polarity.png").stat().st_size > 1000
    assert "| **average** |" in (out / "fidelity.md").read_text()
    seed_dir = tmp_path / "runs" / "rt_polarity" / "seed1"
    assert not list(seed_dir.rglob("*.safetensors")), "a reported seed keeps no weights"
    assert (seed_dir / "dynabert" / "eval_grid.json").is_file()

    assert "] done in" not in _smoke_report(tmp_path / "runs", out)  # re-read, not retrained
    assert json.load(open(out / "fidelity.json"))["tasks"]["rt_polarity"]["table"] == task["table"]

    # A fresh clone has the committed records but no run directory: still nothing retrains.
    records = sorted(p.name for p in (out / "runs" / "rt_polarity" / "seed1").iterdir())
    assert records == sorted(f"{m}.json" for m in E2E_METHODS)
    assert all(json.load(open(out / "runs" / "rt_polarity" / "seed1" / name))["stage_seconds"]
               > 0 for name in records)
    assert "] done in" not in _smoke_report(tmp_path / "fresh_root", out)
    assert not (tmp_path / "fresh_root").exists()
    again = json.load(open(out / "fidelity.json"))
    assert again["tasks"]["rt_polarity"]["table"] == task["table"]
    assert again["stage_seconds"] == report["stage_seconds"] > 0


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
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 2, argument
        assert result.stderr.strip().splitlines()[-1].startswith("fidelity.py: error:")
        assert "Traceback" not in result.stderr
    assert not os.listdir(tmp_path)


def test_ablation_methods_are_flags_of_the_one_pipeline(monkeypatch):
    from dynabert_tf.distillation import variants
    from train import stages

    monkeypatch.chdir(REPO_ROOT)
    base = fidelity._settings(os.path.join("configs", "smoke.flags"))
    trainer_of = {"depth_first": ("width_depth", variants.DepthTeacherGridTrainer),
                  "inplace": ("width", variants.InplaceGridTrainer),
                  "universal": ("width", variants.SlimmableGridTrainer),
                  "progressive_rewiring": ("width", stages.distill.GridTrainer),
                  "dynabert": ("width", stages.distill.GridTrainer)}
    for method in fidelity.METHODS:
        settings, method_stages = fidelity.method_settings(base, method)  # valid flags
        settings = dataclasses.replace(settings, stages=method_stages)
        assert settings.pipeline == list(method_stages), method  # runs as listed, in order
        if method in trainer_of:
            stage, trainer_class = trainer_of[method]
            assert stages._trainer_class(settings, stage) is trainer_class, method
    assert dataclasses.replace(base, **fidelity.METHODS["separate"][0]).separate_init == \
        "pretrained"
    assert dataclasses.replace(base, **fidelity.METHODS["progressive_rewiring"][0]) \
        .progressive_rewiring
    assert "depth" in fidelity.METHODS["depth_first"][1]


def test_a_record_is_reread_only_with_the_settings_it_trained_with(monkeypatch, tmp_path):
    from dynabert_tf.core import files

    monkeypatch.chdir(REPO_ROOT)
    base = fidelity._settings(os.path.join("configs", "fidelity.flags"))
    settings = fidelity.recorded_settings(base, "rt_rating", 2, "no_distillation")
    assert (settings["task"], settings["seed"], settings["distillation"]) == \
        ("rt_rating", 2, False)
    assert "workdir" not in settings and "progress" not in settings  # how it ran, not what
    path = fidelity.record_path(str(tmp_path), "rt_rating", 2, "no_distillation")
    assert path == str(tmp_path / "runs" / "rt_rating" / "seed2" / "no_distillation.json")
    assert fidelity.read_record(path, settings) is None
    files.write_json(path, {"settings": settings, "grid": _grid(0.7), "n_test": 1000,
                            "teacher": {"test": {"accuracy": 0.8}}, "stage_seconds": 5})
    assert fidelity.read_record(path, settings)["grid"] == _grid(0.7)
    quiet = fidelity.recorded_settings(dataclasses.replace(base, progress="0", run_eagerly=True),
                                       "rt_rating", 2, "no_distillation")
    assert fidelity.read_record(path, quiet) is not None
    more = fidelity.recorded_settings(dataclasses.replace(base, max_train_examples=4000),
                                      "rt_rating", 2, "no_distillation")
    with pytest.raises(fidelity.StaleRecord, match="max_train_examples=2000, this run has "
                                         "max_train_examples=4000"):
        fidelity.read_record(path, more)


def test_a_stale_record_stops_the_run_with_one_line(tmp_path):
    from dynabert_tf.core import files

    base = fidelity._settings(os.path.join(REPO_ROOT, "configs", "fidelity.flags"))
    settings = fidelity.recorded_settings(base, "rt_polarity", 1, "dynabert")
    path = fidelity.record_path(str(tmp_path / "out"), "rt_polarity", 1, "dynabert")
    files.write_json(path, {"settings": {**settings, "learning_rate": 1e-4}, "grid": _grid(0.7),
                            "teacher": {"test": {"accuracy": 0.8}}, "n_test": 1000,
                            "stage_seconds": 5})
    result = subprocess.run(
        [sys.executable, "benchmarks/fidelity.py", f"--root={tmp_path / 'runs'}",
         "--tasks=rt_polarity", "--seeds=1", "--methods=dynabert",
         f"--output_dir={tmp_path / 'out'}"], cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {path} was trained with learning_rate=0.0001, this run has "
        "learning_rate=5e-05 (1 setting(s) differ); delete the record or pick another "
        "--output_dir")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()  # nothing trained


def test_a_malformed_record_is_named_not_trained_over(tmp_path):
    path = fidelity.record_path(str(tmp_path), "rt_polarity", 1, "dynabert")
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        f.write("{\"settings\": {")  # cut off mid-write
    with pytest.raises(fidelity.BadRecord, match=f"{path} is not valid JSON"):
        fidelity.read_record(path, {})
    with open(path, "w") as f:
        f.write('{"settings": {}, "grid": {}}')
    with pytest.raises(fidelity.BadRecord, match="is not a fidelity record \\(no teacher, n_test\\)"):
        fidelity.read_record(path, {})
    assert open(path).read() == '{"settings": {}, "grid": {}}'  # left as it was


def test_training_time_counts_each_teacher_once():
    def record(task, seed, seconds):
        return {"settings": {"task": task, "seed": seed}, "stage_seconds": seconds,
                "teacher": {"wall_seconds": 100 * seed}}

    records = [record("rt_polarity", 1, 10), record("rt_polarity", 1, 20),
               record("rt_polarity", 2, None)]
    assert fidelity._training_seconds(records) == (10 + 20 + 100 + 200, 1)


def test_more_epochs_matches_the_augmented_step_count(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    base = dataclasses.replace(fidelity._settings(os.path.join("configs", "fidelity.flags")),
                               aug_copies=2)
    longer, _ = fidelity.method_settings(base, "dynabert_more_epochs")
    label_only, _ = fidelity.method_settings(base, "no_distillation_more_epochs")
    augmented, _ = fidelity.method_settings(base, "dynabert_augment")
    assert (longer.width_epochs, longer.width_depth_epochs) == (3, 3)  # 1 + 2 copies
    assert (label_only.width_epochs, label_only.width_depth_epochs) == (3, 3)
    assert longer.distillation and not label_only.distillation
    assert not longer.augment and not label_only.augment and augmented.augment
    assert (augmented.width_epochs, augmented.width_depth_epochs) == (1, 1)


def _grid(value):
    from dynabert_tf.core import grid as grid_lib

    return {"cells": {grid_lib.cell_name(w, d): {"test_metrics": {"accuracy": value},
                                                 "flops": 1} for w, d in grid_lib.grid()}}


def test_a_no_gain_claim_fails_only_when_the_ablation_is_significantly_better():
    name = next(claim for claim, _, b, kind in fidelity.CLAIMS if b == "inplace")
    teachers = [{"test": {"accuracy": 0.8}}] * 3

    def verdict_of(inplace):
        results = {"dynabert": [_grid(v) for v in (0.80, 0.82, 0.78)],
                   "inplace": [_grid(v) for v in inplace]}
        claims = fidelity.summarise(results, teachers, "accuracy", 1000)["claims"]
        return {c["claim"]: c["verdict"] for c in claims}[name]

    assert verdict_of((0.80, 0.82, 0.78)) == "holds"  # the same: no gain
    assert verdict_of((0.70, 0.72, 0.68)) == "holds"  # worse: no gain either
    assert verdict_of((0.90, 0.92, 0.88)) == "does not hold"  # a consistent gain


def test_the_augmentation_claims_compare_the_augmented_method():
    teachers = [{"test": {"accuracy": 0.8}}] * 3
    results = {"dynabert": [_grid(v) for v in (0.80, 0.82, 0.78)],
               "dynabert_augment": [_grid(v) for v in (0.85, 0.86, 0.84)],
               "no_distillation": [_grid(v) for v in (0.80, 0.81, 0.79)]}
    claims = {c["claim"]: c for c in fidelity.summarise(results, teachers, "accuracy", 1000)
              ["claims"]}
    versus_labels = claims["distillation with augmentation beats label-only training "
                           "(Tables 3, 4)"]
    assert abs(versus_labels["difference"] - 0.05) < 1e-9
    assert versus_labels["verdict"] == "holds"
    assert abs(claims["augmentation helps distillation (Table 4)"]["difference"] - 0.05) < 1e-9
    # Both full-size models against the same teachers: 0.85 vs 0.80 is no loss.
    assert claims["full-size DynaBERT with augmentation matches its teacher"]["verdict"] == "holds"
    assert abs(claims["full-size DynaBERT matches its teacher"]["difference"]) < 1e-9
