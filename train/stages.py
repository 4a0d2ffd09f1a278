"""The training stages. Each reads the previous stage's directory and writes its own:

    teacher      fine-tune the pretrained checkpoint on the task         -> WORKDIR/teacher
    rewire       Taylor importance, heads/neurons permuted               -> WORKDIR/rewire
    augment      with --augment: TinyBERT's augmented copies of the training split, which
                 width and width_depth then train on too (train/augment.py) -> WORKDIR/augment
    width        DynaBERT_w: distil the rewired teacher into every width -> WORKDIR/width
    depth        with --first_stage=depth, instead of width: DynaBERT_D, the rewired
                 teacher distilled into every depth (paper Table 6)       -> WORKDIR/depth
    width_depth  DynaBERT: distil DynaBERT_w into every (width, depth)   -> WORKDIR/width_depth
    finetune     optional: label loss over the grid                      -> WORKDIR/finetune
    separate     baseline, not run by default: each cell started from the pretrained
                 checkpoint (or the teacher) and fine-tuned alone        -> WORKDIR/separate
    evaluate     every cell's dev/test metrics, params, FLOPs; keeps the better of
                 width_depth / finetune                                  -> WORKDIR/eval_grid.json,
                                                                            WORKDIR/final

The order of the stages, the flags that add or replace one and each stage's seed are the
pipeline table's (train/pipeline.py); `RUNNERS` maps its names to the functions here.
A stage's directory is complete once its `stage.json` exists; a complete stage is skipped
and an interrupted one resumes from its last checkpoint (train/loop.py).

Every stage runs under the run's `Runtime` (train/runtime.py): models and optimizers are
built in its strategy's scope, training steps run on every replica, and only the chief
writes a stage's outputs; all workers meet at a barrier after each stage.
"""

import json
import os
import time

import keras
import tensorflow as tf

from dynabert_tf import evaluation, optimization, plots, precision
from dynabert_tf.distillation import grid_trainer as distill
from dynabert_tf.distillation import variants
from dynabert_tf.core import grid as grid_lib
from dynabert_tf.elastic import rewiring
from dynabert_tf.core import files, layout
from dynabert_tf.io import checkpoint
from dynabert_tf.models.backbone import DynaBertBackbone
from dynabert_tf.presets import hf_config
from dynabert_tf.models.task_model import DynaBertTaskModel
from dynabert_tf.tasks import heads
from train import augment, pipeline, sources
from train.loop import TrainingLoop
from train.runtime import Runtime

def is_complete(settings, stage):
    return os.path.isfile(os.path.join(settings.stage_dir(stage), layout.STAGE_SUMMARY))


def _finish(settings, stage, summary, runtime):
    if runtime.is_chief:
        files.write_json(os.path.join(settings.stage_dir(stage), layout.STAGE_SUMMARY),
                         summary)


def _require(settings, stage):
    if not is_complete(settings, stage):
        raise FileNotFoundError(f"stage needs {settings.stage_dir(stage)} to be complete; "
                                f"run --stages={stage} first")
    return settings.stage_dir(stage)


def _load(path, data, runtime):
    with runtime.scope():
        return checkpoint.load_task_model(path, head_kind=data.task.head_kind,
                                          num_classes=data.task.num_labels,
                                          dropout=data.settings.dropout)


def _save(model, settings, data, stage, runtime):
    if runtime.is_chief:
        checkpoint.save_task_model(model, settings.stage_dir(stage), data.vocab_path,
                                   extra_config=data.model_metadata(stage))


def _dev_metrics(model, data, width_mult=1.0, depth_mult=1.0):
    return evaluation.evaluate_cell(model, data.dev_sets, width_mult, depth_mult)


def _test_metrics(model, data):
    """Full-size test metrics where the task has labelled test data (reported, never used
    to choose anything)."""
    return evaluation.evaluate_cell(model, data.test_sets) if data.test_sets else None


def _initial_model(settings, data, runtime):
    path = sources.checkpoint_dir(settings.model)
    if not settings.random_init:
        return _load(path, data, runtime)
    with runtime.scope():
        backbone = DynaBertBackbone.from_config_object(hf_config.read_config(path))
        head = heads.make_head(data.task.head_kind, data.task.num_labels, settings.dropout)
        return DynaBertTaskModel(backbone, head)


