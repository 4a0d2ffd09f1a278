"""Nothing torn, one writer (issue 26, cases 1, 2 and 10): `evaluate` swaps a complete new
final/ in by rename, a full disk leaves the previous one byte for byte and says so in one line
naming the file; a failed checkpoint save is one line naming the checkpoint directory and its
`ckpt-N_temp` is gone once the stage finishes; an export takes OUT's lock (a second export is
refused in one line, from two real processes), keeps its scratch SavedModels in OUT's hidden
temporaries (cleared when a killed export left them; none in the system temp dir), and a full
disk names the file and leaves the previous export as it was.

Disk-full is injected (the write that fails raises OSError(ENOSPC), as a full file system
does), on one tiny finished workdir and one tiny export built once per module.
"""

import errno
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import keras
import pytest
import tensorflow as tf
from absl import flags

from dynabert_tf.core import errors, files, layout, locks
from dynabert_tf.distillation.grid_trainer import GridTrainer
from mobile import cli
from mobile import export as export_lib
from mobile.export import __main__ as export_tool
from tests.helpers import REPO_ROOT, random_inputs, tiny_classifier
from tests.mobile.export.test_mobile_export import make_workdir
from tests.test_bad_inputs import (SMOKE, _finished_workdir, check_one_line, run_in_process,
                                   snapshot)
from train import run
from train.loop import TrainingLoop

SEQ_LEN = 16
CELL = "w0.25_d0.50"
ONE_CELL_GRID = ("--width_mult_list=1.0", "--depth_mult_list=1.0")


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# --------------------------------------------------------------------------- evaluate

