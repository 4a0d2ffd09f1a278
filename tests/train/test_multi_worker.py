"""Two worker processes on 127.0.0.1 (TF_CONFIG, MultiWorkerMirroredStrategy) train like one.

Each run is `python -m train.run --distribution=multi_worker` started twice, once per task
of a two-worker TF_CONFIG, on the smoke task with dropout off. With the same global batch
the two workers must end where one process ends, and a worker killed mid-stage must not
lose the stage: both restart, the stage resumes from the chief's checkpoint and finishes
with the one-process weights (one test covers both: a run that resumes and still matches one
process also matches it uninterrupted, which the bit-exact resume tests of test_loop.py and
test_train.py check separately).
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from safetensors.numpy import load_file
from tests.helpers import REPO_ROOT

# Float sums over two replicas' gradients are added in another order than one process adds
# the batch's: equal to float32 round-off, not bit for bit.
TOLERANCE = 2e-5
EPOCHS = 3  # 6 steps each at the smoke config's 96 examples / batch 16


@pytest.fixture(scope="module")
def no_dropout_checkpoint(tmp_path_factory):
    """The smoke run's tiny BERT config with dropout off, so runs can be compared."""
    config = json.load(open(os.path.join(REPO_ROOT, "configs", "tiny_bert", "config.json")))
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    path = tmp_path_factory.mktemp("tiny_bert_no_dropout")
    (path / "config.json").write_text(json.dumps(config))
    return str(path)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _command(workdir, checkpoint, distribution):
    return [sys.executable, "-m", "train.run", "--flagfile=configs/smoke.flags",
            f"--workdir={workdir}", f"--init_checkpoint={checkpoint}", "--stages=teacher",
            f"--teacher_epochs={EPOCHS}", "--checkpoint_every=1", "--dropout=0",
            f"--distribution={distribution}"]


def _env(tf_config=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_CONFIG", None)
    if tf_config:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def _start_workers(workdir, checkpoint, logs):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return [subprocess.Popen(_command(workdir, checkpoint, "multi_worker"), cwd=REPO_ROOT,
                             env=_env({"cluster": cluster,
                                       "task": {"type": "worker", "index": index}}),
                             stdout=open(logs / f"worker{index}.log", "a"),
                             stderr=subprocess.STDOUT)
            for index in range(2)]


def _wait(processes, logs, timeout=600):
    try:
        for index, process in enumerate(processes):
            code = process.wait(timeout=timeout)
            assert code == 0, (logs / f"worker{index}.log").read_text()[-3000:]
    finally:  # a failed worker leaves the other waiting on a collective
        for process in processes:
            process.kill()


def _weights(workdir):
    return load_file(os.path.join(workdir, "teacher", "model.safetensors"))


def _assert_same_weights(got, want):
    assert sorted(got) == sorted(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], atol=TOLERANCE, err_msg=name)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, no_dropout_checkpoint):
    workdir = tmp_path_factory.mktemp("one_process")
    result = subprocess.run(_command(workdir, no_dropout_checkpoint, "none"), cwd=REPO_ROOT,
                            env=_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return _weights(workdir)


def _latest_step(checkpoint_dir):
    """The step of the newest finished checkpoint (its .index is written last)."""
    names = os.listdir(checkpoint_dir) if os.path.isdir(checkpoint_dir) else []
    return max((int(m.group(1)) for m in map(re.compile(r"ckpt-(\d+)\.index$").match, names)
                if m), default=0)


@pytest.mark.slow
def test_multi_worker_killed_worker_resumes_and_ends_with_one_process_weights(
        tmp_path, one_process, no_dropout_checkpoint):
    """Two workers, both killed mid-stage and restarted, end where one process ends."""
    workdir = tmp_path / "run"
    workers = _start_workers(workdir, no_dropout_checkpoint, tmp_path)
    deadline = time.time() + 600
    while _latest_step(workdir / "teacher" / "checkpoints") < 4:  # mid first epoch or later
        assert time.time() < deadline and workers[0].poll() is None, \
            (tmp_path / "worker0.log").read_text()[-3000:]
        time.sleep(0.2)
    workers[1].send_signal(signal.SIGKILL)
    workers[1].wait()
    workers[0].send_signal(signal.SIGKILL)  # its collectives wait for the dead worker
    workers[0].wait()
    assert not (workdir / "teacher" / "stage.json").exists()
    killed_at = _latest_step(workdir / "teacher" / "checkpoints")
    assert killed_at < 6 * EPOCHS

    _wait(_start_workers(workdir, no_dropout_checkpoint, tmp_path), tmp_path)
    assert "resuming from" in (tmp_path / "worker0.log").read_text()
    stage = json.load(open(workdir / "teacher" / "stage.json"))
    assert stage["steps"] == 6 * EPOCHS and stage["replicas"] == 2
    _assert_same_weights(_weights(workdir), one_process)
    # Only the chief wrote: no worker scratch directory is left in the stage.
    assert not [name for name in os.listdir(workdir / "teacher") if name.startswith(".")]
