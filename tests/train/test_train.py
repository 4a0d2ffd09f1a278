"""The training CLI end to end on the smoke config, its skip/resume behaviour and its errors.

The one full smoke run here uses `--augment` on 48 of the smoke examples: every stage of the
default pipeline plus `augment`, with `width` and `width_depth` trained on original +
augmented data (at most as many rows as the plain smoke run's 96), so one run covers both.
"""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from safetensors.numpy import load_file

from dynabert_tf.core import grid as grid_lib
from tests.helpers import REPO_ROOT

SMOKE = ("--flagfile=configs/smoke.flags", "--augment", "--max_train_examples=48")


def _run(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "train.run", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def smoke_workdir(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("smoke"))
    result = _run(*SMOKE, f"--workdir={workdir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, result.stdout


@pytest.mark.slow
def test_all_stages_leave_a_twelve_cell_grid(smoke_workdir):
    workdir, _ = smoke_workdir
    grid = json.load(open(os.path.join(workdir, "eval_grid.json")))
    cells = grid["cells"]
    assert sorted(cells) == sorted(grid_lib.cell_name(w, d) for w, d in grid_lib.grid())
    for cell in cells.values():
        assert 0.0 <= cell["metrics"]["accuracy"] <= 1.0
        assert 0.0 <= cell["test_metrics"]["accuracy"] <= 1.0
    for name, cell in cells.items():
        for other in cells.values():
            smaller = (other["width_mult"] <= cell["width_mult"]
                       and other["depth_mult"] <= cell["depth_mult"] and other is not cell)
            if smaller:
                assert other["params"] < cell["params"], name
                assert other["flops"] < cell["flops"], name
    assert grid["model"] in ("width_depth", "finetune")
    assert set(grid["mean_dev"]) == {"width_depth", "finetune"}
    for stage in ("teacher", "rewire", "width", "width_depth", "finetune", "final"):
        assert os.path.isfile(os.path.join(workdir, stage, "model.safetensors")), stage
    assert os.path.isfile(os.path.join(workdir, "rewire", "importance.npz"))
    assert os.path.isfile(os.path.join(workdir, "eval_grid_metrics.png"))
    assert os.listdir(os.path.join(workdir, "width_depth", "logs"))


@pytest.mark.slow
def test_augment_stage_feeds_width_and_width_depth(smoke_workdir):
    workdir, stdout = smoke_workdir
    assert "nearest words by cosine of the model's input embeddings" in stdout
    stage = json.load(open(os.path.join(workdir, "augment", "stage.json")))
    tsv = os.path.join(workdir, "augment", "augmented.tsv")
    with open(tsv, encoding="utf-8") as f:
        assert sum(1 for _ in f) - 1 == stage["augmented_examples"]
    assert stage["bytes"] == os.path.getsize(tsv) and stage["examples"] == 48
    assert 48 < stage["augmented_examples"] <= 2 * 48  # --aug_copies=2 in smoke.flags
    steps = {name: json.load(open(os.path.join(workdir, name, "stage.json")))["steps"]
             for name in ("teacher", "width", "width_depth", "finetune")}
    # batch 16, one epoch each: the teacher and finetune on the 48 original examples only.
    assert steps["teacher"] == steps["finetune"] == 3
    assert steps["width"] == steps["width_depth"] == math.ceil(
        (48 + stage["augmented_examples"]) / 16)
    assert json.load(open(os.path.join(workdir, "run.json")))["augment"]["copies"] == 2


@pytest.mark.slow
def test_prints_the_grid_table(smoke_workdir):
    _, stdout = smoke_workdir
    assert "m_w \\ m_d" in stdout and "kept " in stdout


@pytest.mark.slow
def test_rerun_skips_complete_stages(smoke_workdir):
    workdir, _ = smoke_workdir
    before = os.path.getmtime(os.path.join(workdir, "width", "model.safetensors"))
    result = _run(*SMOKE, f"--workdir={workdir}", "--stages=teacher,rewire,width")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("skipped") == 4  # augment too: width reads it
    assert os.path.getmtime(os.path.join(workdir, "width", "model.safetensors")) == before


@pytest.mark.parametrize("args, message", [
    (["--task=nope"], "unknown task 'nope'"),
    (["--width_mult_list=1.0,1.5"], "must be in (0, 1], got 1.5"),
    (["--stages=teacher,distil"], "unknown stage(s) distil"),
    (["--init_checkpoint=/no/such/dir", "--stages=teacher"], "/no/such/dir is neither"),
    (["--stages=width"], "run --stages=rewire first"),
])
def test_bad_input_is_one_clear_line(tmp_path, args, message):
    result = _run("--flagfile=configs/smoke.flags", f"--workdir={tmp_path}", *args)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def _copy_stages(source, target, stages):
    for stage in stages:
        shutil.copytree(os.path.join(source, stage), os.path.join(target, stage),
                        ignore=shutil.ignore_patterns("checkpoints", "logs"))


@pytest.mark.slow
def test_killed_width_depth_stage_resumes_bit_exact(smoke_workdir, tmp_path):
    """SIGKILL mid-stage through the CLI, re-run the command: the weights equal an
    uninterrupted run's exactly (data order, dropout seeds and optimizer state restored)."""
    source, _ = smoke_workdir
    # Eager (a third of the traced time); test_loop.py resumes traced training bit-exact.
    args = (*SMOKE, "--stages=width_depth", "--checkpoint_every=1", "--run_eagerly")
    unbroken, killed = str(tmp_path / "unbroken"), str(tmp_path / "killed")
    for workdir in (unbroken, killed):
        _copy_stages(source, workdir, ("teacher", "rewire", "augment", "width"))
    assert _run(*args, f"--workdir={unbroken}").returncode == 0

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen([sys.executable, "-m", "train.run", *args,
                                f"--workdir={killed}"], cwd=REPO_ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = os.path.join(killed, "width_depth", "checkpoints", "ckpt-2.index")
    deadline = time.time() + 600
    while not os.path.exists(checkpoint):
        assert process.poll() is None and time.time() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not os.path.exists(os.path.join(killed, "width_depth", "stage.json"))

    result = _run(*args, f"--workdir={killed}")
    assert result.returncode == 0 and "resuming from" in result.stdout, result.stderr[-2000:]
    got = load_file(os.path.join(killed, "width_depth", "model.safetensors"))
    want = load_file(os.path.join(unbroken, "width_depth", "model.safetensors"))
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
