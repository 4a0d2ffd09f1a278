"""The task-head interface: each head's outputs, losses and checkpoint form, against hand
computations."""

import numpy as np
import pytest

from dynabert_tf.models.task_model import DynaBertTaskModel
from dynabert_tf.tasks import heads
from dynabert_tf.presets import hf_config
from tests import model_checks
from tests.helpers import TINY, random_inputs, tiny_backbone

STUDENT = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], "float32")
TEACHER = np.array([[0.5, 1.5, 1.0], [2.0, 0.0, 1.0]], "float32")


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _sce(student, teacher):
    p, log_q = _softmax(teacher.astype("float64")), np.log(_softmax(student.astype("float64")))
    return np.mean(-(p * log_q).sum(-1))


def test_soft_cross_entropy_matches_hand_value():
    np.testing.assert_allclose(float(heads.soft_cross_entropy(STUDENT, TEACHER)),
                               _sce(STUDENT, TEACHER), rtol=1e-6)
    # Identical logits: SCE equals the entropy of the teacher (minimum over the student).
    p = _softmax(TEACHER.astype("float64"))
    np.testing.assert_allclose(float(heads.soft_cross_entropy(TEACHER, TEACHER)),
                               np.mean(-(p * np.log(p)).sum(-1)), rtol=1e-6)


def test_classification_head_losses():
    head = heads.ClassificationHead(3)
    labels = np.array([1, 2])
    hand = -np.mean([np.log(_softmax(STUDENT)[b, labels[b]]) for b in range(2)])
    np.testing.assert_allclose(float(head.label_loss({"logits": STUDENT}, labels)), hand,
                               rtol=1e-6)
    np.testing.assert_allclose(float(head.importance_loss({"logits": STUDENT}, labels)), hand,
                               rtol=1e-6)
    np.testing.assert_allclose(float(head.distillation_loss({"logits": STUDENT},
                                                            {"logits": TEACHER})),
                               _sce(STUDENT, TEACHER), rtol=1e-6)


def test_regression_head_losses_are_mse():
    head = heads.RegressionHead()
    scores = {"logits": np.array([[1.0], [3.0]], "float32")}
    assert float(head.label_loss(scores, np.array([0.0, 1.0]))) == pytest.approx((1 + 4) / 2)
    teacher = {"logits": np.array([[0.0], [4.0]], "float32")}
    assert float(head.distillation_loss(scores, teacher)) == pytest.approx((1 + 1) / 2)


def test_span_head_losses():
    head = heads.SpanHead()
    student = {"start_logits": STUDENT, "end_logits": STUDENT[::-1].copy()}
    teacher = {"start_logits": TEACHER, "end_logits": TEACHER[::-1].copy()}
    positions = {"start_positions": np.array([1, 2]), "end_positions": np.array([0, 2])}
    log_start, log_end = np.log(_softmax(STUDENT)), np.log(_softmax(STUDENT[::-1]))
    hand = (-np.mean([log_start[0, 1], log_start[1, 2]])
            - np.mean([log_end[0, 0], log_end[1, 2]])) / 2
    np.testing.assert_allclose(float(head.label_loss(student, positions)), hand, rtol=1e-6)
    np.testing.assert_allclose(float(head.distillation_loss(student, teacher)),
                               (_sce(STUDENT, TEACHER) + _sce(STUDENT[::-1], TEACHER[::-1])) / 2,
                               rtol=1e-6)


def test_span_model_outputs_per_token_logits():
    model = DynaBertTaskModel(tiny_backbone(), heads.SpanHead())
    inputs = random_inputs(batch_size=2, seq_len=7)
    out = model(inputs, width_mult=0.5, depth_mult=0.5)
    assert set(out) == {"start_logits", "end_logits"}
    assert out["start_logits"].shape == (2, 7) and out["end_logits"].shape == (2, 7)
    sequence = model.backbone(inputs, width_mult=0.5, depth_mult=0.5)["sequence_output"]
    kernel, bias = np.asarray(model.head.dense.kernel), np.asarray(model.head.dense.bias)
    np.testing.assert_allclose(out["end_logits"], np.asarray(sequence) @ kernel[:, 1] + bias[1],
                               atol=1e-5)


@pytest.mark.parametrize("kind,num_classes,architecture", [
    ("classification", 3, "BertForSequenceClassification"),
    ("regression", 1, "BertForSequenceClassification"),
    ("span", None, "BertForQuestionAnswering")])
def test_each_head_round_trips_through_a_hf_dir(tmp_path, kind, num_classes, architecture):
    model = DynaBertTaskModel(tiny_backbone(), heads.make_head(kind, num_classes))
    # Same class, config, head and (atol 0) outputs: `model_checks`, as for every model kind.
    path, loaded = model_checks.check_preset_round_trip(model, random_inputs(), tmp_path / kind,
                                                        [(1.0, 1.0)], atol=0)
    hf = hf_config.read_json(path)
    assert hf["architectures"] == [architecture]
    assert hf_config.head_kind(hf) == kind
    assert loaded.head.kind == kind and loaded.bert_config == TINY


def test_make_head_rejects_unknown_kind():
    with pytest.raises(ValueError, match="unknown head kind 'ranking'"):
        heads.make_head("ranking")