@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished smoke workdir (one cell, so that `evaluate` takes seconds)."""
    work = str(tmp_path_factory.mktemp("atomic") / "work")
    old_cwd = os.getcwd()
    os.chdir(REPO_ROOT)
    try:
        run.parse_flags(["train.run", SMOKE, f"--workdir={work}", *ONE_CELL_GRID])
        _finished_workdir(work, run.settings_from_flags())
    finally:
        os.chdir(old_cwd)
        run.FLAGS.unparse_flags()
    return work


def _evaluate(work):
    run.main(run.parse_flags(["train.run", SMOKE, f"--workdir={work}", *ONE_CELL_GRID,
                              "--stages=evaluate"]))


# issue case 1 (and 10: the error names the file, not a list of them)
def test_evaluate_on_a_full_disk_keeps_the_previous_final(finished, capsys, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    final = os.path.join(finished, layout.FINAL)
    copy2 = shutil.copy2

    def torn_copy(source, target, **kwargs):  # half the weights reach the disk, then ENOSPC
        if os.path.basename(target) == layout.WEIGHTS:
            with open(source, "rb") as f, open(target, "wb") as out:
                out.write(f.read()[:1000])
            _no_space()
        return copy2(source, target, **kwargs)

    before = snapshot(finished)
    monkeypatch.setattr(shutil, "copy2", torn_copy)
    code, stderr = run_in_process(lambda: _evaluate(finished), capsys)
    check_one_line(code, stderr, "no space left on device writing "
                                 f"{os.path.join(final, layout.WEIGHTS)}")
    after = snapshot(finished)
    for name, digest in before.items():  # the previous final/ and eval_grid.json as they were
        if name.startswith(layout.FINAL) or name == layout.EVAL_GRID:
            assert after.get(name) == digest, name
    assert not [name for name in after if files.is_temporary(os.path.basename(name))]

    monkeypatch.setattr(shutil, "copy2", copy2)  # with room: final/ is the chosen stage's
    _evaluate(finished)
    grid = files.read_json(os.path.join(finished, layout.EVAL_GRID))
    json.dumps(grid, allow_nan=False)  # strict JSON
    chosen = os.path.join(finished, grid["model"])
    assert sorted(os.listdir(final)) == sorted(
        n for n in os.listdir(chosen) if n not in ("checkpoints", "logs", layout.STAGE_SUMMARY))
    for name in os.listdir(final):
        assert files.sha256_of(os.path.join(final, name)) == files.sha256_of(
            os.path.join(chosen, name)), name
    assert not [n for n in os.listdir(finished) if files.is_temporary(n)]


def test_atomic_directory_keeps_the_old_one_until_the_new_one_is_complete(tmp_path):
    target = str(tmp_path / "final")
    with files.atomic_directory(target) as staging:
        files.write_atomic(os.path.join(staging, "a"), b"old")
    with pytest.raises(RuntimeError, match="interrupted"):
        with files.atomic_directory(target) as staging:
            files.write_atomic(os.path.join(staging, "a"), b"new")
            assert open(os.path.join(target, "a"), "rb").read() == b"old"
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == ["final"]
    assert open(os.path.join(target, "a"), "rb").read() == b"old"
    with files.atomic_directory(target) as staging:
        files.write_atomic(os.path.join(staging, "b"), b"new")
    assert os.listdir(target) == ["b"] and os.listdir(tmp_path) == ["final"]


def test_a_half_swapped_directory_gets_its_old_one_back(tmp_path):
    """A writer killed between moving the old directory aside and renaming the new one in:
    the next writer (holding the lock) restores the old one and drops the new temporary."""
    with files.atomic_directory(str(tmp_path / "final")) as staging:
        files.write_atomic(os.path.join(staging, "model"), b"good")
    os.rename(tmp_path / "final", tmp_path / ".final.previous.partial")
    os.makedirs(tmp_path / ".final.x1y2.partial")
    with locks.output_lock(str(tmp_path), "run", "--workdir"):
        assert sorted(os.listdir(tmp_path)) == [".lock", "final"]
    assert (tmp_path / "final" / "model").read_bytes() == b"good"


# issue case 10 (a write error names the file being written; a read error stays as it was)
def test_write_errors_name_the_file_and_leave_no_temporary(tmp_path):
    path = str(tmp_path / "out.bin")
    with pytest.raises(OSError) as full:
        with files.atomic_open(path) as f:
            f.write(b"x")
            _no_space()
    assert str(full.value) == f"no space left on device writing {path}"
    assert full.value.errno == errno.ENOSPC
    with pytest.raises(FileNotFoundError, match="missing"):
        with files.atomic_open(path):
            open(tmp_path / "missing")
    assert not os.listdir(tmp_path)


def test_write_json_is_strict_and_names_the_key(tmp_path):
    path = str(tmp_path / "grid.json")
    with pytest.raises(ValueError, match=r"grid.json: cells.w1.00_d1.00.pearson = nan is not"):
        files.write_json(path, {"cells": {"w1.00_d1.00": {"pearson": float("nan")}}})
    assert not os.listdir(tmp_path)


# --------------------------------------------------------------------------- checkpoints

STEPS = 4


def _epoch_dataset(epoch):
    inputs = random_inputs(batch_size=8, seq_len=6, pad_last=0, seed=7)
    labels = (inputs["token_ids"][:, 1] % 2).astype("int32")
    return tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(2)


def _loop(state_dir, checkpoint_every=1):
    keras.utils.set_random_seed(0)
    trainer = GridTrainer(tiny_classifier(), None, loss_mode="labels")
    return TrainingLoop(trainer, keras.optimizers.Adam(1e-3), str(state_dir),
                        checkpoint_every=checkpoint_every, verbose=0)


def _temporaries(state_dir):
    return glob.glob(os.path.join(state_dir, "checkpoints", "ckpt-*_temp"))


# issue case 10
def test_a_failed_checkpoint_save_is_one_line_and_its_temp_is_removed(tmp_path):
    checkpoints = os.path.join(tmp_path, "checkpoints")
    blocker = os.path.join(checkpoints, "ckpt-2.data-00000-of-00001")
    os.makedirs(blocker)  # the save of step 2 cannot write its data file: a real failed save
    with pytest.raises(OSError) as failure:
        _loop(tmp_path).fit(_epoch_dataset, 1, STEPS)
    message = errors.one_line(failure.value)
    assert message == str(failure.value) and "\n" not in message
    assert message.startswith(f"cannot write a checkpoint in {checkpoints}: "), message
    assert "function_node" not in message and "[Op:" not in message, message
    assert _temporaries(tmp_path)  # what the failed save left
    os.rmdir(blocker)
    # Resumed from ckpt-1 and saving at steps 3 and 4 only: TensorFlow never saves ckpt-2 again
    # (which would reuse its temp).
    assert _loop(tmp_path, checkpoint_every=3).fit(_epoch_dataset, 1, STEPS) == STEPS
    assert not _temporaries(tmp_path)
    assert tf.train.latest_checkpoint(checkpoints).endswith(f"ckpt-{STEPS}")


# issue case 10
def test_a_full_disk_while_saving_a_checkpoint_names_the_directory(tmp_path, monkeypatch):
    loop = _loop(tmp_path)
    raw = ("{{function_node __wrapped__SaveV2_dtypes_41_device_/job:localhost/replica:0/task:0/"
           f"device:CPU:0}}}} {tmp_path}/checkpoints/ckpt-1_temp/part-00000-of-00001.data-"
           "00000-of-00001.tempstate123; No space left on device [Op:SaveV2]")

    def save(checkpoint_number=None):  # TensorFlow's own error of SaveV2 on a full disk
        os.makedirs(os.path.join(loop.checkpoint_dir, f"ckpt-{checkpoint_number}_temp"))
        raise tf.errors.ResourceExhaustedError(None, None, raw)

    monkeypatch.setattr(loop.manager, "save", save)
    with pytest.raises(OSError) as failure:
        loop.fit(_epoch_dataset, 1, STEPS)
    assert failure.value.errno == errno.ENOSPC
    assert errors.one_line(failure.value) == (
        f"no space left on device writing a checkpoint in {tmp_path}/checkpoints")
    monkeypatch.undo()
    assert _loop(tmp_path, checkpoint_every=3).fit(_epoch_dataset, 1, STEPS) == STEPS
    assert not _temporaries(tmp_path)


# --------------------------------------------------------------------------- exports

@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{"work", "out"}: a tiny trained-model dir and its one-cell float export."""
    work = make_workdir(str(tmp_path_factory.mktemp("work")))
    out = str(tmp_path_factory.mktemp("export") / "out")
    export_lib.export_model(work, out, "none", SEQ_LEN, CELL, progress=False)
    return {"work": work, "out": out}


