"""Every GLUE task end to end: its own flagfile + configs/smoke_glue.flags on the fixture.

For each of the nine tasks the training CLI's `main` runs every stage (teacher, rewire,
width, width_depth, finetune, evaluate) on tests/fixtures/glue (the official GLUE layout);
the test then reads WORKDIR/eval_grid.json: 12 cells, each with exactly the task's metrics
(CoLA MCC; STS-B Pearson and Spearman; MRPC and QQP F1 and accuracy; MNLI matched and
mismatched accuracy; the rest accuracy), finite and in range, measured on the right split.

Time: tracing the grid trainer's graphs of five stages costs ~2.5 minutes per task on two
cores, for a one-step run. So smoke_glue.flags runs tf.functions eagerly (`--run_eagerly`:
the same Python code, no tracing) and several tasks share a process (TensorFlow starts once):
two worker processes share the nine tasks. Graph mode is covered by test_train.py's smoke
run (every stage) and test_distill.py (the span head trained traced).
"""

import json
import math
import os
import subprocess
import sys

import pytest

from dynabert_tf.core import grid as grid_lib
from tests.helpers import REPO_ROOT

FIXTURE = os.path.join("tests", "fixtures", "glue")
STAGES = ("teacher", "rewire", "width", "width_depth", "finetune", "evaluate")

# The metric names per task; MNLI's second dev split gets the split as a suffix.
METRICS = {
    "cola": {"mcc"},
    "sst2": {"accuracy"},
    "mrpc": {"f1", "accuracy"},
    "qqp": {"f1", "accuracy"},
    "stsb": {"pearson", "spearman"},
    "mnli": {"accuracy", "accuracy_dev_mismatched"},
    "qnli": {"accuracy"},
    "rte": {"accuracy"},
    "wnli": {"accuracy"},
}
# Which fixture file each accuracy is measured on. The fixture's split sizes are pairwise
# coprime within a task (MNLI: train 4, dev_matched 3, dev_mismatched 5), so an accuracy
# measured on another split than this one is a multiple of 1 / size only if it is 0 or 1.
ACCURACY_SPLITS = {task: {"accuracy": "dev"} for task in METRICS}
ACCURACY_SPLITS["mnli"] = {"accuracy": "dev_matched",
                           "accuracy_dev_mismatched": "dev_mismatched"}
GLUE_DIRS = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "qqp": "QQP", "stsb": "STS-B",
             "mnli": "MNLI", "qnli": "QNLI", "rte": "RTE", "wnli": "WNLI"}
LABELS = {"mnli": ["contradiction", "entailment", "neutral"],
          "qnli": ["entailment", "not_entailment"], "rte": ["entailment", "not_entailment"]}

# Runs `train.run.main` once per argument list, in this one process (smoke_glue.flags runs
# tf.functions eagerly).
# Each task's output goes to <workdir>.log; the exit status is the number of failed tasks.
_WORKER = r"""
import json, sys, time, traceback
import keras
from absl import flags
from train import run

failed = 0
for argv in json.loads(sys.argv[1]):
    workdir = [a.split("=", 1)[1] for a in argv if a.startswith("--workdir=")][0]
    start, start_cpu = time.time(), time.process_time()
    with open(workdir + ".log", "w") as log:
        sys.stdout = sys.stderr = log
        try:
            flags.FLAGS.unparse_flags()
            flags.FLAGS(["train.run", *argv])
            run.main(["train.run"])
            status = "ok"
        except BaseException as e:
            traceback.print_exc()
            status = f"failed: {e!r}"
            failed += 1
        finally:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
            keras.utils.clear_session()
    print(workdir, status, f"({time.time() - start:.0f} s, "
          f"{time.process_time() - start_cpu:.0f} s CPU)", flush=True)
sys.exit(failed)
"""


def _fixture_rows(task, split):
    """Data rows of a fixture split (CoLA's train/dev files have no header row)."""
    with open(os.path.join(REPO_ROOT, FIXTURE, GLUE_DIRS[task], f"{split}.tsv"),
              encoding="utf-8") as f:
        rows = [line for line in f.read().split("\n") if line]
    return len(rows) - (task != "cola")


