"""`python -m train.run --flagfile=configs/smoke.flags --augment`: every stage, the augmented
data under WORKDIR/augment, width and width_depth trained on it, a 12-cell grid."""

import json
import math
import os
import subprocess
import sys

import pytest

from dynabert_tf.elastic import grid as grid_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_smoke_run_with_augment(tmp_path):
    workdir = str(tmp_path / "run")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    # 48 of the smoke run's 96 examples: with up to two copies each, width and width_depth
    # train on at most as many rows as the plain smoke run's.
    result = subprocess.run([sys.executable, "-m", "train.run", "--flagfile=configs/smoke.flags",
                             "--augment", "--max_train_examples=48", f"--workdir={workdir}"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "nearest words by cosine of the model's input embeddings" in result.stdout
    stage = json.load(open(os.path.join(workdir, "augment", "stage.json")))
    tsv = os.path.join(workdir, "augment", "augmented.tsv")
    with open(tsv, encoding="utf-8") as f:
        assert sum(1 for _ in f) - 1 == stage["augmented_examples"]
    assert stage["bytes"] == os.path.getsize(tsv) and stage["examples"] == 48
    assert 48 < stage["augmented_examples"] <= 2 * 48  # --aug_copies=2 in smoke.flags
    steps = {name: json.load(open(os.path.join(workdir, name, "stage.json")))["steps"]
             for name in ("teacher", "width", "width_depth", "finetune")}
    # batch 16, one epoch each: the teacher and finetune on the 48 examples only.
    assert steps["teacher"] == steps["finetune"] == 3
    assert steps["width"] == steps["width_depth"] == math.ceil(
        (48 + stage["augmented_examples"]) / 16)
    cells = json.load(open(os.path.join(workdir, "eval_grid.json")))["cells"]
    assert sorted(cells) == sorted(grid_lib.cell_name(w, d) for w, d in grid_lib.grid())
    assert json.load(open(os.path.join(workdir, "run.json")))["augment"]["copies"] == 2