def _export_in_process(capsys, *args):
    flag_values = cli.define(export_tool.define_flags, flags.FlagValues())

    def call():
        argv = cli.parse(flag_values, ["mobile.export", *args])
        cli.call(export_tool.main, argv, flag_values)

    return run_in_process(call, capsys)


# issue case 10
def test_export_on_a_full_disk_names_the_file_and_keeps_the_previous_export(
        exported, tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "out")
    shutil.copytree(exported["out"], out)
    before = snapshot(out)
    fsync = os.fsync

    def full_disk_for_tflite(fd):  # the .tflite's bytes do not fit
        name = os.readlink(f"/proc/self/fd/{fd}")
        if ".tflite." in os.path.basename(name) and files.is_temporary(os.path.basename(name)):
            _no_space()
        return fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk_for_tflite)
    code, stderr = _export_in_process(capsys, f"--model_dir={exported['work']}",
                                      f"--output_dir={out}", "--quantization=none",
                                      f"--seq_len={SEQ_LEN}", f"--cells={CELL}")
    check_one_line(code, stderr, "no space left on device writing "
                                 f"{os.path.join(out, CELL + '.tflite')}")
    assert snapshot(out) == before  # no temporaries, the previous file and manifest as is


def _export_process(work, out, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "mobile.export", f"--model_dir={work}", f"--output_dir={out}",
         "--quantization=none", f"--seq_len={SEQ_LEN}", f"--cells={CELL}"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_until_locked(out, process, seconds=120):
    """Returns once `process` holds OUT's lock (asked of /proc/locks, without locking)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        assert process.poll() is None, process.communicate()
        if locks.holder(out) == process.pid:
            return
        time.sleep(0.02)
    raise AssertionError(f"{out} was never locked")


def _wait_for_scratch(out, process, seconds=120):
    """The scratch directories in OUT once `process` has made one (it is converting)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        assert process.poll() is None, process.communicate()
        found = [path for path in glob.glob(os.path.join(out, f".{CELL}.tflite.*.partial"))
                 if os.path.isdir(path)]
        if found:
            return found
        time.sleep(0.01)
    raise AssertionError(f"no scratch directory appeared in {out}")


# issue cases 2 and 10
def test_a_second_export_into_a_locked_output_dir_is_refused(exported, tmp_path):
    """Real `python -m mobile.export` processes into one OUT. One is SIGKILLed while it
    converts: its scratch SavedModel is in OUT (nothing in the system temp dir). The next is
    held (SIGSTOP) once it holds OUT's lock, so that a third surely starts while it writes:
    the third is refused in one line naming the holder's pid and changes nothing. The held
    one then finishes: the killed one's scratch is gone and the manifest describes the files
    on disk."""
    out, system_tmp = str(tmp_path / "out"), tmp_path / "system_tmp"
    system_tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(system_tmp)}
    killed = _export_process(exported["work"], out, env)
    scratch = _wait_for_scratch(out, killed)
    killed.kill()
    killed.communicate()
    assert all(os.path.isdir(path) for path in scratch)  # left in OUT, where it is found
    assert not list(system_tmp.iterdir())  # no dynabert-savedmodel-* in the system temp dir

    first = _export_process(exported["work"], out, env)
    try:
        _wait_until_locked(out, first)
        os.kill(first.pid, signal.SIGSTOP)
        before = snapshot(out)
        second = _export_process(exported["work"], out, env)
        _, stderr = second.communicate(timeout=300)
        check_one_line(second.returncode, stderr,
                       f"another mobile.export is writing {out} (pid {first.pid} holds "
                       f"{os.path.join(out, layout.LOCK)})")
        assert snapshot(out) == before
    finally:
        os.kill(first.pid, signal.SIGCONT)
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert "wrote 1 cells" in stdout
    manifest = files.read_json(os.path.join(out, layout.MANIFEST))
    for entry in manifest["cells"]:
        path = os.path.join(out, entry["file"])
        assert (os.path.getsize(path), files.sha256_of(path)) == (entry["bytes"],
                                                                  entry["sha256"])
    assert not glob.glob(os.path.join(out, ".*.partial"))  # the killed one's scratch cleared
    assert not list(system_tmp.iterdir())


