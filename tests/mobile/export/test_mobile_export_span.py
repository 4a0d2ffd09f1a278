"""Span-extraction cells on the mobile path: two outputs per file, parity with Keras, F1 in
the manifest and the selector."""

import json
import os

import keras
import numpy as np
import pytest

from ai_edge_litert.interpreter import Interpreter
from dynabert_tf.elastic import cost
from dynabert_tf.core import grid as grid_lib
from dynabert_tf.io import checkpoint
from dynabert_tf.models.task_model import DynaBertTaskModel
from dynabert_tf.tasks import heads
from mobile import export as export_lib
from mobile import selection
from tests.helpers import TINY_DEEP, random_inputs, tiny_backbone

SEQ_LEN = 16
CELLS = "w1.00_d1.00,w0.50_d0.75"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A tiny span model saved as a run's `final/` with an EM/F1 evaluation grid."""
    root = str(tmp_path_factory.mktemp("span_work"))
    keras.utils.set_random_seed(0)
    model = DynaBertTaskModel(tiny_backbone(TINY_DEEP), heads.SpanHead())
    model.head.dense.kernel.assign(np.random.default_rng(0).normal(0, 1.0, (32, 2)))
    checkpoint.save_task_model(model, os.path.join(root, "final"),
                               extra_config={"finetuning_task": "squad_v1"})
    cells = {grid_lib.cell_name(w, d): {
        "width_mult": w, "depth_mult": d,
        "metrics": {"exact_match": 0.5 - 0.01 * i, "f1": 0.6 - 0.01 * i},
        "params": cost.count_params(TINY_DEEP, w, d, 2),
        "flops": cost.count_flops(TINY_DEEP, w, d, SEQ_LEN, 2)}
        for i, (w, d) in enumerate(grid_lib.grid())}
    with open(os.path.join(root, "eval_grid.json"), "w") as f:
        json.dump({"task": "squad_v1", "model": "width_depth", "primary_metric": "f1",
                   "cells": cells}, f)
    return root


@pytest.fixture(scope="module")
def exported(workdir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("span_out"))
    return out, export_lib.export_model(workdir, out, "none", seq_len=SEQ_LEN, cells=CELLS,
                                        progress=False)


def test_span_cells_have_start_and_end_outputs_equal_to_keras(workdir, exported):
    out, manifest = exported
    model = checkpoint.load_task_model(os.path.join(workdir, "final"))
    assert model.head.kind == "span"
    assert manifest["primary_metric"] == "f1" and manifest["labels"] == []
    assert [e["cell"] for e in manifest["cells"]] == CELLS.split(",")
    for entry in manifest["cells"]:
        assert sorted(o["name"] for o in entry["outputs"]) == ["end_logits", "start_logits"]
        # BertQuestionAnswerer packs 384 tokens: a file of 16 is LiteRT's alone.
        assert entry["clients"] == ["litert"]
        runner = Interpreter(model_path=os.path.join(out, entry["file"])).get_signature_runner(
            "serving_default")
        for seed in range(8):
            x = random_inputs(batch_size=1, seq_len=SEQ_LEN, seed=seed, pad_last=seed % 5)
            got = runner(**x)
            want = model(x, width_mult=entry["width_mult"], depth_mult=entry["depth_mult"])
            for name in ("start_logits", "end_logits"):
                assert got[name].shape == (1, SEQ_LEN)
                np.testing.assert_allclose(got[name], want[name], atol=1e-4)


def test_selector_ranks_span_cells_by_f1(exported):
    _, manifest = exported
    assert selection.primary_metric(manifest) == "f1"
    chosen = selection.select_cell(manifest)
    assert chosen["cell"] == "w1.00_d1.00" and chosen["metrics"]["f1"] == pytest.approx(0.6)
    smaller = selection.select_cell(manifest, max_bytes=manifest["cells"][1]["bytes"])
    assert smaller["cell"] == "w0.50_d0.75"


def test_question_answerer_is_listed_only_for_the_384_token_files_it_opens():
    # Measured by benchmarks/question_answerer.py (BENCHMARKS.md §11).
    from mobile.export import client_metadata

    def clients(quantization, seq_len, standard_metadata=True):
        return client_metadata.per_cell_clients("span", "both", quantization,
                                                standard_metadata, seq_len)

    qa = "tflite_task_bert_question_answerer"
    assert qa in clients("none", 384) and qa in clients("float16", 384)
    assert qa not in clients("dynamic_range", 384)  # FULLY_CONNECTED v12: too new for it
    assert qa not in clients("none", 128) and qa not in clients("none", 384, False)