def test_fixture_split_sizes_are_pairwise_coprime():
    """What makes the whole-number check of the accuracies below tell the splits apart."""
    for task, splits in ACCURACY_SPLITS.items():
        if "accuracy" not in METRICS[task]:
            continue
        sizes = [_fixture_rows(task, split) for split in ("train", *splits.values())]
        assert all(math.gcd(a, b) == 1 for i, a in enumerate(sizes) for b in sizes[i + 1:]), \
            (task, sizes)


@pytest.fixture(scope="module")
def glue_runs(tmp_path_factory):
    """({task: workdir}, the workers' output) once every task has run."""
    root = tmp_path_factory.mktemp("glue")
    workdirs = {task: str(root / task) for task in METRICS}
    argvs = [[f"--flagfile=configs/{task}.flags", "--flagfile=configs/smoke_glue.flags",
              f"--data_dir={FIXTURE}", f"--workdir={workdirs[task]}"] for task in METRICS]
    num_workers = max(1, min(2, os.cpu_count() or 1))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    workers = [subprocess.Popen(
        [sys.executable, "-c", _WORKER, json.dumps(argvs[i::num_workers])],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(num_workers)]
    try:
        output = "\n".join(worker.communicate(timeout=1200)[0] for worker in workers)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    (root / "workers.log").write_text(output)  # per task: "WORKDIR ok (wall s, CPU s)"
    return workdirs, output


def _log(workdir):
    path = workdir + ".log"
    return open(path).read()[-4000:] if os.path.isfile(path) else "(no log)"


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(METRICS))
def test_task_runs_every_stage_and_reports_its_metrics(glue_runs, task):
    workdirs, worker_output = glue_runs
    workdir = workdirs[task]
    assert f"{workdir} ok" in worker_output, _log(workdir) + "\n" + worker_output[-2000:]
    for stage in STAGES:
        assert os.path.isfile(os.path.join(workdir, stage, "stage.json")), stage
    teacher = json.load(open(os.path.join(workdir, "teacher", "stage.json")))
    assert set(teacher["dev"]) == METRICS[task] and teacher["test"] is None

    grid = json.load(open(os.path.join(workdir, "eval_grid.json")))
    assert grid["task"] == task
    assert grid["primary_metric"] in METRICS[task]
    cells = grid["cells"]
    assert sorted(cells) == sorted(grid_lib.cell_name(w, d) for w, d in grid_lib.grid())
    assert len(cells) == 12
    for name, cell in cells.items():
        metrics = cell["metrics"]
        assert set(metrics) == METRICS[task], name
        for metric, value in metrics.items():
            assert isinstance(value, float) and math.isfinite(value), (name, metric, value)
            low = -1.0 if metric in ("mcc", "pearson", "spearman") else 0.0
            assert low <= value <= 1.0, (name, metric, value)
        # GLUE hides its test labels: nothing may be reported on a test split.
        assert "test_metrics" not in cell, name
    # Each accuracy is a whole number of its own split's examples (module doc, fixture).
    for metric, split in ACCURACY_SPLITS[task].items():
        if metric in METRICS[task]:
            size = _fixture_rows(task, split)
            for name, cell in cells.items():
                correct = cell["metrics"][metric] * size
                assert abs(correct - round(correct)) < 1e-6, (name, metric, split, size)

    final = json.load(open(os.path.join(workdir, "final", "config.json")))
    assert final["finetuning_task"] == task
    if task == "stsb":
        assert final["num_labels"] == 1 and "id2label" not in final
    else:
        names = LABELS.get(task, ["0", "1"])
        assert final["id2label"] == {str(i): label for i, label in enumerate(names)}


@pytest.mark.slow
def test_mnli_matched_and_mismatched_are_different_splits(glue_runs):
    """MNLI's two dev accuracies come from dev_matched (3 examples) and dev_mismatched (5):
    an accuracy strictly between 0 and 1 that is a multiple of 1/3 (or 1/5) cannot have been
    measured on the other file, so at least one such value must show up in each column."""
    workdirs, worker_output = glue_runs
    assert f"{workdirs['mnli']} ok" in worker_output, _log(workdirs["mnli"])
    assert (_fixture_rows("mnli", "dev_matched"), _fixture_rows("mnli", "dev_mismatched"),
            _fixture_rows("mnli", "train")) == (3, 5, 4)
    cells = json.load(open(os.path.join(workdirs["mnli"], "eval_grid.json")))["cells"]
    for metric in ("accuracy", "accuracy_dev_mismatched"):
        assert any(0.0 < cell["metrics"][metric] < 1.0 for cell in cells.values()), metric
