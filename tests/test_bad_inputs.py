"""Bad input, nothing lost: every CLI answers a bad flag, file or workdir with a non-zero exit
and one `error:` line naming the problem (no traceback), and leaves a finished run as it was.

One finished workdir (every stage's model dir, eval_grid.json, final/, run.json) and one
exported and benchmarked TFLite directory are built once; every case runs in-process against
them (or against bad copies beside them), and the hash of every file under them is compared
before and after. Subprocesses only where they are the point: the workdir lock, and flags
answered before TensorFlow is imported.
"""

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from absl import flags

from dynabert_tf.core import layout
from dynabert_tf.io import assets, checkpoint
from dynabert_tf.models.backbone import DynaBertBackbone
from dynabert_tf.models.task_model import classifier
from dynabert_tf.presets import hf_config
from mobile import benchmark as benchmark_tool
from mobile import cli, litert
from mobile import export as export_lib
from mobile.export import __main__ as export_tool
from mobile import select as select_tool
from tests.helpers import REPO_ROOT, random_inputs, tiny_classifier
from train import preflight, run, sources, workdir

SMOKE = "--flagfile=configs/smoke.flags"
STAGE_DIRS = ("teacher", "rewire", "width", "width_depth", "finetune")
SEQ_LEN = 16


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)  # the flag files name configs/ relative to the repository


@pytest.fixture(scope="module", autouse=True)
def _reset_flags():
    yield
    run.FLAGS.unparse_flags()  # later test modules parse the global flags afresh


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def _config_copy(root, name, **changes):
    """configs/tiny_bert with `changes` in its config.json (None: the key removed)."""
    path = os.path.join(root, name)
    shutil.copytree(os.path.join(REPO_ROOT, "configs", "tiny_bert"), path)
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    config.update(changes)
    _write(os.path.join(path, "config.json"), json.dumps(config))
    return path


