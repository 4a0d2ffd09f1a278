"""One workdir, one run: what a workdir was made for, and one writer at a time.

    with workdir.claim(settings, inputs):   # refuses a workdir of another task, model or grid
        run_stages(...)                     # and a workdir another run is writing

`WORKDIR/run.json` records what makes a run's outputs incompatible with another's: the task,
the init checkpoint, its architecture and vocabulary, max_seq_length, the width/depth grid,
the data, the method switches, the training precision (--precision: a stage resumed, or
the next one trained, in another dtype would mix numerics and checkpoint layouts, float16's
loss scale among them) and the augmentation (--augment and its aug_* values). A
later run whose values differ is refused with one line naming the differing fields, so it
cannot skip stages made for something else or overwrite their grid. Hyper-parameters
(epochs, learning rate, batch sizes, seed), the stage list and display flags may change
between runs: resuming stays possible. A workdir written before run.json existed is checked
against what its stages' config.json record.

`WORKDIR/.lock` is held (core/locks.py: `fcntl.flock`, exclusive, non-blocking) while a run
works; a second run into the same workdir is refused. In a multi-worker run only the chief
takes the lock and writes run.json; the other workers share its workdir.
"""

import contextlib
import json
import os

from dynabert_tf.core import files, layout, locks
from dynabert_tf.presets import hf_config
from train import sources
from train.pipeline import NAMES as STAGES

_OUTPUTS = (*STAGES, layout.FINAL, layout.EVAL_GRID)


def identity(settings, inputs):
    """The values a workdir's outputs depend on (`inputs`: `preflight.Inputs`)."""
    checkpoint = sources.recorded_checkpoint(settings.model, inputs.checkpoint_dir)
    vocab_sha256 = files.sha256_of(inputs.vocab_path)
    values = {
        "task": settings.task, "init_checkpoint": checkpoint,
        "random_init": settings.random_init, "model": inputs.architecture,
        "vocab_sha256": vocab_sha256, "max_seq_length": settings.max_seq_length,
        "width_mult_list": sorted(settings.width_mults),
        "depth_mult_list": sorted(settings.depth_mults),
        "data_source": settings.data_source,
        "data_dir": settings.data_dir and os.path.realpath(settings.data_dir),
        "rewiring": settings.rewiring, "distillation": settings.distillation,
        "direct": settings.direct, "teacher_width": settings.teacher_width,
        "distill_objective": settings.distill_objective,
        "first_stage": settings.first_stage, "width_teacher": settings.width_teacher,
        "width_sampling": settings.width_sampling,
        "progressive_rewiring": settings.progressive_rewiring,
        "separate_init": settings.separate_init, "precision": settings.precision,
        "augment": settings.augment and {
            "replace_prob": settings.aug_replace_prob, "candidates": settings.aug_candidates,
            "copies": settings.aug_copies,
            "mlm_checkpoint": settings.aug_mlm_checkpoint
            and os.path.realpath(settings.aug_mlm_checkpoint)}}
    if settings.hidden_on:  # recorded only when on: a run without it keeps its run.json
        values["hidden_mult_list"] = sorted(settings.hidden_mults)
    return json.loads(json.dumps(values))  # as run.json reads back


@contextlib.contextmanager
def claim(settings, inputs, chief=None):
    """Locks the workdir, refuses it if it was made for another run, records this run's
    identity; the lock is released when the block exits. `chief`: whether this process
    writes the workdir (default: not a non-chief worker of TF_CONFIG)."""
    workdir = settings.workdir
    _make_workdir(workdir)
    chief = is_chief() if chief is None else chief
    lock = locks.acquire(workdir, "run", "--workdir") if chief else None
    try:
        wanted = identity(settings, inputs)
        recorded = _recorded(workdir)
        if recorded is not None and _has_outputs(workdir):
            differing = _differences(recorded, wanted)
            if differing:
                raise ValueError(f"{workdir} holds the outputs of another run ("
                                 + "; ".join(differing) + "); use another --workdir")
        if chief and recorded != wanted:
            files.write_json(os.path.join(workdir, layout.RUN_RECORD), wanted)
        yield
    finally:
        if lock is not None:
            lock.close()  # closing the file releases the lock


