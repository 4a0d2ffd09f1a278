"""Hidden-size elasticity (`hidden_mult`): slicing equals masking, hidden rewiring keeps the
function, extraction and cost agree with the sliced call, stage 1 trains every (width, hidden)
pair, and with the axis off nothing changes (names, grids, settings)."""

import numpy as np
import pytest
import tensorflow as tf

from dynabert_tf import evaluation
from dynabert_tf.distillation import losses
from dynabert_tf.distillation.grid_trainer import GridTrainer
from dynabert_tf.core import grid as grid_lib
from dynabert_tf.elastic import cost, rewiring, subnetwork
from helpers import TINY, TINY_DEEP, random_inputs, tiny_classifier
from tests import model_checks

CELLS = [(1.0, 1.0, 1.0), (0.5, 0.5, 0.75), (0.75, 1.0, 0.5), (0.25, 0.75, 0.25)]


@pytest.fixture(scope="module")
def model():
    return model_checks.randomise_weights(tiny_classifier(config=TINY_DEEP, dropout=0.0))


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: grid_lib.cell_name(*c))
def test_hidden_size_slicing_equals_masking(model, cell):
    """The sliced call at (w, d, h) equals the masked full-size network
    (`model_checks.masked_reference`) on the kept units, and the masked one is exactly 0 on
    the dropped units (so nothing is lost by slicing): every hidden state, the pooled output
    and the logits."""
    model_checks.check_slice_equals_mask(model, random_inputs(vocab_size=TINY_DEEP.vocab_size),
                                         [cell], atol=1e-5, rtol=0)


def test_grid_call_equals_single_calls_across_hidden_sizes(model):
    inputs = random_inputs(vocab_size=TINY_DEEP.vocab_size)
    grid = model.call_grid(inputs, (1.0, 0.5), (1.0, 0.5), hidden_mults=(1.0, 0.75))
    assert list(grid) == [(1.0, 1.0), (1.0, 0.5), (0.5, 1.0), (0.5, 0.5),
                          (1.0, 1.0, 0.75), (1.0, 0.5, 0.75), (0.5, 1.0, 0.75), (0.5, 0.5, 0.75)]
    for cell, outputs in grid.items():
        w, d, h = grid_lib.cell_mults(cell)
        np.testing.assert_allclose(outputs["logits"].numpy(), model(
            inputs, width_mult=w, depth_mult=d, hidden_mult=h).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="hidden_mult must be in"):
        model(inputs, hidden_mult=1.5)


def test_hidden_rewiring_keeps_outputs_and_sorts_units():
    model = tiny_classifier(config=TINY_DEEP, dropout=0.0)
    inputs = random_inputs(vocab_size=TINY_DEEP.vocab_size)
    data = [(inputs, np.array([0, 1, 1]))]
    importance = rewiring.compute_importance(model, data, progress=False, hidden=True)
    assert importance["hidden"].shape == (TINY_DEEP.hidden_size,)
    assert set(rewiring.compute_importance(model, data, progress=False)) == {"head", "neuron"}
    before = {h: model(inputs, hidden_mult=h).numpy() for h in (1.0, 0.5)}
    order = rewiring.rewire(model, importance)
    assert sorted(order["hidden"]) == list(range(TINY_DEEP.hidden_size))
    np.testing.assert_allclose(model(inputs).numpy(), before[1.0], atol=1e-5)
    # The most important units now lead: the scores follow the permutation, and the kept
    # half at hidden_mult 0.5 is a different (the important) half.
    again = rewiring.compute_importance(model, data, progress=False, hidden=True)
    np.testing.assert_allclose(again["hidden"], importance["hidden"][order["hidden"]],
                               rtol=1e-3, atol=1e-9)
    assert np.all(np.diff(again["hidden"]) <= 1e-6 * again["hidden"].max())
    assert not np.allclose(model(inputs, hidden_mult=0.5).numpy(), before[0.5])


