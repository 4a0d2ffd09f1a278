"""What an export reads of a trained model: where it is, its eval grid, its cells, labels
and metric.

`path` is a training workdir (its `final/` is the model, `eval_grid.json` beside it) or a
model directory itself (`dynabert_tf.core.layout`).
"""

import os

from dynabert_tf.core import grid as grid_lib
from dynabert_tf.core import layout
from dynabert_tf.presets import hf_config
from mobile.errors import ExportError, read_json_object


def resolve_model_dir(path):
    """(model dir holding config.json, training workdir or None); ExportError naming both
    places looked at if `path` is neither."""
    try:
        return layout.resolve_model_dir(path)
    except FileNotFoundError as e:
        raise ExportError(str(e)) from None


def read_eval_grid(model_dir, workdir=None):
    """WORKDIR/eval_grid.json (or one beside / above the model dir), or None."""
    for directory in (workdir, model_dir, os.path.dirname(os.path.abspath(model_dir))):
        path = os.path.join(directory or "", layout.EVAL_GRID)
        if directory and os.path.isfile(path):
            grid = read_json_object(path, layout.EVAL_GRID)
            cells = grid.get("cells") or {}
            if not isinstance(cells, dict) or not all(
                    isinstance(c, dict) and _is_multiplier(c.get("width_mult"))
                    and _is_multiplier(c.get("depth_mult"))
                    and _is_multiplier(c.get("hidden_mult", 1.0)) for c in cells.values()):
                raise ExportError(f"{path}: 'cells' must map cell names to entries with "
                                  f"width_mult and depth_mult (and optional hidden_mult) in "
                                  f"(0, 1]")
            return grid
    return None


def _is_multiplier(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1


def read_config(model_dir):
    """The model dir's config.json (Hugging Face style) as a dict; ExportError naming the
    file and the key where its architecture cannot be built (checked here, without
    TensorFlow, before anything is locked or loaded; a keras-hub preset's is checked when
    the model is built)."""
    path = os.path.join(model_dir, layout.CONFIG)
    config = read_json_object(path, layout.CONFIG)
    if "class_name" not in config:
        try:
            hf_config.from_hf_dict(config)
        except ValueError as e:
            raise ExportError(f"{path}: {e}") from None
    return config


def task_of(hf_config, eval_grid):
    """The model's task: config.json's finetuning_task, else the eval grid's, else None."""
    return hf_config.get("finetuning_task") or (eval_grid or {}).get("task")


def task_metric(task):
    """The task registry's primary metric, or None (unknown task / no data module)."""
    try:
        from dynabert_tf import data
        return data.get_task(task).primary_metric
    except Exception:  # noqa: BLE001 - optional information
        return None


def primary_metric(eval_grid, task):
    """The eval grid's primary metric, else the task registry's, else None."""
    return (eval_grid or {}).get("primary_metric") or task_metric(task)


def grid_cells(eval_grid=None):
    """The cells a model has (`grid.cell_key` tuples): those of its eval grid when known,
    else the standard grid."""
    if eval_grid and eval_grid.get("cells"):
        cells = [grid_lib.cell_key(float(c["width_mult"]), float(c["depth_mult"]),
                                   float(c.get("hidden_mult", 1.0)))
                 for c in eval_grid["cells"].values()]
        return sorted(cells, key=lambda cell: tuple(
            -m for m in reversed(grid_lib.cell_mults(cell))))
    return grid_lib.grid()


def parse_cells(spec, available):
    """'all' or 'w0.50_d0.75,w1.00_d1.00' -> [(w, d), ...] in grid order ((w, d, h) for a
    hidden-size cell such as 'w0.50_d0.75_h0.75'); ExportError if bad."""
    spec = (spec or "all").strip()
    if spec == "all":
        return list(available)
    names = {grid_lib.cell_name(*cell): cell for cell in available}
    chosen = []
    for name in (part.strip() for part in spec.split(",")):
        try:
            parsed = grid_lib.parse_cell_name(name)
        except ValueError:
            parsed = None
        if parsed is None or grid_lib.cell_name(*parsed) != name:
            raise ExportError(f"bad cell name {name!r} in --cells; expected 'all' or names "
                              f"like 'w0.50_d0.75' (or 'w0.50_d0.75_h0.75')")
        if name not in names:
            raise ExportError(f"cell {name} is not in the model's grid: {', '.join(names)}")
        chosen.append(names[name])
    return [cell for cell in available if cell in chosen]


def labels_of(hf_config, num_classes, task=None):
    """Class names: config.json's id2label (LABEL_i where it names none); where those are
    the task's label codes ("0", "1") or LABEL_i, the task's readable names
    (`Task.display_labels`: "negative", "positive" for rt_polarity, GLUE's names)."""
    id2label = hf_config.get("id2label") or {}
    names = [str(id2label.get(str(i), id2label.get(i, f"LABEL_{i}")))
             for i in range(num_classes)]
    readable = task_labels(task)
    if readable and len(readable) == num_classes and (
            names == list(task_codes(task)) or names == [f"LABEL_{i}" for i in range(
                num_classes)]):
        return list(readable)
    return names


def _task(task):
    try:
        from dynabert_tf import data
        return data.get_task(task) if task else None
    except Exception:  # noqa: BLE001 - an unknown task keeps config.json's names
        return None


def task_labels(task):
    """The task's readable class names, or None."""
    found = _task(task)
    return tuple(found.display_labels) if found and found.display_labels else None


def task_codes(task):
    """The task's label strings as its data spells them, or ()."""
    found = _task(task)
    return tuple(found.label_names or ()) if found else ()
