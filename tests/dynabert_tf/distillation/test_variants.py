"""The ablation trainers (distillation/variants.py) against hand-written references."""

import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from dynabert_tf.distillation import losses, variants
from dynabert_tf.distillation.grid_trainer import GridTrainer
from dynabert_tf.models.config import BertConfig
from dynabert_tf.models.task_model import DynaBertTaskModel
from dynabert_tf.tasks import heads
from tests.helpers import TINY, TINY_DEEP, random_inputs, tiny_backbone, tiny_classifier
from train.loop import TrainingLoop


def _data(batch_size=4, seq_len=7, seed=0):
    return random_inputs(batch_size, seq_len, seed=seed), np.arange(batch_size) % 2


def _pair(config=TINY):
    """A dropout-free student and a teacher (dropout on, run with training=False)."""
    teacher = DynaBertTaskModel(tiny_backbone(config), heads.make_head("classification", 2))
    return tiny_classifier(2, config, dropout=0.0), teacher


def _dense(gradient):
    return None if gradient is None else tf.convert_to_tensor(gradient).numpy()


def _assert_gradients_close(got, want):
    for g, w in zip(got, want):
        assert (g is None) == (w is None)
        if g is not None:
            np.testing.assert_allclose(_dense(g), _dense(w), rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------- universally slimmable

def test_sampling_keeps_the_ends_every_step_and_repeats_for_the_same_seed_and_step():
    draws = np.stack([variants.sample_head_counts(7, step, 12, (0.25, 1.0), 4).numpy()
                      for step in range(300)])
    assert draws.shape == (300, 4)
    assert (draws[:, 0] == 12).all() and (draws[:, 1] == 3).all()  # largest, smallest
    random = draws[:, 2:]
    assert random.min() >= 3 and random.max() <= 12
    assert set(random.ravel()) == set(range(3, 13))  # every whole head count comes up
    # U[.25, 1] rounded to twelfths: the interior counts 4..11 each get 1/9 of the draws.
    share = np.mean(random == 7)
    assert abs(share - 1 / 9) < 0.04, share
    again = variants.sample_head_counts(7, 123, 12, (0.25, 1.0), 4).numpy()
    np.testing.assert_array_equal(again, draws[123])  # derived from (seed, step) alone
    other_seed = np.stack([variants.sample_head_counts(8, s, 12, (0.25, 1.0), 4).numpy()
                           for s in range(20)])
    assert not np.array_equal(other_seed, draws[:20])


def _slimmable_reference(trainer, features, labels, head_counts):
    """Loss and gradient of the sampled widths, each cell a fresh forward from the teacher
    at full width (eq. 2)."""
    student, num_heads = trainer.student, trainer.student.bert_config.num_heads
    widths = [trainer.width_range[1], trainer.width_range[0],
              *(float(k) / num_heads for k in head_counts[2:])]
    teacher_out = trainer.teacher(features, width_mult=1.0, training=False, return_dict=True)
    with tf.GradientTape() as tape:
        total = 0.0
        for width in widths:
            out = student(features, width_mult=width, training=True, return_dict=True)
            total += losses.distillation_loss(student.head, out, teacher_out, 1.0,
                                              student.bert_config.num_layers, 1.0, 0.1)
    return float(total), tape.gradient(total, student.trainable_variables)


# Two heads: the random slot's branches are 1 or 2 heads (tracing stays cheap).
TWO_HEADS = BertConfig(**{**TINY.to_dict(), "num_heads": 2})
SANDWICH = (1.0, 0.75, 0.5)  # the largest, the smallest, one random width between


def test_slimmable_step_trains_the_drawn_widths():
    student, teacher = _pair(TWO_HEADS)
    trainer = variants.SlimmableGridTrainer(student, teacher, width_mults=SANDWICH,
                                            lambda_hidden=0.1)
    step = tf.Variable(0, dtype=tf.int64)
    trainer.use_sampler(step, seed=3)
    assert trainer.admissible == (0.5, 1.0) and len(trainer.cells) == 3
    features, labels = _data()
    tf.config.run_functions_eagerly(True)  # no tracing: the reference check is eager
    try:
        _check_slimmable_steps(trainer, step, features, labels)
    finally:
        tf.config.run_functions_eagerly(False)


def _check_slimmable_steps(trainer, step, features, labels):
    draws = {}
    for at in range(8):
        step.assign(at)
        draws.setdefault(int(trainer.step_head_counts()[2]), at)
    assert sorted(draws) == [1, 2]
    for at in draws.values():  # a step drawing each random width
        step.assign(at)
        counts = trainer.step_head_counts().numpy()
        total, gradients, per_cell = trainer.compute_gradients(features, labels)
        want_total, want_gradients = _slimmable_reference(trainer, features, labels, counts)
        np.testing.assert_allclose(float(total), want_total, rtol=1e-5)
        _assert_gradients_close(gradients, want_gradients)
        assert sorted(per_cell) == [(slot, 1.0) for slot in range(3)]


def _loop(state_dir, on_step=None):
    keras.utils.set_random_seed(0)
    student = tiny_classifier(config=TWO_HEADS, dropout=0.1)
    trainer = variants.SlimmableGridTrainer(student, None, width_mults=SANDWICH,
                                            loss_mode="labels")
    optimizer = keras.optimizers.Adam(1e-3)
    trainer.use_sampler(optimizer.iterations, seed=5)
    return TrainingLoop(trainer, optimizer, str(state_dir), checkpoint_every=1, verbose=0,
                        on_step=on_step)


def _epoch_dataset(epoch):
    inputs = random_inputs(batch_size=16, seq_len=6, pad_last=0, seed=7)
    labels = (inputs["token_ids"][:, 1] % 2).astype("int32")
    return (tf.data.Dataset.from_tensor_slices((inputs, labels))
            .shuffle(16, seed=epoch, reshuffle_each_iteration=False).batch(4))


def test_slimmable_training_is_one_trace_and_draws_the_same_widths_on_resume(tmp_path):
    draws = {}

    def record(step, loss):  # after step `step`, the optimizer's count is `step`
        draws[step] = tuple(unbroken.trainer.step_head_counts().numpy())  # the next draw
        if step == 3:  # checkpoint 2 is the latest: the state of a run killed here
            shutil.copytree(tmp_path / "a", tmp_path / "b")

    unbroken = _loop(tmp_path / "a", on_step=record)
    assert unbroken.fit(_epoch_dataset, 1, 4) == 4
    assert len(set(draws.values())) > 1  # the widths changed from step to step ...
    assert unbroken._train_step.experimental_get_tracing_count() == 1  # ... the trace did not
    resumed = _loop(tmp_path / "b")
    assert resumed.restore() and resumed.step == 2
    assert tuple(resumed.trainer.step_head_counts().numpy()) == draws[2]  # step 3's widths


# --------------------------------------------------------------------------------- inplace

def test_inplace_narrow_widths_distil_from_the_widest_students_stopped_outputs():
    student = tiny_classifier(2, TINY, dropout=0.0)
    trainer = variants.InplaceGridTrainer(student, width_mults=(1.0, 0.5, 0.25),
                                          lambda_logits=1.0, lambda_hidden=0.1)
    assert trainer.teacher is None and trainer.widest == (1.0, 1.0)
    features, labels = _data()
    total, gradients, per_cell = trainer.compute_gradients(features, labels)

    def reference(stop):
        with tf.GradientTape() as tape:
            widest = student(features, width_mult=1.0, training=True, return_dict=True)
            target = {k: (tf.stop_gradient if stop else tf.identity)(widest[k]) if k == "logits"
                      else [(tf.stop_gradient if stop else tf.identity)(s) for s in widest[k]]
                      for k in ("logits", "hidden_states")}
            cells = {(1.0, 1.0): student.head.label_loss(widest, labels)}
            for width in (0.5, 0.25):
                out = student(features, width_mult=width, training=True, return_dict=True)
                cells[(width, 1.0)] = losses.distillation_loss(student.head, out, target, 1.0,
                                                               TINY.num_layers, 1.0, 0.1)
            loss = tf.add_n(list(cells.values()))
        return cells, loss, tape.gradient(loss, student.trainable_variables)

    cells, want_total, want_gradients = reference(stop=True)
    for cell, loss in cells.items():
        np.testing.assert_allclose(float(per_cell[cell]), float(loss), rtol=1e-5)
    np.testing.assert_allclose(float(total), float(want_total), rtol=1e-5)
    _assert_gradients_close(gradients, want_gradients)
    # Without the stop the narrow widths would pull the widest: another gradient.
    _, _, unstopped = reference(stop=False)
    head_kernel = [i for i, v in enumerate(student.trainable_variables)
                   if v is student.head.dense.kernel][0]
    assert not np.allclose(_dense(gradients[head_kernel]), _dense(unstopped[head_kernel]))


def test_inplace_needs_full_depth():
    with pytest.raises(ValueError, match="needs depth_mult 1.0"):
        variants.InplaceGridTrainer(tiny_classifier(), width_mults=(1.0, 0.5),
                                    depth_mults=(0.5,))


# ----------------------------------------------------------------------------- depth first

def test_depth_teacher_teaches_each_cell_at_its_own_depth():
    student, teacher = _pair(TINY_DEEP)
    trainer = variants.DepthTeacherGridTrainer(student, teacher, width_mults=(1.0, 0.5),
                                               depth_mults=(1.0, 0.5), lambda_hidden=1.0)
    features, labels = _data()
    per_cell = trainer.cell_losses(features, labels, trainer.teacher_outputs(features),
                                   training=True)
    for (width, depth), loss in per_cell.items():
        out = student(features, width_mult=width, depth_mult=depth, training=True,
                      return_dict=True)
        taught = teacher(features, width_mult=1.0, depth_mult=depth, training=False,
                         return_dict=True)  # the same kept layers, state for state
        hidden = sum(float(losses.mean_squared_error(s, t))
                     for s, t in zip(out["hidden_states"], taught["hidden_states"]))
        want = float(student.head.distillation_loss(out, taught)) + hidden
        np.testing.assert_allclose(float(loss), want, rtol=1e-5)
    # Taught at full depth (stage 2 of the width-first order), the shallow cells differ (by
    # little: random layers are near identities; float32 round-off is about 1e-6 here).
    full = GridTrainer(student, teacher, width_mults=(1.0, 0.5), depth_mults=(1.0, 0.5),
                       teacher_width="full", lambda_hidden=1.0)
    at_full = full.cell_losses(features, labels, full.teacher_outputs(features))
    np.testing.assert_allclose(float(at_full[(1.0, 1.0)]), float(per_cell[(1.0, 1.0)]),
                               rtol=1e-5)
    assert abs(float(at_full[(0.5, 0.5)]) - float(per_cell[(0.5, 0.5)])) > 1e-5