def _finished_workdir(work, settings):
    """The outputs of a finished smoke run: every stage's model dir and stage.json, final/,
    eval_grid.json, run.json (recorded as train.run records it) and the lock file."""
    with workdir.claim(settings, preflight.check(settings)):
        pass
    backbone = DynaBertBackbone.from_config_object(
        hf_config.read_config(os.path.join(REPO_ROOT, "configs", "tiny_bert")))
    model = classifier(backbone, 2)
    metadata = {"finetuning_task": "rt_polarity", "max_seq_length": 32,
                "id2label": {"0": "0", "1": "1"}, "label2id": {"0": 0, "1": 1},
                "dynabert": {"stage": "teacher", "width_mults": [1.0, 0.75, 0.5, 0.25],
                             "depth_mults": [1.0, 0.75, 0.5]}}
    checkpoint.save_task_model(model, os.path.join(work, "teacher"),
                               sources.vocab_path(settings.model), metadata)
    for stage in STAGE_DIRS:
        if stage != "teacher":
            shutil.copytree(os.path.join(work, "teacher"), os.path.join(work, stage))
        _write(os.path.join(work, stage, "stage.json"), json.dumps({"steps": 6}))
    shutil.copytree(os.path.join(work, "finetune"), os.path.join(work, "final"),
                    ignore=shutil.ignore_patterns("stage.json"))
    cells = {f"w{w:.2f}_d{d:.2f}": {"width_mult": w, "depth_mult": d,
                                    "metrics": {"accuracy": 0.5 + w * d / 4}}
             for d in (1.0, 0.75, 0.5) for w in (1.0, 0.75, 0.5, 0.25)}
    _write(os.path.join(work, "eval_grid.json"), json.dumps(
        {"task": "rt_polarity", "model": "finetune", "primary_metric": "accuracy",
         "cells": cells}))


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    """{name: path}: the finished workdir `work`, the benchmarked TFLite dir `tflite`, and the
    bad inputs beside them; all under `root`, which no case may change."""
    root = str(tmp_path_factory.mktemp("bad_inputs"))
    work, tflite = os.path.join(root, "work"), os.path.join(root, "tflite")
    old_cwd = os.getcwd()
    os.chdir(REPO_ROOT)
    try:
        run.parse_flags(["train.run", SMOKE, f"--workdir={work}"])
        settings = run.settings_from_flags()
        _finished_workdir(work, settings)
    finally:
        os.chdir(old_cwd)
    export_lib.export_model(work, tflite, "none", SEQ_LEN, "w0.25_d0.50", progress=False)
    litert.benchmark_dir(tflite, threads=(1,), runs=1, warmup=0, rounds=1, plot=False,
                         progress=False)
    p = {"root": root, "work": work, "tflite": tflite}

    # Checkpoints and vocabularies.
    p["heads0"] = _config_copy(root, "heads0", num_attention_heads=0)
    p["hidden_str"] = _config_copy(root, "hidden_str", hidden_size="32")
    p["positions16"] = _config_copy(root, "positions16", max_position_embeddings=16)
    p["vocab100"] = _config_copy(root, "vocab100", vocab_size=100)
    p["not_json"] = _config_copy(root, "not_json")
    _write(os.path.join(p["not_json"], "config.json"), '{"hidden_size": 32,')
    p["corrupt_weights"] = _config_copy(root, "corrupt_weights")
    _write(os.path.join(p["corrupt_weights"], "model.safetensors"), "not safetensors")
    p["empty_vocab"] = os.path.join(root, "empty_vocab.txt")
    _write(p["empty_vocab"], "")
    p["small_vocab"] = os.path.join(root, "small_vocab.txt")
    _write(p["small_vocab"], "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"])
           + "\n")
    p["vocab_no_mask"] = os.path.join(root, "vocab_no_mask.txt")
    _write(p["vocab_no_mask"], "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"]) + "\n")

    # Data: GLUE folders with one broken split each, a movie-review file too short to split.
    for name, train, dev in (("glue_header_only", "sentence\tlabel\n", "sentence\tlabel\nok\t1\n"),
                             ("glue_no_dev", "sentence\tlabel\nfine\t1\n", None),
                             ("glue_bad_label", "sentence\tlabel\nfine\t1\n",
                              "sentence\tlabel\ngood\t1\nbad\tpositive\n")):
        p[name] = os.path.join(root, name)
        _write(os.path.join(p[name], "SST-2", "train.tsv"), train)
        if dev is not None:
            _write(os.path.join(p[name], "SST-2", "dev.tsv"), dev)
    squad_fixture = os.path.join(REPO_ROOT, "tests", "fixtures", "squad")
    for name in ("squad_bad_answer", "squad_no_dev"):
        p[name] = os.path.join(root, name)
        os.makedirs(p[name])
        shutil.copy(os.path.join(squad_fixture, "train-v1.1.json"), p[name])
    with open(os.path.join(squad_fixture, "dev-v1.1.json")) as f:
        dev = json.load(f)
    dev["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] += 1
    _write(os.path.join(p["squad_bad_answer"], "dev-v1.1.json"), json.dumps(dev))
    p["reviews_copy"] = os.path.join(root, "reviews_copy.txt")
    shutil.copyfile(assets.movie_reviews_path(), p["reviews_copy"])
    p["three_reviews"] = os.path.join(root, "three_reviews.txt")
    _write(p["three_reviews"], "1\t1.5\tgood\n2\t-2.0\tbad\n3\t0.5\tfine\n")

    # Workdirs: a file, one written before run.json existed, one whose run.json is corrupt.
    p["file"] = os.path.join(root, "a_file")
    _write(p["file"], "not a directory\n")
    for name, run_json in (("legacy", None), ("corrupt_run_json", "{not json")):
        p[name] = os.path.join(root, name)
        shutil.copytree(os.path.join(work, "teacher"), os.path.join(p[name], "teacher"))
        _write(os.path.join(p[name], layout.LOCK), "")  # as a run leaves it
        if run_json is not None:
            _write(os.path.join(p[name], layout.RUN_RECORD), run_json)

    # Mobile: a model dir and a workdir with non-JSON files, TFLite dirs with bad contents.
    p["model_bad_json"] = os.path.join(root, "model_bad_json")
    _write(os.path.join(p["model_bad_json"], "config.json"), "{oops")
    p["grid_bad_json"] = os.path.join(root, "grid_bad_json")
    shutil.copytree(os.path.join(work, "final"), p["grid_bad_json"])
    _write(os.path.join(p["grid_bad_json"], "eval_grid.json"), "{oops")
    p["model_heads0"] = os.path.join(root, "model_heads0")
    shutil.copytree(p["heads0"], p["model_heads0"])
    entry = {"cell": "w1.00_d1.00", "width_mult": 1.0, "depth_mult": 1.0,
             "file": "w1.00_d1.00.tflite", "bytes": 12}
    for name, manifest, tflite_bytes in (
            # a file that matches its entry (mobile.manifest_check) but is no TFLite model
            ("corrupt_tflite", {"seq_len": SEQ_LEN, "cells": [{
                **entry, "bytes": 16,
                "sha256": hashlib.sha256(b"not a flatbuffer").hexdigest()}]}, "not a flatbuffer"),
            ("manifest_not_json", "{oops", None),
            ("manifest_no_file", {"cells": [{k: v for k, v in entry.items() if k != "file"}]},
             None),
            ("manifest_list", [entry], None),
            ("manifest_no_bytes", {"cells": [{k: v for k, v in entry.items()
                                              if k != "bytes"}]}, None),
            ("manifest_latency_text", {"cells": [{**entry, "latency_ms": "fast"}]}, None),
            ("manifest_metric_text", {"cells": [{**entry, "metrics": {"accuracy": "high"}}]},
             None)):
        p[name] = os.path.join(root, name)
        _write(os.path.join(p[name], "manifest.json"),
               manifest if isinstance(manifest, str) else json.dumps(manifest))
        if tflite_bytes:
            _write(os.path.join(p[name], entry["file"]), tflite_bytes)
    p["empty_dir"] = os.path.join(root, "empty_dir")
    os.makedirs(p["empty_dir"])
    return p


def snapshot(root):
    """{relative path: sha256 (files) or None (directories)} of everything under `root`."""
    found = {}
    for directory, dirs, names in os.walk(root):
        for name in dirs:
            found[os.path.relpath(os.path.join(directory, name), root)] = None
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return found


def check_one_line(code, stderr, phrase):
    assert code not in (0, None), stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    assert lines[0].startswith("error: ") and phrase in lines[0], lines[0]


def run_in_process(call, capsys):
    """(exit status, stderr) of a CLI main that must end with sys.exit."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        call()
    return exit_info.value.code, capsys.readouterr().err


def _expand(args, paths):
    return [arg.format(**paths) for arg in args]


# --------------------------------------------------------------------------- train.run

# (arguments after --flagfile=configs/smoke.flags --workdir={work}, phrase of the error)
TRAIN_CASES = {
    # Flags (Settings.__post_init__ and absl's parsing): answered before anything is read.
    "batch_size_0": (["--batch_size=0"], "batch_size must be at least 1, got 0"),
    "batch_size_negative": (["--batch_size=-1"], "batch_size must be at least 1, got -1"),
    "eval_batch_size_0": (["--eval_batch_size=0"], "eval_batch_size must be at least 1"),
    "teacher_epochs_negative": (["--teacher_epochs=-1"],
                                "teacher_epochs must be a finite number > 0, got -1.0"),
    "width_epochs_nan": (["--width_epochs=nan"], "width_epochs must be a finite number > 0"),
    "max_train_examples_negative": (["--max_train_examples=-5"],
                                    "max_train_examples must be >= 0, got -5"),
    "importance_batches_negative": (["--importance_batches=-2"],
                                    "importance_batches must be >= 0"),
    "learning_rate_nan": (["--learning_rate=nan"], "learning_rate must be a finite number > 0"),
    "seed_negative": (["--seed=-1"], "seed must be in [0, 2**32), got -1"),
    "warmup_above_1": (["--warmup_proportion=1.5"], "warmup_proportion must be in [0, 1]"),
    "dropout_1": (["--dropout=1"], "dropout must be in [0, 1), got 1.0"),
    "width_lambdas_one": (["--width_lambdas=1.0"], "width_lambdas needs two weights"),
    "lambdas_negative": (["--width_depth_lambdas=1,-1"], "width_depth_lambdas must be finite"),
    "depth_list_empty": (["--depth_mult_list="], "depth_mult_list is empty"),
    "width_list_repeats": (["--width_mult_list=0.5,0.5", "--stages=evaluate"],
                           "width_mult_list repeats a multiplier: 0.5,0.5"),
    "width_mult_above_1": (["--width_mult_list=1.0,1.5"], "must be in (0, 1], got 1.5"),
    "width_list_not_numbers": (["--width_mult_list=half"],
                               "--width_mult_list must be a list of float, got half"),
    "bucket_boundaries_decreasing": (["--pad_to=longest", "--bucket_boundaries=64,32"],
                                     "bucket_boundaries must be increasing"),
    "unknown_task": (["--task=nope"], "unknown task 'nope'"),
    "unknown_stage": (["--stages=teacher,distil"], "unknown stage(s) distil"),
    "no_stages": (["--stages="], "stages is empty"),
    "inplace_without_distillation": (["--width_teacher=inplace", "--nodistillation"],
                                     "width_teacher=inplace is a distillation"),
    "depth_stage_width_first": (["--stages=depth"],
                                "stage depth (DynaBERT_D) runs with --first_stage=depth"),
    "batch_size_not_int": (["--batch_size=abc"], "flag --batch_size=abc"),
    "unknown_flag": (["--batch_sise=3"], "Unknown command line flag 'batch_sise'"),
    "verbose_not_bool": (["--verbose=2"], "flag --verbose=2"),
    "stray_argument": (["teacher"], "unexpected arguments: teacher"),
    "distill_objective_unknown": (["--distill_objective=tinybert"],
                                  "flag --distill_objective=tinybert"),
    "minilm_relations_unknown": (["--minilm_relations=qq,qv"],
                                 "minilm_relations must be distinct names among qq, kk, vv, qk"),
    "relation_heads_not_divisor": (["--distill_objective=minilm", "--relation_heads=3"],
                                   "relation_heads 3 does not divide the 32 query/key/value "
                                   "columns at width 1"),
    # Inputs (train.preflight): checkpoint, vocabulary, data, workdir.
    "max_seq_length_above_positions": (["--max_seq_length=512"],
                                       "max_seq_length 512 is more than the 128 positions"),
    "config_positions_below_seq": (["--init_checkpoint={positions16}"],
                                   "max_seq_length 32 is more than the 16 positions"),
    "config_heads_0": (["--init_checkpoint={heads0}"],
                       "num_attention_heads must be a positive integer, got 0"),
    "config_hidden_size_text": (["--init_checkpoint={hidden_str}"],
                                "hidden_size must be a positive integer, got '32'"),
    "config_not_json": (["--init_checkpoint={not_json}"], "config.json is not valid JSON"),
    "checkpoint_missing": (["--init_checkpoint=/no/such/checkpoint"],
                           "--init_checkpoint /no/such/checkpoint is neither a directory"),
    "config_missing": (["--init_checkpoint={empty_dir}"], "no config.json at"),
    "weights_missing": (["--norandom_init"], "no model.safetensors at"),
    "weights_corrupt": (["--init_checkpoint={corrupt_weights}", "--norandom_init"],
                        "model.safetensors is not a readable safetensors file"),
    "vocab_missing": (["--vocab_file=/no/such/vocab.txt"],
                      "vocab file /no/such/vocab.txt does not exist"),
    "vocab_empty": (["--vocab_file={empty_vocab}"], "empty_vocab.txt holds no tokens"),
    "vocab_without_mask": (["--vocab_file={vocab_no_mask}"],
                           "vocab_no_mask.txt lacks the special token(s) [MASK]"),
    "vocab_beyond_embeddings": (["--init_checkpoint={vocab100}"],
                                "has 30522 tokens, more than the model's vocab_size 100"),
    "train_tsv_header_only": (["--task=sst2", "--data_dir={glue_header_only}"],
                              "SST-2/train.tsv has no examples"),
    "dev_tsv_missing": (["--task=sst2", "--data_dir={glue_no_dev}"],
                        "no dev.tsv for task 'sst2'"),
    "dev_tsv_bad_label": (["--task=sst2", "--data_dir={glue_bad_label}"],
                          "SST-2/dev.tsv line 3: bad label 'positive'"),
    "glue_without_data_dir": (["--task=sst2"], "needs data_dir"),
    "squad_without_data_dir": (["--task=squad_v1"], "'squad_v1' needs --data_dir"),
    "squad_dev_missing": (["--task=squad_v1", "--data_dir={squad_no_dev}"],
                          "no SQuAD file at {squad_no_dev}/dev-v1.1.json"),
    "squad_dev_answer_misplaced": (["--task=squad_v1", "--data_dir={squad_bad_answer}"],
                                   "data[0].paragraphs[0].qas[0]: answer"),
    "reviews_too_short": (["--data_dir={three_reviews}"],
                          "its dev split holds no rt_polarity examples"),
    "reviews_missing": (["--data_dir=/no/such/reviews.txt"],
                        "no movie-review file at /no/such/reviews.txt"),
    "workdir_is_file": (["--workdir={file}"], "is a file, not a directory"),
    "workdir_under_file": (["--workdir={file}/run"], "a_file is a file"),
    "workdir_not_writable": (["--workdir=/proc/dynabert-workdir"], "is not writable"),
    # Workdir identity (train.workdir): a finished run of another task, model or grid.
    "other_task": (["--task=rt_rating"], "task rt_polarity here, rt_rating now"),
    "other_seq_length": (["--max_seq_length=64"], "max_seq_length 32 here, 64 now"),
    "other_grid_for_evaluate": (["--width_mult_list=0.5", "--stages=evaluate"],
                                "width_mult_list 0.25,0.5,0.75,1.0 here, 0.5 now"),
    "other_checkpoint": (["--init_checkpoint=configs/tiny_bert_2l"],
                         "num_layers 4 here, 2 now"),
    "other_vocab": (["--vocab_file={small_vocab}"], "vocab_sha256"),
    "other_method": (["--norewiring"], "rewiring True here, False now"),
    "other_ablation": (["--width_teacher=inplace"], "width_teacher fixed here, inplace now"),
    "other_objective": (["--distill_objective=both"], "distill_objective dynabert here, both now"),
    "other_data": (["--data_dir={reviews_copy}", "--stages=evaluate"], "data_dir None here"),
    "other_augment": (["--augment"], "augment False here"),
    "other_precision": (["--precision=mixed_bfloat16"],
                        "precision float32 here, mixed_bfloat16 now"),
    "precision_unknown": (["--precision=bfloat16"], "flag --precision=bfloat16: value should "
                          "be one of <float32|mixed_bfloat16|mixed_float16>"),
    # Augmentation flags and inputs (train.settings.Augmentation, Settings._check_across,
    # train.augment.check_inputs).
    "aug_replace_prob_0": (["--augment", "--aug_replace_prob=0"],
                           "aug_replace_prob must be in (0, 1], got 0.0"),
    "aug_copies_0": (["--augment", "--aug_copies=0"], "aug_copies must be at least 1, got 0"),
    "augment_stage_without_flag": (["--stages=augment"], "stage augment needs --augment"),
    "augment_squad": (["--task=squad_v1", "--augment"], "squad_v1 is span extraction"),
    "aug_mlm_missing": (["--augment", "--aug_mlm_checkpoint=/no/such/mlm"],
                        "--aug_mlm_checkpoint /no/such/mlm is not a directory"),
    "legacy_workdir_other_task": (["--workdir={legacy}", "--task=rt_rating"],
                                  "task rt_polarity here, rt_rating now"),
    "run_json_corrupt": (["--workdir={corrupt_run_json}"], "run.json is not valid JSON"),
}


@pytest.mark.parametrize("args, phrase", TRAIN_CASES.values(), ids=TRAIN_CASES.keys())
def test_train_run(paths, capsys, args, phrase):
    before = snapshot(paths["root"])
    argv = ["train.run", SMOKE, "--workdir={work}", *args]
    code, stderr = run_in_process(lambda: run.main(run.parse_flags(_expand(argv, paths))),
                                  capsys)
    check_one_line(code, stderr, phrase.format(**paths))
    assert snapshot(paths["root"]) == before


def test_verbose_shows_the_traceback(paths):
    argv = _expand(["train.run", SMOKE, "--workdir={work}", "--task=rt_rating", "--verbose"],
                   paths)
    with pytest.raises(ValueError, match="task rt_polarity here, rt_rating now"):
        run.main(run.parse_flags(argv))


def test_an_unforeseen_error_is_one_line_naming_its_type(paths, capsys, monkeypatch):
    monkeypatch.setattr(preflight, "check", lambda settings: 1 / 0)
    argv = _expand(["train.run", SMOKE, "--workdir={work}"], paths)
    code, stderr = run_in_process(lambda: run.main(run.parse_flags(argv)), capsys)
    check_one_line(code, stderr, "ZeroDivisionError: division by zero (--verbose shows")


def test_harmless_changes_resume(paths, capsys):
    """Epochs, learning rate, stage list and display flags may change: the finished stage
    is skipped as complete and nothing is written."""
    before = snapshot(paths["root"])
    argv = _expand(["train.run", SMOKE, "--workdir={work}", "--stages=teacher,rewire",
                    "--teacher_epochs=2", "--learning_rate=1e-4", "--progress=0",
                    "--batch_size=8"], paths)
    run.main(run.parse_flags(argv))
    assert capsys.readouterr().out.count("skipped") == 2
    assert snapshot(paths["root"]) == before


def _run_train_subprocess(*args):
    """train.run in a fresh interpreter: (exit status, stdout, stderr, seconds); stdout's last
    line says whether TensorFlow was imported."""
    code = ("import atexit, runpy, sys\n"
            "atexit.register(lambda: print('tensorflow imported' if 'tensorflow' in "
            "sys.modules else 'no tensorflow'))\n"
            f"sys.argv = ['train.run', *{list(args)!r}]\n"
            "runpy.run_module('train.run', run_name='__main__', alter_sys=True)\n")
    start = time.time()
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=120)
    return result.returncode, result.stdout, result.stderr, time.time() - start


@pytest.mark.parametrize("args, phrase", [
    (["--batch_size=0"], "batch_size must be at least 1"),
    (["--batch_sise=3"], "Unknown command line flag 'batch_sise'"),
    (["--max_seq_length=512"], "is more than the 128 positions"),
    (["--task=rt_rating"], "task rt_polarity here, rt_rating now"),
], ids=["flag", "unknown_flag", "checkpoint", "workdir"])
def test_answers_before_tensorflow(paths, args, phrase):
    before = snapshot(paths["root"])
    code, stdout, stderr, seconds = _run_train_subprocess(SMOKE, f"--workdir={paths['work']}",
                                                          *args)
    check_one_line(code, stderr, phrase)
    assert stdout.strip().splitlines()[-1] == "no tensorflow"
    assert seconds < 3, seconds
    assert snapshot(paths["root"]) == before


def test_second_run_into_a_locked_workdir_is_refused(paths):
    before = snapshot(paths["root"])
    with open(os.path.join(paths["work"], layout.LOCK), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a run in progress holds it
        code, _, stderr, _ = _run_train_subprocess(SMOKE, f"--workdir={paths['work']}")
    check_one_line(code, stderr, f"another run is writing {paths['work']}")
    assert snapshot(paths["root"]) == before


# --------------------------------------------------------------------------- mobile CLIs

MOBILE_CASES = {
    "export_output_is_file": (export_tool, ["--model_dir={work}", "--output_dir={file}"],
                              "is a file, not a directory"),
    "export_config_not_json": (export_tool, ["--model_dir={model_bad_json}",
                                             "--output_dir={root}/out"],
                               "config.json is not valid JSON"),
    "export_eval_grid_not_json": (export_tool, ["--model_dir={grid_bad_json}",
                                                "--output_dir={root}/out"],
                                  "eval_grid.json is not valid JSON"),
    "export_config_heads_0": (export_tool, ["--model_dir={model_heads0}",
                                            "--output_dir={root}/out"],
                              "num_attention_heads must be a positive integer"),
    "export_other_seq_len": (export_tool, ["--model_dir={work}", "--output_dir={tflite}",
                                           "--cells=w1.00_d1.00", "--quantization=none",
                                           "--seq_len=32"],
                             "holds another export (seq_len 16 there, 32 now)"),
    "export_other_quantization": (export_tool, ["--model_dir={work}", "--output_dir={tflite}",
                                                "--cells=w1.00_d1.00", f"--seq_len={SEQ_LEN}"],
                                  "quantization 'none' there, 'dynamic_range' now"),
    "export_seq_len_2": (export_tool, ["--model_dir={work}", "--output_dir={tflite}",
                                       "--seq_len=2"], "seq_len must be an integer >= 3"),
    "export_seq_len_above_positions": (export_tool, ["--model_dir={work}",
                                                     "--output_dir={root}/out",
                                                     "--seq_len=1000"],
                                       "exceeds the model's max_position_embeddings 128"),
    "export_int8_no_examples": (export_tool, ["--model_dir={work}", "--output_dir={tflite}",
                                              "--quantization=int8",
                                              "--representative_examples=0"],
                                "representative_examples must be at least 1"),
    "export_cell_not_in_grid": (export_tool, ["--model_dir={work}", "--output_dir={tflite}",
                                              "--cells=w0.30_d1.00"],
                                "cell w0.30_d1.00 is not in the model's grid"),
    "export_no_model_dir": (export_tool, ["--output_dir={tflite}"], "--model_dir is required"),
    "benchmark_corrupt_tflite": (benchmark_tool, ["--tflite_dir={corrupt_tflite}",
                                                  "--threads=1", "--runs=1", "--rounds=1"],
                                 "w1.00_d1.00.tflite is not a TFLite model"),
    "benchmark_manifest_not_json": (benchmark_tool, ["--tflite_dir={manifest_not_json}"],
                                    "manifest.json is not valid JSON"),
    "benchmark_manifest_without_file": (benchmark_tool, ["--tflite_dir={manifest_no_file}"],
                                        "every entry of 'cells' needs a file"),
    "benchmark_no_manifest": (benchmark_tool, ["--tflite_dir={empty_dir}"],
                              "no manifest.json in"),
    "benchmark_threads_0": (benchmark_tool, ["--tflite_dir={tflite}", "--threads=0"],
                            "--threads needs positive integers"),
    "benchmark_threads_text": (benchmark_tool, ["--tflite_dir={tflite}", "--threads=two"],
                               "--threads must be comma-separated integers"),
    "benchmark_runs_0": (benchmark_tool, ["--tflite_dir={tflite}", "--runs=0"],
                         "--runs must be at least 1, got 0"),
    "select_manifest_not_json": (select_tool, ["--manifest={manifest_not_json}"],
                                 "manifest.json is not valid JSON"),
    "select_manifest_list": (select_tool, ["--manifest={manifest_list}"],
                             "the manifest is a JSON list, not an object"),
    "select_without_bytes": (select_tool, ["--manifest={manifest_no_bytes}"],
                             "cells[0] (w1.00_d1.00) needs a byte count 'bytes'"),
    "select_latency_text": (select_tool, ["--manifest={manifest_latency_text}",
                                          "--max_latency_ms=5"], "'latency_ms' must map"),
    "select_metric_text": (select_tool, ["--manifest={manifest_metric_text}"],
                           "'metrics' must map names to numbers"),
    "select_budget_not_number": (select_tool, ["--manifest={tflite}", "--max_latency_ms=fast"],
                                 "flag --max_latency_ms=fast"),
    "select_nothing_fits": (select_tool, ["--manifest={tflite}", "--max_latency_ms=0.000001"],
                            "no cell runs within"),
}


@pytest.mark.parametrize("tool, args, phrase", MOBILE_CASES.values(), ids=MOBILE_CASES.keys())
def test_mobile(paths, capsys, tool, args, phrase):
    before = snapshot(paths["root"])
    flag_values = cli.define(tool.define_flags, flags.FlagValues())

    def call():
        argv = cli.parse(flag_values, [tool.__name__, *_expand(args, paths)])
        cli.call(tool.main, argv, flag_values)

    check_one_line(*run_in_process(call, capsys), phrase)
    assert snapshot(paths["root"]) == before


# --------------------------------------------------------------------------- Python API

@pytest.mark.parametrize("call_args, phrase", [
    ({"width_mult": 1.5}, "width_mult must be in (0, 1], got 1.5"),
    ({"width_mult": 0.5, "depth_mult": 0}, "depth_mult must be in (0, 1], got 0"),
])
def test_model_call_outside_the_grid_is_one_line(call_args, phrase):
    model = tiny_classifier()
    with pytest.raises(ValueError) as error:
        model(random_inputs(), **call_args)
    assert str(error.value) == phrase
    with pytest.raises(ValueError, match=r"must be in \(0, 1\]"):
        model.backbone(random_inputs(), **call_args)
    assert np.asarray(model(random_inputs(), width_mult=0.5)).shape == (3, 2)
