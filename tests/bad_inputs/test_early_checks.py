"""Check early, say the real problem (issue 26, cases 11 and 12 and the early checks of 3).

The `mobile.*` tools check their flags (exit status 2, as `train.run`) and the inputs they can
read without TensorFlow (a manifest, a model dir's config.json and eval grid) before anything
imports TensorFlow, so an error is the `error:` line alone. One interpreter runs every case
(`run_tools`) and records, after each, whether TensorFlow was imported by then; two tools also
run as `python -m` to see their whole stderr. The Python API names the real problem of a call
(a multiplier's type, a missing input, the position limit); `train.attention_maps` checks
--max_seq_length against the models; `train.run` names a workdir that is a symlink loop, or a
stage directory that is a file.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from dynabert_tf.core import locks
from mobile import benchmark as benchmark_tool
from mobile import cli
from tests.helpers import REPO_ROOT, random_inputs, tiny_classifier
from tests.test_bad_inputs import check_one_line, run_in_process, snapshot
from train import attention_maps, run

SMOKE = "--flagfile=configs/smoke.flags"
CPUS = os.cpu_count() or 1

# One interpreter, every case in turn: [{"code", "stderr", "tensorflow"}] as JSON on stdout.
RUNNER = """
import contextlib, importlib, io, json, sys
from absl import flags
from mobile import cli
results = []
for module, args in json.loads(sys.argv[1]):
    tool = importlib.import_module(module)
    flag_values = cli.define(tool.define_flags, flags.FlagValues())
    err, code = io.StringIO(), 0
    with contextlib.redirect_stderr(err):
        try:
            cli.call(tool.main, cli.parse(flag_values, [module, *args]), flag_values)
        except SystemExit as e:
            code = e.code
    results.append({"code": code, "stderr": err.getvalue(),
                    "tensorflow": "tensorflow" in sys.modules})
