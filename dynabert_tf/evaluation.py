"""Evaluate a DynaBERT over its width x depth grid: metrics, #params and FLOPs per cell.

The grid json (`WORKDIR/eval_grid.json`) looks like

    {"task": "rt_polarity", "model": "width_depth", "primary_metric": "accuracy",
     "cells": {"w1.00_d1.00": {"width_mult": 1.0, "depth_mult": 1.0,
                               "metrics": {"accuracy": 0.87}, "test_metrics": {...},
                               "params": 22713216, "flops": 2898264064}, ...}}

With hidden-size elasticity on, a cell at hidden_mult != 1 is named `w0.50_d0.75_h0.75` and
its entry adds "hidden_mult" and "hidden_size" (the kept units); cells at hidden_mult 1 are
written exactly as without it.
"""

import dataclasses
import math
import typing

import numpy as np
import tensorflow as tf

from dynabert_tf.elastic import cost
from dynabert_tf.core import grid as grid_lib
from dynabert_tf.core import files
from dynabert_tf.models import config as model_config
from dynabert_tf.tasks import metrics as metrics_lib

INPUT_NAMES = model_config.INPUT_NAMES
FEATURE_SPEC = {name: tf.TensorSpec([None, None], tf.int32) for name in INPUT_NAMES}


@dataclasses.dataclass(frozen=True)
class EvalSet:
    """One split to evaluate: batches of (features, references) and how to score them.

    `score(outputs, references)` gets the head's outputs over the whole split
    ({output name: array [n, ...]}) and the references concatenated the same way (labels, or
    a span task's feature indices) and returns {metric name: float}.
    """

    dataset: tf.data.Dataset
    score: typing.Callable

    @classmethod
    def labelled(cls, task, dataset):
        """A classification / regression split scored by `tasks.metrics.compute_metrics`."""
        return cls(dataset, lambda outputs, labels: metrics_lib.compute_metrics(
            task, outputs["logits"], labels))


def cell_forward(model, width_mult=1.0, depth_mult=1.0, hidden_mult=1.0):
    """One traced inference function of a cell, for inputs of any batch size and length:
    features -> {output name: tensor}."""
    names = model.head.output_names

    def forward(features):
        outputs = model(features, width_mult=width_mult, depth_mult=depth_mult,
                        training=False, return_dict=True, hidden_mult=hidden_mult)
        return {name: outputs[name] for name in names}

    return tf.function(forward, input_signature=[FEATURE_SPEC])


def predict(forward, dataset):
    """Runs `forward` (see `cell_forward`) over `dataset` of (features, references)
    -> ({output name: array [n, ...]}, references concatenated along the batch)."""
    outputs, references = [], []
    for features, batch_references in dataset:
        batch = forward({k: tf.cast(features[k], tf.int32) for k in INPUT_NAMES})
        outputs.append({name: value.numpy() for name, value in batch.items()})
        references.append(tf.nest.map_structure(np.asarray, batch_references))
    concat = lambda *parts: np.concatenate(parts)
    return tf.nest.map_structure(concat, *outputs), tf.nest.map_structure(concat, *references)


def evaluate_cell(model, eval_sets, width_mult=1.0, depth_mult=1.0, forward=None, cell=None):
    """Metrics of one cell on each named `EvalSet` (e.g. {"dev": ...}); keys gain a suffix
    for every set after the first (MNLI: `accuracy`, `accuracy_dev_mismatched`).

    Raises ValueError naming the cell (`cell`, else its multipliers), the split and the metric
    when a metric is not a finite number: NaN has no place in the grid json (strict JSON)
    and would win or lose every comparison at random."""
    forward = forward or cell_forward(model, width_mult, depth_mult)
    cell = cell or grid_lib.cell_name(width_mult, depth_mult)
    results = {}
    for i, (split, eval_set) in enumerate(eval_sets.items()):
        outputs, references = predict(forward, eval_set.dataset)
        values = eval_set.score(outputs, references)
        _check_finite(values, outputs, f"cell {cell}, {split}")
        suffix = "" if i == 0 else f"_{split}"
        results.update({f"{name}{suffix}": value for name, value in values.items()})
    return results


def _check_finite(metrics, outputs, where):
    for name, value in metrics.items():
        if not math.isfinite(value):
            finite = all(np.all(np.isfinite(v)) for v in outputs.values()
                         if np.issubdtype(np.asarray(v).dtype, np.floating))
            why = ("" if finite else
                   "; the model's outputs are not finite (weights diverged or not loaded?)")
            raise ValueError(f"{where}: metric {name} is {value}, not a finite number{why}")


def evaluate_grid(model, dev_sets, cells, seq_len=128, test_sets=None, progress=None):
    """Evaluates every cell ((width_mult, depth_mult[, hidden_mult]), `grid.cell_key`) in
    `cells`; returns the `cells` dict of the grid json. `test_sets` (labelled test splits,
    when the task has them) adds `test_metrics`."""
    cfg, num_outputs = model.bert_config, model.num_outputs
    grid = {}
    for cell in cells:
        width_mult, depth_mult, hidden_mult = grid_lib.cell_mults(cell)
        forward = cell_forward(model, width_mult, depth_mult, hidden_mult)  # traced per cell
        name = grid_lib.cell_name(width_mult, depth_mult, hidden_mult)
        entry = {"width_mult": width_mult, "depth_mult": depth_mult}
        if hidden_mult != 1.0:
            entry.update(hidden_mult=hidden_mult,
                         hidden_size=cost.kept_hidden(cfg, hidden_mult))
        entry.update({
            "metrics": evaluate_cell(model, dev_sets, forward=forward, cell=name),
            "params": cost.count_params(cfg, width_mult, depth_mult, num_outputs,
                                        hidden_mult=hidden_mult),
            "flops": cost.count_flops(cfg, width_mult, depth_mult, seq_len, num_outputs,
                                      hidden_mult=hidden_mult),
        })
        if test_sets:
            entry["test_metrics"] = evaluate_cell(model, test_sets, forward=forward, cell=name)
        grid[name] = entry
        if progress is not None:
            progress(name, entry)
    return grid


def mean_metric(cells, metric, key="metrics"):
    """Mean of one metric over the grid's cells."""
    return float(np.mean([cell[key][metric] for cell in cells.values()]))


def write_grid(path, grid):
    files.write_json(path, grid)


def read_grid(path):
    return files.read_json(path, "evaluation grid")


def format_table(grid, metric, key="metrics"):
    """The paper's Table 1 layout: rows width_mult, columns depth_mult, one metric; with
    hidden-size cells, one such block per hidden_mult (largest first), each headed by it."""
    cells = grid["cells"]
    widths = sorted({c["width_mult"] for c in cells.values()}, reverse=True)
    depths = sorted({c["depth_mult"] for c in cells.values()}, reverse=True)
    hiddens = sorted({c.get("hidden_mult", 1.0) for c in cells.values()}, reverse=True)
    lines = [f"{key.replace('_', ' ')}: {metric}"]
    for h in hiddens:
        if hiddens != [1.0]:
            lines.append(f"m_h = {h:.2f}")
        lines.append("m_w \\ m_d " + "".join(f"{d:>9.2f}" for d in depths))
        for w in widths:
            row = []
            for d in depths:
                cell = cells.get(grid_lib.cell_name(w, d, h))
                row.append(f"{100 * cell[key][metric]:>9.2f}" if cell and key in cell else
                           f"{'-':>9}")
            lines.append(f"{w:<10.2f}" + "".join(row))
    return "\n".join(lines)
