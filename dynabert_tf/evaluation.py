"""Evaluate a DynaBERT over its width x depth grid: metrics, #params and FLOPs per cell.

The grid json (`WORKDIR/eval_grid.json`) looks like

    {"task": "rt_polarity", "model": "width_depth", "primary_metric": "accuracy",
     "cells": {"w1.00_d1.00": {"width_mult": 1.0, "depth_mult": 1.0,
                               "metrics": {"accuracy": 0.87}, "test_metrics": {...},
                               "params": 22713216, "flops": 2898264064}, ...}}
"""

import json
import os

import numpy as np
import tensorflow as tf

from dynabert_tf import config as config_lib
from dynabert_tf import cost, metrics as metrics_lib
from dynabert_tf.model import INPUT_NAMES

FEATURE_SPEC = {name: tf.TensorSpec([None, None], tf.int32) for name in INPUT_NAMES}


def cell_forward(classifier, width_mult=1.0, depth_mult=1.0):
    """One traced inference function of a cell, for inputs of any batch size and length."""
    return tf.function(
        lambda features: classifier(features, width_mult=width_mult, depth_mult=depth_mult,
                                    training=False),
        input_signature=[FEATURE_SPEC])


def predict(forward, dataset):
    """Runs `forward` (see `cell_forward`) over `dataset` of (features, labels)
    -> (logits [n, classes], labels [n])."""
    logits, labels = [], []
    for features, batch_labels in dataset:
        logits.append(forward({k: tf.cast(features[k], tf.int32) for k in INPUT_NAMES}).numpy())
        labels.append(batch_labels.numpy())
    return np.concatenate(logits), np.concatenate(labels)


def evaluate_cell(classifier, task, datasets, width_mult=1.0, depth_mult=1.0, forward=None):
    """Metrics of one cell on each named dataset (e.g. {"dev": ds}); keys gain a suffix for
    every dataset after the first (MNLI: `accuracy`, `accuracy_dev_mismatched`)."""
    forward = forward or cell_forward(classifier, width_mult, depth_mult)
    results = {}
    for i, (split, dataset) in enumerate(datasets.items()):
        logits, labels = predict(forward, dataset)
        values = metrics_lib.compute_metrics(task, logits, labels)
        suffix = "" if i == 0 else f"_{split}"
        results.update({f"{name}{suffix}": value for name, value in values.items()})
    return results


def evaluate_grid(classifier, task, dev_datasets, cells, seq_len=128, test_datasets=None,
                  progress=None):
    """Evaluates every (width_mult, depth_mult) in `cells`; returns the `cells` dict of the grid
    json. `test_datasets` (labelled test splits, when the task has them) adds `test_metrics`."""
    cfg, num_classes = classifier.bert_config, classifier.num_classes
    grid = {}
    for width_mult, depth_mult in cells:
        forward = cell_forward(classifier, width_mult, depth_mult)  # traced once per cell
        entry = {
            "width_mult": width_mult, "depth_mult": depth_mult,
            "metrics": evaluate_cell(classifier, task, dev_datasets, forward=forward),
            "params": cost.count_params(cfg, width_mult, depth_mult, num_classes),
            "flops": cost.count_flops(cfg, width_mult, depth_mult, seq_len, num_classes),
        }
        if test_datasets:
            entry["test_metrics"] = evaluate_cell(classifier, task, test_datasets,
                                                  forward=forward)
        grid[config_lib.cell_name(width_mult, depth_mult)] = entry
        if progress is not None:
            progress(config_lib.cell_name(width_mult, depth_mult), entry)
    return grid


def mean_metric(cells, metric, key="metrics"):
    """Mean of one metric over the grid's cells."""
    return float(np.mean([cell[key][metric] for cell in cells.values()]))


def write_grid(path, grid):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(grid, f, indent=2)
    os.replace(tmp, path)


def read_grid(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no evaluation grid at {path}")
    with open(path) as f:
        return json.load(f)


def format_table(grid, metric, key="metrics"):
    """The paper's Table 1 layout: rows width_mult, columns depth_mult, one metric."""
    cells = grid["cells"]
    widths = sorted({c["width_mult"] for c in cells.values()}, reverse=True)
    depths = sorted({c["depth_mult"] for c in cells.values()}, reverse=True)
    lines = [f"{key.replace('_', ' ')}: {metric}",
             "m_w \\ m_d " + "".join(f"{d:>9.2f}" for d in depths)]
    for w in widths:
        row = []
        for d in depths:
            cell = cells.get(config_lib.cell_name(w, d))
            row.append(f"{100 * cell[key][metric]:>9.2f}" if cell and key in cell else
                       f"{'-':>9}")
        lines.append(f"{w:<10.2f}" + "".join(row))
    return "\n".join(lines)