def _fit(trainer, settings, data, runtime, state_dir, epochs):
    """Trains `trainer` for `epochs` (resuming from `state_dir`); returns the step count."""
    steps = data.total_steps(epochs)
    full_epochs = -(-steps // data.steps_per_epoch)
    per_epoch = min(data.steps_per_epoch, steps)
    with runtime.scope():
        optimizer = precision.for_policy(
            optimization.create_optimizer(settings.learning_rate, steps,
                                          settings.warmup_proportion, settings.weight_decay),
            settings.precision)
    if hasattr(trainer, "use_sampler"):  # universally slimmable: draws from (seed, step)
        trainer.use_sampler(optimizer.iterations, settings.seed)
    loop = TrainingLoop(trainer, optimizer, state_dir, runtime,
                        checkpoint_every=settings.checkpoint_every,
                        verbose=settings.keras_verbose)
    return loop.fit(data.train_dataset, full_epochs, per_epoch)


def _grid_trainer(runtime, *args, trainer_class=distill.GridTrainer, **kwargs):
    with runtime.scope():
        return trainer_class(*args, **kwargs)


def _trainer_class(settings, stage):
    """GridTrainer, or the variant an ablation flag asks of `stage` (distillation/variants.py)."""
    if stage == "width" and settings.width_teacher == "inplace":
        return variants.InplaceGridTrainer
    if stage == "width" and settings.width_sampling == "universal":
        return variants.SlimmableGridTrainer
    if stage == "width_depth" and settings.first_stage == "depth" and not settings.direct:
        return variants.DepthTeacherGridTrainer
    return distill.GridTrainer


def run_teacher(settings, data, runtime):
    """Standard fine-tuning of the full model."""
    model = _initial_model(settings, data, runtime)
    trainer = _grid_trainer(runtime, model, None, loss_mode="labels")  # the full cell only
    steps = _fit(trainer, settings, data, runtime, settings.stage_dir("teacher"),
                 settings.teacher_epochs)
    _save(model, settings, data, "teacher", runtime)
    return {"steps": steps, "dev": _dev_metrics(model, data), "test": _test_metrics(model, data)}


def run_rewire(settings, data, runtime):
    """Taylor importance on the teacher, then heads/neurons permuted most important first.
    With rewiring off (an ablation) the teacher is passed on unchanged."""
    model = _load(_require(settings, "teacher"), data, runtime)
    if not settings.rewiring:
        _save(model, settings, data, "rewire", runtime)
        return {"rewired": False}
    before = _dev_metrics(model, data)
    importance = rewiring.compute_importance(model, data.importance_dataset(),
                                             hidden=settings.hidden_on)
    rewiring.rewire(model, importance)
    if runtime.is_chief:
        rewiring.save_importance(os.path.join(settings.stage_dir("rewire"), "importance.npz"),
                                 importance)
    _save(model, settings, data, "rewire", runtime)
    return {"rewired": True, "dev_before": before, "dev": _dev_metrics(model, data),
            "importance_split": settings.importance_split}


def _train_grid(settings, data, runtime, stage, student_from, teacher_from, widths, depths,
                lambdas, epochs, teacher_width="full"):
    """Trains `student_from`'s model over widths x depths: distilled from `teacher_from`'s
    model, or on the labels when `teacher_from` is None or distillation is switched off."""
    distilling = teacher_from is not None and settings.distillation
    if settings.augment and stage in ("width", "width_depth"):
        data = data.augmented  # original + WORKDIR/augment's copies (train/augment.py)
    student = _load(_require(settings, student_from), data, runtime)
    teacher = _load(_require(settings, teacher_from), data, runtime) if distilling else None
    trainer = _grid_trainer(
        runtime, student, teacher, width_mults=widths, depth_mults=depths,
        loss_mode="distill" if distilling else "labels",
        lambda_logits=lambdas[0], lambda_hidden=lambdas[1],
        teacher_width=teacher_width, distill_objective=settings.distill_objective,
        lambda_relation=settings.lambda_relation, relation_heads=settings.relation_heads or None,
        relations=settings.minilm_relations, trainer_class=_trainer_class(settings, stage),
        hidden_mults=settings.hidden_mults)
    steps = _fit(trainer, settings, data, runtime, settings.stage_dir(stage), epochs)
    _save(student, settings, data, stage, runtime)
    return {"steps": steps, "cells_trained": len(trainer.cells),
            "dev_full": _dev_metrics(student, data)}


def run_width(settings, data, runtime):
    """Stage 1, DynaBERT_w: the fixed, full-size rewired teacher distilled into every width
    at full depth (with --width_teacher=inplace, the widest width teaches the others)."""
    if settings.progressive_rewiring:
        return _run_width_progressively(settings, data, runtime)
    teacher_from = None if settings.width_teacher == "inplace" else "rewire"
    return _train_grid(settings, data, runtime, "width", "rewire", teacher_from,
                       settings.width_mults, (1.0,), settings.width_lambdas,
                       settings.width_epochs)


def progressive_phases(width_mults):
    """The width lists of progressive rewiring's phases: (1, .75), (1, .75, .5), ... for
    width_mults (1, .75, .5, .25): one more width each phase, largest first."""
    widths = sorted(width_mults, reverse=True)
    return [tuple(widths[:count]) for count in range(2, len(widths) + 1)]


def _rewired_start(settings, data, runtime, source, start):
    """Stage dir `start`: `source`'s model with its heads and neurons re-scored (Taylor
    importance on the importance data) and permuted most important first."""
    if not is_complete(settings, start):
        model = _load(_require(settings, source), data, runtime)
        importance = rewiring.compute_importance(model, data.importance_dataset())
        rewiring.rewire(model, importance)
        _save(model, settings, data, start, runtime)
        if runtime.is_chief:
            rewiring.save_importance(
                os.path.join(settings.stage_dir(start), "importance.npz"), importance)
        _finish(settings, start, {"rewired_from": source}, runtime)
        runtime.barrier()
    return start


def _run_width_progressively(settings, data, runtime):
    """Stage 1 with progressive rewiring (paper Table 8, PR): phase p trains
    `progressive_phases(...)[p - 1]` distilled from the rewired teacher, each phase from the
    last one's student re-scored and rewired (phase 1 from the rewired teacher); the epochs
    are split evenly between the phases, each with a fresh optimizer (the permutation
    invalidates the moments). Phases are stage dirs WORKDIR/width/phase<p>, resumable."""
    phases = progressive_phases(settings.width_mults)
    source, summaries = "rewire", []
    for number, widths in enumerate(phases, 1):
        phase = f"width/phase{number}"
        if number > 1:
            source = _rewired_start(settings, data, runtime, source, f"{phase}/start")
        if not is_complete(settings, phase):
            keras.utils.set_random_seed(_stage_seed(settings, "width") + number)
            summary = _train_grid(settings, data, runtime, phase, source, "rewire", widths,
                                  (1.0,), settings.width_lambdas,
                                  settings.width_epochs / len(phases))
            _finish(settings, phase, summary, runtime)
            runtime.barrier()
        summaries.append({"widths": list(widths), "rewired_before": number > 1})
        source = phase
    student = _load(settings.stage_dir(source), data, runtime)
    _save(student, settings, data, "width", runtime)
    return {"phases": summaries, "dev_full": _dev_metrics(student, data)}


def run_depth(settings, data, runtime):
    """Stage 1 of the depth-first order (paper Table 6), DynaBERT_D: the fixed, full-size
    rewired teacher distilled into every depth at full width (stage 1's epochs, lambdas)."""
    return _train_grid(settings, data, runtime, "depth", "rewire", "rewire", (1.0,),
                       settings.depth_mults, settings.width_lambdas, settings.width_epochs)


def run_width_depth(settings, data, runtime):
    """Stage 2, DynaBERT: DynaBERT_w (at the student's width, by default) distilled into every
    cell. With `direct`, the rewired teacher is the start and the teacher (paper Table 5);
    with first_stage=depth, DynaBERT_D, each cell taught at its own depth (Table 6)."""
    source = "rewire" if settings.direct else settings.first_stage
    return _train_grid(settings, data, runtime, "width_depth", source, source, settings.width_mults,
                       settings.depth_mults, settings.width_depth_lambdas,
                       settings.width_depth_epochs, teacher_width=settings.teacher_width)


def run_finetune(settings, data, runtime):
    """Optional: label loss over the whole grid, starting from DynaBERT."""
    return _train_grid(settings, data, runtime, "finetune", "width_depth", None, settings.width_mults,
                       settings.depth_mults, (1.0, 0.0), settings.finetune_epochs)


def _separate_start(settings, data, runtime, index):
    """Where 'separate' cell `index` starts (`--separate_init`): the pretrained checkpoint,
    or with --random_init the random weights the teacher started from, of which the cell
    keeps the leading heads, neurons and layers (paper Table 3); or the fine-tuned teacher.
    Seeded so that a cell starts alike whichever cells ran before it in the process."""
    if settings.separate_init == "teacher":
        keras.utils.set_random_seed(_stage_seed(settings, "separate") + index)
        return _load(_require(settings, "teacher"), data, runtime)
    keras.utils.set_random_seed(_stage_seed(settings, "teacher"))  # as the teacher's start
    model = _initial_model(settings, data, runtime)
    keras.utils.set_random_seed(_stage_seed(settings, "separate") + index)
    return model


def run_separate(settings, data, runtime):
    """Baseline (paper Table 3, "separate network"): every cell started from the pretrained
    checkpoint (or, with --separate_init=teacher, sliced out of the un-rewired teacher) and
    fine-tuned alone on the labels. Writes WORKDIR/eval_grid_separate.json."""
    cells = {}
    for index, cell in enumerate(settings.grid):
        width_mult, depth_mult, hidden_mult = grid_lib.cell_mults(cell)
        name = grid_lib.cell_name(*cell)
        cell_dir = os.path.join(settings.stage_dir("separate"), name)
        done = os.path.join(cell_dir, layout.STAGE_SUMMARY)
        if os.path.isfile(done):
            cells[name] = evaluation.read_grid(done)
            continue
        print(f"[separate] {name}")
        student = _separate_start(settings, data, runtime, index)
        trainer = _grid_trainer(runtime, student, None, width_mults=(width_mult,),
                                depth_mults=(depth_mult,), loss_mode="labels",
                                hidden_mults=(hidden_mult,))
        _fit(trainer, settings, data, runtime, cell_dir, settings.separate_epochs)
        cells[name] = evaluation.evaluate_grid(student, data.dev_sets, [cell],
                                               settings.max_seq_length,
                                               test_sets=data.test_sets)[name]
        if runtime.is_chief:
            evaluation.write_grid(done, cells[name])
        del student, trainer
        keras.utils.clear_session(free_memory=True)  # twelve models in one stage
    grid = {"task": data.task.name, "model": "separate",
            "primary_metric": data.task.primary_metric, "cells": cells}
    if runtime.is_chief:
        evaluation.write_grid(os.path.join(settings.workdir, "eval_grid_separate.json"), grid)
    return {"mean_dev": evaluation.mean_metric(cells, data.task.primary_metric)}


def _candidates(settings):
    """The models `evaluate` chooses between, most trained first."""
    for group in (("width_depth", "finetune"), ("width", "depth"), ("rewire",), ("teacher",)):
        found = [stage for stage in group if is_complete(settings, stage)]
        if found:
            return found
    raise FileNotFoundError(f"nothing to evaluate in {settings.workdir}: no stage is complete")


def install_final(settings, chosen):
    """WORKDIR/final becomes a copy of stage `chosen`'s model dir: built beside it under a
    temporary name and swapped in by rename (core/files.atomic_directory), so a full disk
    leaves the previous final/ as it was and raises one line naming the file."""
    with files.atomic_directory(os.path.join(settings.workdir, layout.FINAL)) as staging:
        files.copy_tree(settings.stage_dir(chosen), staging,
                        ignore=("checkpoints", "logs", layout.STAGE_SUMMARY))


def run_evaluate(settings, data, runtime):
    grids = {}
    for stage in _candidates(settings):
        model = _load(settings.stage_dir(stage), data, runtime)
        print(f"evaluating {stage} over {len(settings.grid)} cells")
        cells = evaluation.evaluate_grid(
            model, data.dev_sets, settings.grid, settings.max_seq_length,
            test_sets=data.test_sets,
            progress=lambda name, entry: print(f"  {name}: {entry['metrics']}"))
        grids[stage] = {"task": data.task.name, "model": stage,
                        "primary_metric": data.task.primary_metric, "cells": cells}
        if runtime.is_chief:
            evaluation.write_grid(os.path.join(settings.workdir, f"eval_grid_{stage}.json"),
                              grids[stage])
    metric = data.task.primary_metric
    means = {stage: evaluation.mean_metric(grid["cells"], metric) for stage, grid in grids.items()}
    chosen = max(means, key=means.get)
    grid = {**grids[chosen], "mean_dev": means, "chosen_because":
            f"highest mean dev {metric} over the grid among {sorted(means)}"}
    if not runtime.is_chief:
        return {"chosen": chosen, "mean_dev": means}
    install_final(settings, chosen)
    evaluation.write_grid(os.path.join(settings.workdir, layout.EVAL_GRID), grid)
    print(f"kept {chosen} (mean dev {metric}: "
          + ", ".join(f"{s} {100 * m:.2f}" for s, m in means.items()) + ")")
    for key in ("metrics", "test_metrics"):
        if all(key in cell for cell in grid["cells"].values()):
            print(evaluation.format_table(grid, metric, key))
            plots.grid_heatmap(grid, metric, os.path.join(settings.workdir,
                                                          f"eval_grid_{key}.png"), key=key)
    return {"chosen": chosen, "mean_dev": means}


# Each stage's function, in the order of the pipeline table (train/pipeline.py).
RUNNERS = pipeline.runners({
    "teacher": run_teacher, "rewire": run_rewire, "augment": augment.run_augment,
    "width": run_width, "depth": run_depth, "width_depth": run_width_depth,
    "finetune": run_finetune, "evaluate": run_evaluate, "separate": run_separate})


def _stage_seed(settings, stage):
    """Each stage starts from its own seed (`pipeline.stage_seed`: --seed plus the offset
    the pipeline table records for its name), so a resumed stage draws the same initial
    weights and dropout seeds whichever stages ran before it in the process."""
    return pipeline.stage_seed(settings.seed, stage)


# Stages that train nothing run float32 whatever --precision says: evaluation reads the
# float32 weights as exports do; augmentation only reads embeddings.
FLOAT32_STAGES = ("augment", "evaluate")


def stage_policy(settings, stage):
    """The Keras dtype policy `stage` builds its models under."""
    return "float32" if stage in FLOAT32_STAGES else settings.precision


def run_stages(settings, data, stages, runtime=None):
    """Runs `stages` in pipeline order, skipping complete ones; returns their summaries.

    Args:
      runtime: train/runtime.py `Runtime` (default: one process, the default strategy).
    """
    runtime = runtime or Runtime.create("none")
    tf.config.run_functions_eagerly(settings.run_eagerly)
    summaries = {}
    for stage in stages:
        if stage != "evaluate" and is_complete(settings, stage):
            print(f"[{stage}] complete in {settings.stage_dir(stage)}, skipped")
            continue
        print(f"[{stage}] running -> {settings.stage_dir(stage)}")
        os.makedirs(settings.stage_dir(stage), exist_ok=True)
        keras.utils.set_random_seed(_stage_seed(settings, stage))
        start = time.time()
        stage_precision = stage_policy(settings, stage)
        with precision.policy(stage_precision):
            summary = {**RUNNERS[stage](settings, data, runtime),
                       "wall_seconds": round(time.time() - start),
                       "precision": stage_precision}
        if runtime.kind != "none":
            summary["replicas"] = runtime.num_replicas
        _finish(settings, stage, summary, runtime)
        runtime.barrier()  # the next stage may read this one's outputs
        summaries[stage] = summary
        print(f"[{stage}] done in {summary['wall_seconds']} s: "
              + json.dumps({k: v for k, v in summary.items() if k != "wall_seconds"}))
    return summaries
