"""Grid evaluation: per-cell metrics equal direct predictions; params/FLOPs; table; heat-map."""

import numpy as np
import tensorflow as tf

from dynabert_tf import evaluation, plots
from dynabert_tf.core import grid as grid_lib
from dynabert_tf.elastic import cost
from dynabert_tf import data
from tests.helpers import TINY, random_inputs, tiny_classifier


def _dataset(batch_size=4):
    inputs = random_inputs(batch_size=12, seq_len=6, seed=5)
    labels = (inputs["token_ids"][:, 1] % 2).astype("int32")
    return tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(batch_size), inputs, labels


def test_grid_metrics_match_direct_predictions():
    model = tiny_classifier()
    dataset, inputs, labels = _dataset()
    task = data.get_task("sst2")
    cells = [(1.0, 1.0), (0.5, 0.5)]
    eval_set = evaluation.EvalSet.labelled(task, dataset)
    grid = evaluation.evaluate_grid(model, {"dev": eval_set}, cells, seq_len=64,
                                    test_sets={"test": eval_set})
    assert sorted(grid) == sorted(grid_lib.cell_name(*c) for c in cells)
    for (w, d) in cells:
        entry = grid[grid_lib.cell_name(w, d)]
        predicted = np.argmax(model(inputs, width_mult=w, depth_mult=d), axis=-1)
        assert entry["metrics"]["accuracy"] == np.mean(predicted == labels)
        assert entry["test_metrics"] == entry["metrics"]
        assert entry["params"] == cost.count_params(TINY, w, d, 2)
        assert entry["flops"] == cost.count_flops(TINY, w, d, 64, 2)


def test_second_dataset_metrics_get_its_suffix():
    dataset, _, _ = _dataset()
    eval_set = evaluation.EvalSet.labelled(data.get_task("sst2"), dataset)
    metrics = evaluation.evaluate_cell(tiny_classifier(),
                                       {"dev_matched": eval_set, "dev_mismatched": eval_set})
    assert set(metrics) == {"accuracy", "accuracy_dev_mismatched"}


def test_table_and_heatmap(tmp_path):
    cells = {grid_lib.cell_name(w, d): {"width_mult": w, "depth_mult": d,
                                      "metrics": {"accuracy": w * d}}
             for w, d in grid_lib.grid()}
    grid = {"task": "sst2", "cells": cells}
    table = evaluation.format_table(grid, "accuracy").splitlines()
    assert table[1].split()[-3:] == ["1.00", "0.75", "0.50"]
    assert table[2].split() == ["1.00", "100.00", "75.00", "50.00"]
    assert table[-1].split() == ["0.25", "25.00", "18.75", "12.50"]
    assert evaluation.mean_metric(cells, "accuracy") == np.mean([w * d for w, d in grid_lib.grid()])
    path = plots.grid_heatmap(grid, "accuracy", str(tmp_path / "grid.png"))
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
