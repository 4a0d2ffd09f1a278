"""The training CLI end to end on span extraction (SQuAD fixture) and on a RoBERTa backbone,
then the SQuAD cells through mobile.export into LiteRT."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dynabert_tf.core import grid as grid_lib
from dynabert_tf.io import checkpoint
from dynabert_tf.presets import hf_config
from dynabert_tf.presets import loader as preset_loader
from tests.helpers import REPO_ROOT

CELLS = sorted(grid_lib.cell_name(w, d) for w, d in grid_lib.grid())


def _run(module, *args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def squad_workdir(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("squad"))
    # Eager (no tracing: 4x faster); the span head trains traced in test_distill.py, and
    # SQuAD's eager tokenizer calls are what --run_eagerly users run.
    _run("train.run", "--flagfile=configs/smoke_squad.flags", f"--workdir={workdir}",
         "--run_eagerly")
    return workdir


@pytest.mark.slow
def test_squad_smoke_grid_reports_em_and_f1_per_cell(squad_workdir):
    with open(os.path.join(squad_workdir, "eval_grid.json")) as f:
        grid = json.load(f)
    assert grid["task"] == "squad_v1" and grid["primary_metric"] == "f1"
    assert sorted(grid["cells"]) == CELLS
    for cell in grid["cells"].values():
        assert set(cell["metrics"]) == {"exact_match", "f1"}
        assert 0.0 <= cell["metrics"]["exact_match"] <= cell["metrics"]["f1"] <= 1.0
    model = checkpoint.load_task_model(os.path.join(squad_workdir, "final"))
    assert model.head.kind == "span"


@pytest.mark.slow
def test_squad_cells_export_with_two_outputs_that_run_in_litert(squad_workdir, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    out = str(tmp_path / "tflite")
    _run("mobile.export", f"--model_dir={squad_workdir}", f"--output_dir={out}", "--seq_len=64")
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    assert sorted(e["cell"] for e in manifest["cells"]) == CELLS
    assert manifest["primary_metric"] == "f1"
    for entry in manifest["cells"]:
        assert entry["metrics"]["f1"] is not None
        runner = Interpreter(model_path=os.path.join(out, entry["file"])).get_signature_runner(
            "serving_default")
        ones = np.ones((1, 64), np.int32)
        outputs = runner(token_ids=ones, segment_ids=0 * ones, padding_mask=ones)
        assert sorted(outputs) == ["end_logits", "start_logits"], entry["cell"]
        assert all(v.shape == (1, 64) and np.isfinite(v).all() for v in outputs.values())


@pytest.mark.slow
def test_roberta_smoke_writes_a_twelve_cell_grid(tmp_path):
    workdir = str(tmp_path / "roberta")
    # Eager (no tracing): the backbone's graph path is the BERT smoke run's own code.
    _run("train.run", "--flagfile=configs/smoke_roberta.flags", f"--workdir={workdir}",
         "--run_eagerly")
    with open(os.path.join(workdir, "eval_grid.json")) as f:
        grid = json.load(f)
    assert sorted(grid["cells"]) == CELLS
    final = os.path.join(workdir, "final")
    assert hf_config.read_json(final)["model_type"] == "roberta"
    assert {"vocab.json", "merges.txt"} <= set(os.listdir(final))
    assert all(name.startswith(("roberta.", "classifier."))
               for name in preset_loader.read_safetensors(os.path.join(final, "model.safetensors")))
