"""The training stages. Each reads the previous stage's directory and writes its own:

    teacher      fine-tune the pretrained checkpoint on the task         -> WORKDIR/teacher
    rewire       Taylor importance, heads/neurons permuted               -> WORKDIR/rewire
    width        DynaBERT_w: distil the rewired teacher into every width -> WORKDIR/width
    width_depth  DynaBERT: distil DynaBERT_w into every (width, depth)   -> WORKDIR/width_depth
    finetune     optional: label loss over the grid                      -> WORKDIR/finetune
    separate     baseline, not run by default: each cell sliced from the teacher and
                 fine-tuned alone                                        -> WORKDIR/separate
    evaluate     every cell's dev/test metrics, params, FLOPs; keeps the better of
                 width_depth / finetune                                  -> WORKDIR/eval_grid.json,
                                                                            WORKDIR/final

A stage's directory is complete once its `stage.json` exists; a complete stage is skipped
and an interrupted one resumes from its last checkpoint (train/loop.py).
"""

import json
import os
import shutil
import time

import keras
import tensorflow as tf

from dynabert_tf import evaluation, optimization, plots
from dynabert_tf.distillation import grid_trainer as distill
from dynabert_tf.elastic import grid as grid_lib
from dynabert_tf.elastic import rewiring
from dynabert_tf.io import checkpoint, files
from dynabert_tf.models.backbone import DynaBertBackbone
from dynabert_tf.models.config import BertConfig
from dynabert_tf.models.task_model import DynaBertTaskModel
from dynabert_tf.tasks import heads
from train.loop import fit_resumable

STAGE_FILE = "stage.json"


def is_complete(settings, stage):
    return os.path.isfile(os.path.join(settings.stage_dir(stage), STAGE_FILE))


def _finish(settings, stage, summary):
    files.write_json(os.path.join(settings.stage_dir(stage), STAGE_FILE), summary)


def _require(settings, stage):
    if not is_complete(settings, stage):
        raise FileNotFoundError(f"stage needs {settings.stage_dir(stage)} to be complete; "
                                f"run --stages={stage} first")
    return settings.stage_dir(stage)


def _load(path, data):
    return checkpoint.load_task_model(path, head_kind=data.task.head_kind,
                                      num_classes=data.task.num_labels,
                                      dropout=data.settings.dropout)


def _save(model, settings, data, stage):
    return checkpoint.save_task_model(model, settings.stage_dir(stage), data.vocab_path,
                                      extra_config=data.model_metadata(stage))


def _dev_metrics(model, data, width_mult=1.0, depth_mult=1.0):
    return evaluation.evaluate_cell(model, data.dev_sets, width_mult, depth_mult)


def _test_metrics(model, data):
    """Full-size test metrics where the task has labelled test data (reported, never used
    to choose anything)."""
    return evaluation.evaluate_cell(model, data.test_sets) if data.test_sets else None


def _initial_model(settings, data):
    path = settings.resolved_checkpoint()
    if not settings.random_init:
        return _load(path, data)
    backbone = DynaBertBackbone.from_config_object(BertConfig.from_json_file(path))
    head = heads.make_head(data.task.head_kind, data.task.num_labels, settings.dropout)
    return DynaBertTaskModel(backbone, head)


def _optimizer(settings, data, epochs):
    return optimization.create_optimizer(settings.learning_rate, data.total_steps(epochs),
                                         settings.warmup_proportion, settings.weight_decay)