print(json.dumps(results))
"""


def _write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(value, f)


def _model_dir(path, **config):
    """configs/tiny_bert's config.json (with `config`) in `path`: enough for every check that
    comes before the weights are read."""
    with open(os.path.join(REPO_ROOT, "configs", "tiny_bert", "config.json")) as f:
        _write_json(os.path.join(path, "config.json"), {**json.load(f), **config})
    return path


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    """{name: path} of the inputs the tools refuse; `root` holds them all."""
    root = str(tmp_path_factory.mktemp("early"))
    p = {"root": root, "out": os.path.join(root, "out"), "empty": os.path.join(root, "empty")}
    os.makedirs(p["empty"])
    # A workdir trained with the hidden-size axis: its eval grid has a _h cell.
    p["hidden"] = os.path.join(root, "hidden")
    _model_dir(os.path.join(p["hidden"], "final"), finetuning_task="rt_polarity")
    _write_json(os.path.join(p["hidden"], "eval_grid.json"), {
        "task": "rt_polarity", "primary_metric": "accuracy", "cells": {
            "w1.00_d1.00": {"width_mult": 1.0, "depth_mult": 1.0},
            "w1.00_d1.00_h0.50": {"width_mult": 1.0, "depth_mult": 1.0, "hidden_mult": 0.5}}})
    p["no_task"] = _model_dir(os.path.join(root, "no_task"))
    p["heads0"] = _model_dir(os.path.join(root, "heads0"), num_attention_heads=0)
    # An export whose manifest and benchmark must not change.
    p["export"] = os.path.join(root, "export")
    _write_json(os.path.join(p["export"], "manifest.json"), {"cells": []})
    _write_json(os.path.join(p["export"], "benchmark.json"), {"by_threads": {"1": {}}})
    return p


def run_tools(cases, paths):
    """[{"code", "stderr", "tensorflow"}] of each (module, args) of `cases`, run in turn in
    one fresh interpreter (`args` formatted with `paths`)."""
    cases = [(module, [arg.format(**paths) for arg in args]) for module, args in cases]
    result = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(cases)], cwd=REPO_ROOT,
                            env={**os.environ, "PYTHONPATH": REPO_ROOT}, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


# (module, args, exit status, phrase of the error line)
EXPORT, SEARCH = "mobile.export.__main__", "mobile.search.__main__"
EARLY_CASES = {
    # issue case 12: every mobile.* error came after TensorFlow's start-up logging.
    "export_no_config": (EXPORT, ["--model_dir={empty}", "--output_dir={out}"], 1,
                         "no trained DynaBERT in {empty}"),
    "export_missing_flag": (EXPORT, ["--model_dir={empty}"], 2,
                            "--output_dir is required"),
    "export_argument": (EXPORT, ["--model_dir={empty}", "--output_dir={out}", "x"], 2,
                        "unexpected arguments: x"),
    "export_bad_config": (EXPORT, ["--model_dir={heads0}", "--output_dir={out}"], 1,
                          "{heads0}/config.json: num_attention_heads must be a positive "
                          "integer"),
    "export_bad_quantization": (EXPORT, ["--model_dir={hidden}", "--output_dir={out}",
                                                  "--quantization=int4"], 2,
                                "unknown quantization 'int4'"),
    # issue case 12: --format=elastic on a hidden-size workdir, refused from its eval grid.
    "export_elastic_hidden": (EXPORT, ["--model_dir={hidden}", "--output_dir={out}",
                                                "--format=elastic"], 1,
                              "takes cells at hidden_mult 1 only, got w1.00_d1.00_h0.50"),
    "benchmark_no_manifest": ("mobile.benchmark", ["--tflite_dir={empty}"], 1,
                              "no manifest.json in {empty}"),
    # issue case 3: more threads than CPUs are refused before anything is read or written.
    "benchmark_threads_above_cpus": ("mobile.benchmark", ["--tflite_dir={export}",
                                                          f"--threads=1,{CPUS + 1}"], 2,
                                     f"--threads={CPUS + 1} is more than this machine's "
                                     f"{CPUS} CPUs"),
    "benchmark_parity_no_model": ("mobile.benchmark", ["--tflite_dir={export}", "--parity",
                                                       "--model_dir={empty}"], 1,
                                  "no trained DynaBERT in {empty}"),
    "benchmark_runs_0": ("mobile.benchmark", ["--tflite_dir={export}", "--runs=0"], 2,
                         "--runs must be at least 1, got 0"),
    # issue case 12: --population=0 came after 117 s of exporting and timing.
    "search_population_0": (SEARCH, ["--model_dir={hidden}", "--output_dir={out}",
                                              "--population=0"], 2,
                            "--population must be at least 1, got 0"),
    "search_parents_above_population": (SEARCH, [
        "--model_dir={hidden}", "--output_dir={out}", "--population=3", "--parents=4"], 2,
        "--parents must be in 1..--population (3), got 4"),
    "search_no_task": (SEARCH, ["--model_dir={no_task}", "--output_dir={out}"], 1,
                       "names no task"),
    "search_threads_above_cpus": (SEARCH, ["--model_dir={hidden}",
                                                    "--output_dir={out}",
                                                    f"--threads={CPUS + 1}"], 2,
                                  "is more than this machine's"),
    # issue case 12: --threads=0 suggested `mobile.benchmark --threads=0`.
    "select_threads_0": ("mobile.select", ["--manifest={export}", "--threads=0"], 2,
                         "--threads must be at least 1, got 0"),
    "select_budget_nan": ("mobile.select", ["--manifest={export}", "--max_latency_ms=nan"], 2,
                          "--max_latency_ms must be a positive number of ms, got nan"),
    "serve_threads_above_cpus": ("mobile.serve", ["--model={export}",
                                                  f"--threads={CPUS + 1}"], 2,
                                 "is more than this machine's"),
    "serve_no_model": ("mobile.serve", ["--model={empty}/none.tflite"], 1, "no model at"),
}


def test_mobile_tools_answer_before_tensorflow(paths):
    """issue case 12 (and 3): each error is one line with its exit status, and TensorFlow was
    not imported by then; nothing was written."""
    before = snapshot(paths["root"])
    results = run_tools([(module, args) for module, args, _, _ in EARLY_CASES.values()], paths)
    for name, result in zip(EARLY_CASES, results):
        _, _, code, phrase = EARLY_CASES[name]
        check_one_line(result["code"], result["stderr"], phrase.format(**paths))
        assert result["code"] == code, (name, result)
        assert not result["tensorflow"], f"{name}: TensorFlow imported before the error"
        assert "--threads=0" not in result["stderr"], name
    assert snapshot(paths["root"]) == before  # no vocab.txt, labels.txt, manifest or .lock


@pytest.mark.parametrize("args, code, phrase", [
    (["mobile.benchmark", "--tflite_dir={export}", "--threads=1000"], 2,
     "--threads=1000 is more than this machine's"),
    (["mobile.export", "--model_dir={hidden}", "--output_dir={out}", "--format=elastic"], 1,
     "--format=elastic takes cells at hidden_mult 1 only"),
], ids=["benchmark_threads", "export_elastic_hidden"])
def test_python_m_prints_the_error_line_alone(paths, args, code, phrase):
    """issue case 12: `python -m mobile.*`'s whole stderr is the error line (no TensorFlow or
    absl logging before it)."""
    result = subprocess.run([sys.executable, "-m", *[a.format(**paths) for a in args]],
                            cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": REPO_ROOT},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == code, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert phrase in result.stderr and result.stdout == ""


def test_benchmark_default_threads_fit_a_one_cpu_machine(paths, capsys, monkeypatch):
    """issue case 3: the default --threads=1,2 keeps the counts a one-CPU machine has; an
    explicit --threads=2 there is refused."""
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    for args, phrase in (([], "no manifest.json in"),
                         (["--threads=2"], "--threads=2 is more than this machine's 1 CPU;")):
        flag_values = cli.define(benchmark_tool.define_flags, flags.FlagValues())
        argv = cli.parse(flag_values, ["mobile.benchmark", f"--tflite_dir={paths['empty']}",
                                       *args])
        code, stderr = run_in_process(lambda: cli.call(benchmark_tool.main, argv, flag_values),
                                      capsys)
        check_one_line(code, stderr, phrase)


# --------------------------------------------------------------------------- Python API


@pytest.fixture(scope="module")
def model():
    return tiny_classifier()


@pytest.mark.parametrize("width_mult, kind", [
    (tf.constant(0.5), "a tf.Tensor"), (tf.Variable(0.5), "a tf.Variable"),
], ids=["tensor", "variable"])
def test_a_tensor_multiplier_is_refused_for_its_type(model, width_mult, kind):
    """issue case 11: the value is in range; its type is the problem."""
    for call in (model, model.backbone):
        with pytest.raises(ValueError) as error:
            call(random_inputs(), width_mult=width_mult)
        assert str(error.value) == (f"width_mult must be a Python float (got {kind}); width "
                                    f"and depth are chosen when the graph is built")


def test_numpy_multipliers_are_numbers(model):
    """issue case 11: np.float32(0.5) runs the cell 0.5 runs."""
    inputs = random_inputs()
    expected = np.asarray(model(inputs, width_mult=0.5, depth_mult=0.5))
    got = np.asarray(model(inputs, width_mult=np.float32(0.5), depth_mult=np.float64(0.5)))
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match=r"^depth_mult must be in \(0, 1\], got 1.5$"):
        model(inputs, depth_mult=np.float32(1.5))


@pytest.mark.parametrize("target", ["model", "backbone"])
def test_a_missing_input_is_named(model, target):
    """issue case 11: a missing padding_mask was a KeyError in Keras' call report."""
    call = model if target == "model" else model.backbone
    inputs = {k: v for k, v in random_inputs().items() if k != "padding_mask"}
    with pytest.raises(ValueError) as error:
        call(inputs)
    assert str(error.value) == ("inputs need token_ids, segment_ids and padding_mask; missing "
                                "padding_mask")
    assert "\x1b" not in str(error.value)


