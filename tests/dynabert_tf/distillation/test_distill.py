import keras
import numpy as np
import pytest
import tensorflow as tf

from dynabert_tf import optimization
from dynabert_tf.distillation import losses
from dynabert_tf.tasks import heads
from dynabert_tf.models.config import BertConfig
from dynabert_tf.distillation.grid_trainer import GridTrainer
from dynabert_tf.layers.embeddings import Embeddings
from dynabert_tf.layers.transformer_layer import TransformerLayer
from dynabert_tf.models.task_model import DynaBertTaskModel
from helpers import TINY, TINY_DEEP, random_inputs, tiny_backbone, tiny_classifier

# Six layers, as MiniLM-L6: depth 0.75 keeps (0,1,2,4), 0.5 keeps (0,2,4).
TINY_SIX = BertConfig(**{**TINY.to_dict(), "num_layers": 6})
STAGE2_GRID = dict(width_mults=(1.0, 0.5), depth_mults=(1.0, 0.75, 0.5))


class CountingModel(DynaBertTaskModel):
    """Records the (width_mult, depth_mult, training) of every call."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def call(self, inputs, width_mult=1.0, depth_mult=1.0, training=None, **kwargs):
        self.calls.append((width_mult, depth_mult, training))
        return super().call(inputs, width_mult=width_mult, depth_mult=depth_mult,
                            training=training, **kwargs)


def _pair(config, num_classes=2):
    """A dropout-free student and a (dropout-on, run with training=False) counting teacher."""
    student = tiny_classifier(num_classes, config, dropout=0.0)
    teacher = CountingModel(tiny_backbone(config), heads.make_head(
        "regression" if num_classes == 1 else "classification", num_classes))
    return student, teacher


def _data(batch_size=4, seq_len=7, seed=0):
    return random_inputs(batch_size, seq_len, seed=seed), np.arange(batch_size) % 2


def _dense(gradient):
    return tf.convert_to_tensor(gradient).numpy()


def _per_cell_reference(trainer, features, labels, teacher_width_of):
    """Per-cell losses and the gradient summed over cells, computed one cell at a time, fresh
    forward each."""
    student, variables = trainer.student, trainer.student.trainable_variables
    cell_losses, total_grads = {}, [np.zeros(v.shape) for v in variables]
    num_layers = student.bert_config.num_layers
    for w, d in trainer.cells:
        with tf.GradientTape() as tape:
            out = student(features, width_mult=w, depth_mult=d, training=True, return_dict=True)
            if trainer.loss_mode == "labels":
                loss = student.head.label_loss(out, labels)
            else:
                teacher_out = trainer.teacher(features, width_mult=teacher_width_of(w),
                                              training=False, return_dict=True)
                loss = losses.distillation_loss(student.head, out, teacher_out, d, num_layers,
                                                trainer.lambda_logits, trainer.lambda_hidden)
        cell_losses[(w, d)] = float(loss)
        for k, g in enumerate(tape.gradient(loss, variables)):
            if g is not None:  # None: a layer this cell's depth drops
                total_grads[k] += _dense(g)
    return cell_losses, total_grads


def _check_against_reference(trainer, teacher_width_of, regression=False):
    features, labels = _data()
    if regression:
        labels = labels.astype("float32") * 0.7
    total, grads, per_cell = trainer.compute_gradients(features, labels)
    ref_losses, ref_grads = _per_cell_reference(trainer, features, labels, teacher_width_of)
    assert list(per_cell) == trainer.cells
    for cell, loss in per_cell.items():
        np.testing.assert_allclose(float(loss), ref_losses[cell], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(total), sum(ref_losses.values()), rtol=1e-5)
    for g, ref in zip(grads, ref_grads):
        np.testing.assert_allclose(_dense(g), ref, rtol=1e-4, atol=1e-5)
    return float(total)


def test_stage1_gradient_is_sum_of_per_cell_gradients():
    student, teacher = _pair(TINY)
    trainer = GridTrainer(student, teacher, width_mults=(1.0, 0.75, 0.5, 0.25),
                          teacher_width="full", lambda_hidden=0.1)
    assert trainer.cells == [(1.0, 1.0), (0.75, 1.0), (0.5, 1.0), (0.25, 1.0)]
    _check_against_reference(trainer, lambda w: 1.0)
    teacher.calls.clear()
    trainer.compute_gradients(*_data())
    assert teacher.calls == [(1.0, 1.0, False)]  # once per batch, not once per width


@pytest.mark.parametrize("share_depth_prefix", [True, False])
def test_stage2_gradient_is_sum_of_per_cell_gradients(share_depth_prefix):
    student, teacher = _pair(TINY_SIX)
    trainer = GridTrainer(student, teacher, **STAGE2_GRID, teacher_width="same",
                          lambda_hidden=1.0, share_depth_prefix=share_depth_prefix)
    assert trainer.cells == [(1.0, 1.0), (1.0, 0.75), (1.0, 0.5),
                             (0.5, 1.0), (0.5, 0.75), (0.5, 0.5)]
    _check_against_reference(trainer, lambda w: w)


def test_teacher_width_same_versus_full_and_run_once_per_width():
    student, teacher = _pair(TINY_DEEP)
    same = GridTrainer(student, teacher, **STAGE2_GRID, teacher_width="same", lambda_hidden=1.0)
    loss_same = _check_against_reference(same, lambda w: w)
    teacher.calls.clear()
    same.compute_gradients(*_data())
    assert teacher.calls == [(1.0, 1.0, False), (0.5, 1.0, False)]  # once per width, not cell

    full = GridTrainer(student, teacher, **STAGE2_GRID, teacher_width="full", lambda_hidden=1.0)
    loss_full = _check_against_reference(full, lambda w: 1.0)
    teacher.calls.clear()
    full.compute_gradients(*_data())
    assert teacher.calls == [(1.0, 1.0, False)]
    assert loss_full != pytest.approx(loss_same)


def test_labels_mode_and_regression_match_reference():
    student = tiny_classifier(1, TINY_DEEP, dropout=0.0)
    labels_trainer = GridTrainer(student, loss_mode="labels", **STAGE2_GRID)
    assert labels_trainer.teacher is None
    _check_against_reference(labels_trainer, None, regression=True)
    student, teacher = _pair(TINY_DEEP, num_classes=1)
    distill = GridTrainer(student, teacher, **STAGE2_GRID, lambda_hidden=1.0)
    _check_against_reference(distill, lambda w: w, regression=True)


def test_call_depths_equals_separate_calls_and_shares_layers(monkeypatch):
    model = tiny_classifier(config=TINY_SIX)
    features = random_inputs(3, 7)
    layer_calls = []
    original = TransformerLayer.call

    def counting_call(self, *args, **kwargs):
        layer_calls.append(self.name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(TransformerLayer, "call", counting_call)
    shared = model.call_depths(features, width_mult=0.5, depth_mults=(1.0, 0.75, 0.5))
    assert len(layer_calls) == 6 + 1 + 2  # separate calls would run 6 + 4 + 3
    for depth, out in shared.items():
        alone = model(features, width_mult=0.5, depth_mult=depth, return_dict=True)
        for key in ("logits", "pooled_output", "sequence_output"):
            np.testing.assert_allclose(out[key], alone[key], atol=1e-6)
        for key in ("hidden_states", "attention_probs"):
            assert len(out[key]) == len(alone[key])
            for a, b in zip(out[key], alone[key]):
                np.testing.assert_allclose(a, b, atol=1e-6)


def test_call_grid_computes_the_embeddings_once_and_equals_separate_calls(monkeypatch):
    model = tiny_classifier(config=TINY_SIX)
    features = random_inputs(3, 7)
    embedding_calls = []
    original = Embeddings.call

    def counting_call(self, *args, **kwargs):
        embedding_calls.append(self.name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Embeddings, "call", counting_call)
    grid = model.call_grid(features, width_mults=(1.0, 0.75, 0.25), depth_mults=(1.0, 0.5))
    assert len(embedding_calls) == 1
    assert list(grid) == [(w, d) for w in (1.0, 0.75, 0.25) for d in (1.0, 0.5)]
    for (w, d), out in grid.items():
        alone = model(features, width_mult=w, depth_mult=d, return_dict=True)
        np.testing.assert_allclose(out["logits"], alone["logits"], atol=1e-6)
        for a, b in zip(out["hidden_states"], alone["hidden_states"], strict=True):
            np.testing.assert_allclose(a, b, atol=1e-6)


def test_shared_forward_shares_the_embedding_dropout_mask_across_widths():
    model = tiny_classifier(config=TINY, dropout=0.5)
    grid = model.call_grid(random_inputs(3, 7), width_mults=(1.0, 0.5), training=True)
    first, second = (grid[(w, 1.0)]["hidden_states"][0] for w in (1.0, 0.5))
    np.testing.assert_array_equal(first, second)
    assert float(np.mean(np.asarray(first) == 0.0)) > 0.3  # dropout did run


def _learnable_dataset(num=64, batch_size=16):
    """Label = whether the first token id is in the upper half of the vocabulary."""
    features = random_inputs(num, 6, seed=3, pad_last=0)
    labels = (features["token_ids"][:, 0] >= TINY.vocab_size // 2).astype("int32")
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(batch_size)


@pytest.mark.parametrize("loss_mode", ["labels", "distill"])
def test_fit_lowers_the_loss(loss_mode):
    student, teacher = _pair(TINY)
    trainer = GridTrainer(student, teacher if loss_mode == "distill" else None,
                          width_mults=(1.0, 0.5), depth_mults=(1.0, 0.5), loss_mode=loss_mode,
                          track_cell_losses=True)
    trainer.compile(optimizer=optimization.create_optimizer(3e-3, total_steps=40,
                                                            warmup_proportion=0.0))
    history = trainer.fit(_learnable_dataset(), epochs=10, verbose=0).history
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert "loss_w0.50_d0.50" in history
    assert len(trainer.trainable_variables) == len(student.trainable_variables)


def test_bad_arguments_raise_clear_errors():
    student, teacher = _pair(TINY)
    with pytest.raises(ValueError, match="unknown loss_mode 'kd'"):
        GridTrainer(student, teacher, loss_mode="kd")
    with pytest.raises(ValueError, match="unknown teacher_width 'half'"):
        GridTrainer(student, teacher, teacher_width="half")
    with pytest.raises(ValueError, match="lambda_hidden must be a finite number >= 0"):
        GridTrainer(student, teacher, lambda_hidden=-1.0)
    with pytest.raises(ValueError, match="lambda_logits must be a finite number >= 0"):
        GridTrainer(student, teacher, lambda_logits="1")
    with pytest.raises(ValueError, match="needs a teacher"):
        GridTrainer(student)
    with pytest.raises(ValueError, match="must be different models"):
        GridTrainer(student, student)
    with pytest.raises(ValueError, match="same num_layers"):
        GridTrainer(student, tiny_classifier(config=TINY_DEEP))
    with pytest.raises(ValueError, match=r"width_mult must be in \(0, 1\]"):
        GridTrainer(student, teacher, width_mults=(1.0, 1.5))
    assert not teacher.trainable


@pytest.mark.parametrize("loss_mode", ["labels", "distill"])
def test_span_head_trains_as_a_traced_graph(loss_mode):
    """The span head through GridTrainer.fit in graph mode (the SQuAD smoke run is eager):
    answers at tokens 1..3 for the label loss, a random span teacher for distillation."""
    student = DynaBertTaskModel(tiny_backbone(TINY, dropout=0.0), heads.SpanHead())
    teacher = DynaBertTaskModel(tiny_backbone(TINY), heads.SpanHead())
    features = random_inputs(32, 6, seed=3, pad_last=0)
    positions = {"start_positions": np.full(32, 1, "int32"),
                 "end_positions": np.full(32, 3, "int32")}
    trainer = GridTrainer(student, teacher if loss_mode == "distill" else None,
                          width_mults=(1.0, 0.5), depth_mults=(1.0, 0.5), loss_mode=loss_mode)
    trainer.compile(optimizer=optimization.create_optimizer(3e-3, total_steps=40,
                                                            warmup_proportion=0.0))
    assert not trainer.run_eagerly and not tf.config.functions_run_eagerly()

    def gap():  # what the loss can still lower: label cross-entropy or KL to the teacher
        student_logits = student(features, width_mult=0.5, depth_mult=0.5)
        if loss_mode == "labels":
            return float(student.head.label_loss(student_logits, positions))
        teacher_logits = teacher(features)
        return sum(float(np.mean(keras.losses.kl_divergence(
            tf.nn.softmax(teacher_logits[name]), tf.nn.softmax(student_logits[name]))))
            for name in ("start_logits", "end_logits"))

    before = gap()
    trainer.fit(tf.data.Dataset.from_tensor_slices((features, positions)).batch(8), epochs=10,
                verbose=0)
    assert gap() < 0.3 * before