def _make_workdir(workdir):
    """Creates `workdir`; ValueError with one line naming what stands in the way: a symlink
    that leads nowhere (a loop, a missing target), or a stage output that is not a directory."""
    if os.path.islink(workdir) and not os.path.exists(workdir):
        raise ValueError(f"--workdir {workdir} is a symlink that leads nowhere (a loop or a "
                         f"missing target: {os.readlink(workdir)}); use another --workdir")
    try:
        os.makedirs(workdir, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--workdir {workdir} cannot be made: {e.strerror}") from None
    for name in (*STAGES, layout.FINAL):
        path = os.path.join(workdir, name)
        if os.path.lexists(path) and not os.path.isdir(path):
            kind = "a symlink that leads nowhere" if os.path.islink(path) else "a file"
            raise ValueError(f"{path} is {kind}, not a stage directory; move it away or use "
                             f"another --workdir")


def is_chief():
    """False only for a non-chief worker of a multi-worker cluster (TF_CONFIG)."""
    try:
        config = json.loads(os.environ.get("TF_CONFIG") or "{}")
        task, cluster = config.get("task") or {}, config.get("cluster") or {}
        if not task:
            return True
        if task.get("type") == "chief":
            return True
        first_worker = task.get("type") == "worker" and int(task.get("index", 0)) == 0
        return first_worker and "chief" not in cluster
    except (ValueError, TypeError, AttributeError):
        return True  # not a cluster run (a bad TF_CONFIG is reported by the settings)


def _has_outputs(workdir):
    """Whether any stage left something (an empty stage dir holds nothing to mix with)."""
    for name in _OUTPUTS:
        path = os.path.join(workdir, name)
        if os.path.isfile(path) or (os.path.isdir(path) and os.listdir(path)):
            return True
    return False


def _recorded(workdir):
    """The identity in run.json; for a workdir written before run.json, what its stages'
    config.json record; None for a new workdir."""
    path = os.path.join(workdir, layout.RUN_RECORD)
    if os.path.exists(path):
        recorded = files.read_json(path, layout.RUN_RECORD)
        if not isinstance(recorded, dict):
            raise ValueError(f"{path} is not a JSON object; use another --workdir")
        return recorded
    for stage in (*STAGES, layout.FINAL):
        config_path = os.path.join(workdir, stage, layout.CONFIG)
        if os.path.isfile(config_path):
            return _from_stage_config(files.read_json(config_path, layout.CONFIG))
    return None


def _from_stage_config(config):
    """The identity fields a stage's config.json records (train.task_data.model_metadata)."""
    recorded = {"task": config.get("finetuning_task"),
                "max_seq_length": config.get("max_seq_length")}
    grid = config.get("dynabert") or {}
    for key, flag in (("width_mults", "width_mult_list"), ("depth_mults", "depth_mult_list"),
                      ("hidden_mults", "hidden_mult_list")):
        if key in grid:
            recorded[flag] = sorted(grid[key])
    try:
        recorded["model"] = json.loads(json.dumps(hf_config.from_hf_dict(config).to_dict()))
    except (ValueError, TypeError):
        pass
    return {key: value for key, value in recorded.items() if value is not None}


def _differences(recorded, wanted):
    """'field X here, Y now' for each field both know that differs (of a dict such as the
    architecture: each key both know)."""
    differing = []
    for key, value in recorded.items():
        if key not in wanted or wanted[key] == value:
            continue
        if isinstance(value, dict) and isinstance(wanted[key], dict):
            keys = sorted(k for k in value if k in wanted[key] and value[k] != wanted[key][k])
            if keys:
                differing.append(f"{key} " + ", ".join(
                    f"{k} {value[k]!r} here, {wanted[key][k]!r} now" for k in keys))
        else:
            differing.append(f"{key} {_show(value)} here, {_show(wanted[key])} now")
    return differing


def _show(value):
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)