def test_importance_file_round_trip_with_hidden(tmp_path):
    importance = {"head": np.ones((2, 4)), "neuron": np.ones((2, 64)),
                  "hidden": np.arange(32.0)}
    rewiring.save_importance(tmp_path / "i.npz", importance)
    loaded = rewiring.load_importance(tmp_path / "i.npz")
    assert list(loaded["hidden_order"]) == list(range(31, -1, -1))
    rewiring.save_importance(tmp_path / "j.npz", {"head": importance["head"],
                                                  "neuron": importance["neuron"]})
    assert set(rewiring.load_importance(tmp_path / "j.npz")) == {
        "head", "neuron", "head_order", "neuron_order"}


def test_extraction_equals_sliced_call_and_round_trips(model, tmp_path):
    inputs = random_inputs(vocab_size=TINY_DEEP.vocab_size)
    cell, = model_checks.check_extracted_equals_dynamic(model, inputs, [(0.5, 0.75, 0.75)],
                                                        atol=1e-5, rtol=0).values()
    cfg = cell.bert_config
    assert (cfg.hidden_size, cfg.num_heads, cfg.head_dim, cfg.num_layers) == (24, 2, 8, 3)
    assert cfg.attention_head_dim == 8  # 2 heads of 8 is not 24: written explicitly
    expected = model(inputs, width_mult=0.5, depth_mult=0.75, hidden_mult=0.75).numpy()
    _, reloaded = model_checks.check_preset_round_trip(cell, inputs, tmp_path / "cell",
                                                       [(1.0, 1.0)])
    np.testing.assert_allclose(reloaded(inputs).numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: grid_lib.cell_name(*c))
def test_cost_counts_the_extracted_cell(model, cell):
    extracted = subnetwork.extract_subnetwork(model, *cell)
    params = cost.count_params(TINY_DEEP, cell[0], cell[1], 2, hidden_mult=cell[2])
    assert params == sum(int(np.prod(v.shape)) for v in extracted.weights)
    assert cost.count_flops(TINY_DEEP, cell[0], cell[1], 16, 2,
                            hidden_mult=cell[2]) == cost.count_flops(
        extracted.bert_config, 1.0, 1.0, 16, 2)
    if cell[2] < 1.0:
        assert params < cost.count_params(TINY_DEEP, cell[0], cell[1], 2)


def test_stage1_trainer_covers_hidden_pairs_and_matches_kept_teacher_units():
    student = tiny_classifier(dropout=0.0)
    teacher = tiny_classifier(dropout=0.0)
    trainer = GridTrainer(student, teacher, width_mults=(1.0, 0.5), depth_mults=(1.0,),
                          hidden_mults=(1.0, 0.5), teacher_width="full", lambda_hidden=0.1)
    assert trainer.cells == [(1.0, 1.0), (0.5, 1.0), (1.0, 1.0, 0.5), (0.5, 1.0, 0.5)]
    inputs = random_inputs()
    labels = np.array([0, 1, 1])
    total, gradients, per_cell = trainer.compute_gradients(inputs, labels)
    assert set(per_cell) == set(trainer.cells)
    # The loss of a hidden cell: logits term + MSE against the teacher's leading units.
    teacher_out = teacher(inputs, return_dict=True)
    student_out = student(inputs, width_mult=0.5, hidden_mult=0.5, return_dict=True)
    mse = sum(np.mean((s.numpy() - t.numpy()[..., :16]) ** 2) for s, t in
              zip(student_out["hidden_states"], teacher_out["hidden_states"]))
    expected = student.head.distillation_loss(student_out, teacher_out) + 0.1 * mse
    np.testing.assert_allclose(per_cell[(0.5, 1.0, 0.5)].numpy(), expected, rtol=1e-5)
    # One gradient of all cells = the gradient of the per-cell sum (unshared reference).
    unshared = GridTrainer(student, teacher, width_mults=(1.0, 0.5), depth_mults=(1.0,),
                           hidden_mults=(1.0, 0.5), teacher_width="full", lambda_hidden=0.1,
                           share_depth_prefix=False)
    total_ref, gradients_ref, _ = unshared.compute_gradients(inputs, labels)
    np.testing.assert_allclose(total.numpy(), total_ref.numpy(), rtol=1e-5)
    for g, g_ref in zip(gradients, gradients_ref):
        np.testing.assert_allclose(tf.convert_to_tensor(g).numpy(),
                                   tf.convert_to_tensor(g_ref).numpy(), atol=1e-6)
    # Token embedding columns past the largest kept hidden size of some cell still learn
    # (the full-hidden cells), the pooler's too.
    assert np.abs(tf.convert_to_tensor(gradients[0]).numpy()[:, 16:]).sum() > 0