def test_output_lock_refuses_a_second_holder_and_frees_on_exit(tmp_path):
    out = str(tmp_path / "out")
    with locks.output_lock(out, "mobile.search"):
        assert locks.holder(out) == os.getpid()
        with pytest.raises(RuntimeError, match=rf"another mobile.search is writing {out} "
                                               rf"\(pid {os.getpid()} holds .*--output_dir$"):
            with locks.output_lock(out, "mobile.search"):
                pass
    assert locks.holder(out) is None
    with locks.output_lock(out, "mobile.search"):
        pass


# issue case 2 (every writer's output directory is locked: the search's too)
@pytest.mark.parametrize("locked", ["out", "latency"])
def test_a_search_into_a_locked_directory_is_refused(exported, tmp_path, locked):
    from mobile import search as search_lib

    out, latency = str(tmp_path / "out"), str(tmp_path / "latency")
    flag = {"out": "--output_dir", "latency": "--latency_dir"}[locked]
    held = {"out": out, "latency": latency}[locked]
    settings = search_lib.SearchSettings(measure_only=True, latency_dir=latency, seq_len=16)
    with locks.output_lock(held, "mobile.search", flag):
        before = snapshot(str(tmp_path))
        with pytest.raises(RuntimeError) as refused:
            search_lib.run_search(exported["work"], out, settings, progress=False)
        after = snapshot(str(tmp_path))
    # Nothing written but the other directory's (empty) lock, taken first.
    assert {k: v for k, v in after.items() if k in before} == before
    assert all(v is None or k.endswith(layout.LOCK) for k, v in after.items() if k not in before)
    assert errors.one_line(refused.value) == (
        f"another mobile.search is writing {held} (pid {os.getpid()} holds "
        f"{os.path.join(held, layout.LOCK)}); wait for it to finish or use another {flag}")


# issue case 10 (SIGTERM of an export: its scratch SavedModel removed at once)
def test_a_sigtermed_export_removes_its_scratch_and_says_so(exported, tmp_path):
    out, system_tmp = str(tmp_path / "out"), tmp_path / "system_tmp"
    system_tmp.mkdir()
    process = _export_process(exported["work"], out, {**os.environ, "TMPDIR": str(system_tmp)})
    scratch = _wait_for_scratch(out, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    shown = f"exit {process.returncode}: {stderr[-3000:]}; OUT: {os.listdir(out)}"
    assert process.returncode == errors.TERMINATED_STATUS, shown
    assert "Traceback" not in stderr, shown
    assert stderr.strip().splitlines()[-1].startswith("error: stopped by SIGTERM; "), shown
    assert not any(os.path.exists(path) for path in scratch), shown
    assert not [n for n in os.listdir(out) if files.is_temporary(n)], shown
    assert not list(system_tmp.iterdir())
    assert locks.holder(out) is None  # the lock went with the process