def _fit(model, settings, data, state_dir, epochs, weights=None):
    steps = data.total_steps(epochs)
    full_epochs = -(-steps // data.steps_per_epoch)
    per_epoch = min(data.steps_per_epoch, steps)
    return fit_resumable(model, data.train_dataset, full_epochs, per_epoch, state_dir,
                         weights=weights, checkpoint_every=settings.checkpoint_every,
                         verbose=settings.keras_verbose)


def run_teacher(settings, data):
    """Standard fine-tuning of the full model with `model.fit`."""
    model = _initial_model(settings, data)
    trainer = distill.GridTrainer(model, None, loss_mode="labels")  # the full cell only
    trainer.compile(optimizer=_optimizer(settings, data, settings.teacher_epochs))
    steps = _fit(trainer, settings, data, settings.stage_dir("teacher"),
                 settings.teacher_epochs, weights=model)
    _save(model, settings, data, "teacher")
    return {"steps": steps, "dev": _dev_metrics(model, data), "test": _test_metrics(model, data)}


def run_rewire(settings, data):
    """Taylor importance on the teacher, then heads/neurons permuted most important first.
    With rewiring off (an ablation) the teacher is passed on unchanged."""
    model = _load(_require(settings, "teacher"), data)
    if not settings.rewiring:
        _save(model, settings, data, "rewire")
        return {"rewired": False}
    before = _dev_metrics(model, data)
    importance = rewiring.compute_importance(model, data.importance_dataset())
    rewiring.rewire(model, importance)
    rewiring.save_importance(os.path.join(settings.stage_dir("rewire"), "importance.npz"),
                             importance)
    _save(model, settings, data, "rewire")
    return {"rewired": True, "dev_before": before, "dev": _dev_metrics(model, data),
            "importance_split": settings.importance_split}


def _train_grid(settings, data, stage, student_from, teacher_from, widths, depths,
                lambdas, epochs, teacher_width="full"):
    """Trains `student_from`'s model over widths x depths: distilled from `teacher_from`'s
    model, or on the labels when `teacher_from` is None or distillation is switched off."""
    distilling = teacher_from is not None and settings.distillation
    student = _load(_require(settings, student_from), data)
    teacher = _load(_require(settings, teacher_from), data) if distilling else None
    trainer = distill.GridTrainer(
        student, teacher, width_mults=widths, depth_mults=depths,
        loss_mode="distill" if distilling else "labels",
        lambda_logits=lambdas[0], lambda_hidden=lambdas[1],
        teacher_width=teacher_width)
    trainer.compile(optimizer=_optimizer(settings, data, epochs))
    steps = _fit(trainer, settings, data, settings.stage_dir(stage), epochs, weights=student)
    _save(student, settings, data, stage)
    return {"steps": steps, "cells_trained": len(widths) * len(depths),
            "dev_full": _dev_metrics(student, data)}


def run_width(settings, data):
    """Stage 1, DynaBERT_w: the fixed, full-size rewired teacher distilled into every width
    at full depth."""
    return _train_grid(settings, data, "width", "rewire", "rewire", settings.width_mults,
                       (1.0,), settings.width_lambdas, settings.width_epochs)


def run_width_depth(settings, data):
    """Stage 2, DynaBERT: DynaBERT_w (at the student's width, by default) distilled into every
    cell. With `direct`, the rewired teacher is the start and the teacher (paper Table 5)."""
    source = "rewire" if settings.direct else "width"
    return _train_grid(settings, data, "width_depth", source, source, settings.width_mults,
                       settings.depth_mults, settings.width_depth_lambdas,
                       settings.width_depth_epochs, teacher_width=settings.teacher_width)


def run_finetune(settings, data):
    """Optional: label loss over the whole grid, starting from DynaBERT."""
    return _train_grid(settings, data, "finetune", "width_depth", None, settings.width_mults,
                       settings.depth_mults, (1.0, 0.0), settings.finetune_epochs)


def run_separate(settings, data):
    """Baseline (paper Table 3, "separate network"): every cell sliced out of the un-rewired
    teacher and fine-tuned alone on the labels. Writes WORKDIR/eval_grid_separate.json."""
    teacher_dir = _require(settings, "teacher")
    cells = {}
    for width_mult, depth_mult in settings.grid:
        name = grid_lib.cell_name(width_mult, depth_mult)
        cell_dir = os.path.join(settings.stage_dir("separate"), name)
        done = os.path.join(cell_dir, STAGE_FILE)
        if not os.path.isfile(done):
            print(f"[separate] {name}")
            student = _load(teacher_dir, data)
            trainer = distill.GridTrainer(student, None, width_mults=(width_mult,),
                                          depth_mults=(depth_mult,), loss_mode="labels")
            trainer.compile(optimizer=_optimizer(settings, data, settings.separate_epochs))
            _fit(trainer, settings, data, cell_dir, settings.separate_epochs, weights=student)
            entry = evaluation.evaluate_grid(student, data.dev_sets, [(width_mult, depth_mult)],
                                             settings.max_seq_length,
                                             test_sets=data.test_sets)[name]
            evaluation.write_grid(done, entry)
            del student, trainer
            keras.utils.clear_session(free_memory=True)  # twelve models in one stage
        cells[name] = evaluation.read_grid(done)
    grid = {"task": data.task.name, "model": "separate",
            "primary_metric": data.task.primary_metric, "cells": cells}
    evaluation.write_grid(os.path.join(settings.workdir, "eval_grid_separate.json"), grid)
    return {"mean_dev": evaluation.mean_metric(cells, data.task.primary_metric)}


def _candidates(settings):
    """The models `evaluate` chooses between, most trained first."""
    for group in (("width_depth", "finetune"), ("width",), ("rewire",), ("teacher",)):
        found = [stage for stage in group if is_complete(settings, stage)]
        if found:
            return found
    raise FileNotFoundError(f"nothing to evaluate in {settings.workdir}: no stage is complete")


def run_evaluate(settings, data):
    grids = {}
    for stage in _candidates(settings):
        model = _load(settings.stage_dir(stage), data)
        print(f"evaluating {stage} over {len(settings.grid)} cells")
        cells = evaluation.evaluate_grid(
            model, data.dev_sets, settings.grid, settings.max_seq_length,
            test_sets=data.test_sets,
            progress=lambda name, entry: print(f"  {name}: {entry['metrics']}"))
        grids[stage] = {"task": data.task.name, "model": stage,
                        "primary_metric": data.task.primary_metric, "cells": cells}
        evaluation.write_grid(os.path.join(settings.workdir, f"eval_grid_{stage}.json"),
                              grids[stage])
    metric = data.task.primary_metric
    means = {stage: evaluation.mean_metric(grid["cells"], metric) for stage, grid in grids.items()}
    chosen = max(means, key=means.get)
    grid = {**grids[chosen], "mean_dev": means, "chosen_because":
            f"highest mean dev {metric} over the grid among {sorted(means)}"}
    evaluation.write_grid(os.path.join(settings.workdir, "eval_grid.json"), grid)
    final = os.path.join(settings.workdir, "final")
    shutil.rmtree(final, ignore_errors=True)
    shutil.copytree(settings.stage_dir(chosen), final,
                    ignore=shutil.ignore_patterns("checkpoints", "logs", STAGE_FILE))
    print(f"kept {chosen} (mean dev {metric}: "
          + ", ".join(f"{s} {100 * m:.2f}" for s, m in means.items()) + ")")
    for key in ("metrics", "test_metrics"):
        if all(key in cell for cell in grid["cells"].values()):
            print(evaluation.format_table(grid, metric, key))
            plots.grid_heatmap(grid, metric, os.path.join(settings.workdir,
                                                          f"eval_grid_{key}.png"), key=key)
    return {"chosen": chosen, "mean_dev": means}


RUNNERS = {"teacher": run_teacher, "rewire": run_rewire, "width": run_width,
           "width_depth": run_width_depth, "finetune": run_finetune, "evaluate": run_evaluate,
           "separate": run_separate}


def run_stages(settings, data, stages):
    """Runs `stages` in pipeline order, skipping complete ones; returns their summaries."""
    tf.config.run_functions_eagerly(settings.run_eagerly)
    summaries = {}
    for stage in stages:
        if stage != "evaluate" and is_complete(settings, stage):
            print(f"[{stage}] complete in {settings.stage_dir(stage)}, skipped")
            continue
        print(f"[{stage}] running -> {settings.stage_dir(stage)}")
        os.makedirs(settings.stage_dir(stage), exist_ok=True)
        start = time.time()
        summary = {**RUNNERS[stage](settings, data), "wall_seconds": round(time.time() - start)}
        _finish(settings, stage, summary)
        summaries[stage] = summary
        print(f"[{stage}] done in {summary['wall_seconds']} s: "
              + json.dumps({k: v for k, v in summary.items() if k != "wall_seconds"}))
    return summaries