def test_same_width_teacher_runs_at_the_students_hidden_size():
    student, teacher = tiny_classifier(dropout=0.0), tiny_classifier(dropout=0.0)
    trainer = GridTrainer(student, teacher, width_mults=(1.0, 0.5), depth_mults=(1.0, 0.5),
                          hidden_mults=(1.0, 0.75), teacher_width="same")
    outputs = trainer.teacher_outputs(random_inputs())
    assert sorted(outputs) == [(0.5, 0.75), (0.5, 1.0), (1.0, 0.75), (1.0, 1.0)]
    assert outputs[(0.5, 0.75)]["hidden_states"][0].shape[-1] == 24
    per_cell = trainer.cell_losses(random_inputs(), None, outputs)
    assert len(per_cell) == 8 and all(np.isfinite(v.numpy()) for v in per_cell.values())


def test_hidden_mse_matches_leading_teacher_units():
    student = tf.constant(np.ones((1, 2, 3), "float32"))
    teacher = tf.constant(np.concatenate([np.zeros((1, 2, 3)), 9 * np.ones((1, 2, 2))], -1),
                          tf.float32)
    assert float(losses.hidden_mse([student], [teacher])) == pytest.approx(1.0)


def test_names_grid_and_table_unchanged_when_off():
    assert grid_lib.cell_name(0.5, 0.75, 0.75) == "w0.50_d0.75_h0.75"
    assert grid_lib.cell_name(0.5, 0.75, 1.0) == "w0.50_d0.75"
    assert grid_lib.parse_cell_name("w0.50_d0.75_h0.75") == (0.5, 0.75, 0.75)
    assert grid_lib.parse_cell_name("w0.50_d0.75") == (0.5, 0.75)
    with pytest.raises(ValueError, match="bad cell name"):
        grid_lib.parse_cell_name("w0.50_d0.75_x0.75")
    assert grid_lib.grid(hidden_mults=(1.0,)) == grid_lib.grid()
    cells = grid_lib.grid((1.0, 0.5), (1.0,), (1.0, 0.5))
    assert cells == [(1.0, 1.0), (0.5, 1.0), (1.0, 1.0, 0.5), (0.5, 1.0, 0.5)]
    entries = {grid_lib.cell_name(*c): {**dict(zip(("width_mult", "depth_mult", "hidden_mult"),
                                                   grid_lib.cell_mults(c))),
                                        "metrics": {"accuracy": 0.5}} for c in cells}
    table = evaluation.format_table({"cells": entries}, "accuracy")
    assert "m_h = 1.00" in table and "m_h = 0.50" in table
    plain = {n: e for n, e in entries.items() if "_h" not in n}
    for e in plain.values():
        del e["hidden_mult"]
    assert "m_h" not in evaluation.format_table({"cells": plain}, "accuracy")


def test_settings_flag_is_off_by_default_and_rejects_other_stage1_ablations(tmp_path):
    from train.settings import Settings

    base = dict(task="rt_polarity", workdir=str(tmp_path))
    assert Settings(**base).hidden_mults == (1.0,) and not Settings(**base).hidden_on
    on = Settings(**base, hidden_mults=(1.0, 0.75))
    assert on.hidden_on and len(on.grid) == 2 * len(Settings(**base).grid)
    with pytest.raises(ValueError, match="cannot run with --width_teacher=inplace"):
        Settings(**base, hidden_mults=(1.0, 0.75), width_teacher="inplace")
    with pytest.raises(ValueError, match="hidden_mults repeats"):
        Settings(**base, hidden_mults=(0.75, 0.75))
