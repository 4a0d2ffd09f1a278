"""What a search needs, checked before TensorFlow is imported and anything is exported or
timed: the settings, the evolution's sizes, the output directories, and the model dir (its
config.json, eval grid and task). `run_search` loads the model only after these pass.

    preflight.check_settings(settings)                      # ExportError naming the flag
    model_path, workdir, eval_grid, task = preflight.check_inputs(model_dir, output_dir,
                                                                  settings)
"""

import os

import mobile.export.model_dir as model_dir_lib
from mobile.errors import ExportError


def check_settings(settings):
    """ExportError naming the first bad setting of a `SearchSettings`: its own `check`, then
    the evolution's sizes (as `evolution.evolve` needs them)."""
    settings.check()
    if settings.population < 1:
        raise ExportError(f"--population must be at least 1, got {settings.population}")
    if not 1 <= settings.parents <= settings.population:
        raise ExportError(f"--parents must be in 1..--population ({settings.population}), got "
                          f"{settings.parents}")
    for name in ("mutations", "crossovers", "generations"):
        if getattr(settings, name) < 0:
            raise ExportError(f"--{name} must be at least 0, got {getattr(settings, name)}")


def check_inputs(model_dir, output_dir, settings):
    """(model dir, training workdir or None, eval grid or None, task) of a search into
    `output_dir`; ExportError naming the first output that is a file, a model dir without
    config.json, an unreadable eval grid or config.json, or (unless `measure_only`) a model
    without a classification or regression task."""
    for flag, path in (("output_dir", output_dir), ("latency_dir", settings.latency_dir)):
        if path and os.path.exists(path) and not os.path.isdir(path):
            raise ExportError(f"--{flag} {path} is a file, not a directory")
    model_path, workdir = model_dir_lib.resolve_model_dir(model_dir)
    eval_grid = model_dir_lib.read_eval_grid(model_path, workdir)
    task = model_dir_lib.task_of(model_dir_lib.read_config(model_path), eval_grid)
    if settings.measure_only:
        return model_path, workdir, eval_grid, task
    if not task:
        raise ExportError(f"{model_path} names no task (config.json finetuning_task or "
                          f"eval_grid.json task); the search needs its dev split")
    from dynabert_tf import data  # no TensorFlow: the task registry

    try:
        kind = data.get_task(task).head_kind
    except ValueError as e:
        raise ExportError(f"{model_path}: {e}") from None
    if kind not in ("classification", "regression"):
        raise ExportError(f"the search scores classification or regression tasks, not {task} "
                          f"({kind}); use --measure_only for its latency model")
    return model_path, workdir, eval_grid, task