@pytest.mark.parametrize("target", ["model", "backbone"])
def test_a_sequence_beyond_the_positions_is_named(model, target):
    """issue case 11: 200 tokens into a model of fewer positions said 'Incompatible shapes'."""
    call = model if target == "model" else model.backbone
    positions = model.bert_config.max_position_embeddings
    length = positions + 1
    inputs = random_inputs(batch_size=1, seq_len=length, pad_last=0)
    with pytest.raises(ValueError) as error:
        call(inputs)
    assert str(error.value) == (f"sequence length {length} exceeds the model's "
                                f"max_position_embeddings ({positions})")
    # A length known only when the graph runs is not refused by the check.
    dynamic = tf.function(lambda x: call(x), input_signature=[{
        k: tf.TensorSpec([None, None], tf.int32) for k in inputs}])
    assert dynamic({k: tf.constant(v[:, :8]) for k, v in inputs.items()}) is not None


# --------------------------------------------------------------------------- train CLIs


def _maps_workdir(tmp_path):
    """A workdir whose final/ and rewire/ hold what attention_maps reads before TensorFlow."""
    work = tmp_path / "work"
    for stage in ("final", "rewire"):
        _model_dir(str(work / stage))
        (work / stage / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\na\nfilm\n")
    return work


def test_attention_maps_checks_max_seq_length_against_the_models(tmp_path, capsys):
    """issue case 11: --max_seq_length=1000 against a 128-position model, before any
    TensorFlow work; nothing is written."""
    work, out = _maps_workdir(tmp_path), tmp_path / "out"
    argv = ["attention_maps", f"--model_dir={work}", "--sentence=a film",
            f"--output_dir={out}", "--max_seq_length=1000"]
    code, stderr = run_in_process(lambda: attention_maps.main(argv), capsys)
    check_one_line(code, stderr, f"--max_seq_length 1000 exceeds the 128 positions of "
                                 f"--model_dir {work / 'final'}")
    assert not out.exists()


def test_attention_maps_into_a_locked_directory_is_refused(tmp_path, capsys):
    """What to build (locks): a second writer of an attention-maps directory gets one line."""
    work, out = _maps_workdir(tmp_path), tmp_path / "out"
    (out / "attention_w1.00_d1.00.png").parent.mkdir()
    (out / "attention_w1.00_d1.00.png").write_bytes(b"an earlier run's map")
    argv = ["attention_maps", f"--model_dir={work}", "--sentence=a film",
            f"--output_dir={out}", "--cells=w1.00_d1.00"]
    with locks.output_lock(str(out), "train.attention_maps"):  # as a run in progress holds it
        code, stderr = run_in_process(lambda: attention_maps.main(argv), capsys)
    check_one_line(code, stderr, f"another train.attention_maps is writing {out}")
    assert (out / "attention_w1.00_d1.00.png").read_bytes() == b"an earlier run's map"


@pytest.fixture
def train_flags(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)  # the flag files name configs/ relative to the repository
    yield
    run.FLAGS.unparse_flags()  # later test modules parse the global flags afresh


def _train(workdir, capsys):
    argv = ["train.run", SMOKE, f"--workdir={workdir}"]
    return run_in_process(lambda: run.main(run.parse_flags(argv)), capsys)


def test_a_symlink_loop_as_workdir_is_named(tmp_path, capsys, train_flags):
    """issue case 12: was '[Errno 17] File exists'."""
    loop = tmp_path / "loop"
    os.symlink(loop, loop)
    code, stderr = _train(loop, capsys)
    check_one_line(code, stderr, f"--workdir {loop} is a symlink that leads nowhere")
    assert os.listdir(tmp_path) == ["loop"]


def test_a_stage_directory_that_is_a_file_is_named(tmp_path, capsys, train_flags):
    """issue case 12: a regular file where a stage's directory goes; it stays as it was."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "width").write_text("not a directory")
    code, stderr = _train(work, capsys)
    check_one_line(code, stderr, f"{work / 'width'} is a file, not a stage directory")
    assert (work / "width").read_text() == "not a directory"
