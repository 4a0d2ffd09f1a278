import numpy as np
import pytest

from dynabert_tf.distillation import losses
from dynabert_tf.tasks import heads

CLASSIFY = heads.ClassificationHead(3)
REGRESS = heads.RegressionHead()

STUDENT_LOGITS = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], "float32")
TEACHER_LOGITS = np.array([[0.5, 1.5, 1.0], [2.0, 0.0, 1.0]], "float32")


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _hand_sce():
    p, log_q = _softmax(TEACHER_LOGITS.astype("float64")), np.log(_softmax(STUDENT_LOGITS))
    return np.mean([-(p[b] * log_q[b]).sum() for b in range(2)])


def test_hidden_mse_sums_pair_means_padding_included():
    s = [np.full((1, 2, 2), 1.0, "float32"), np.array([[[0, 0], [0, 4]]], "float32")]
    t = [np.zeros((1, 2, 2), "float32"), np.zeros((1, 2, 2), "float32")]
    # pair 0: mean of four 1s = 1; pair 1: 16 / 4 = 4.
    assert float(losses.hidden_mse(s, t)) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="2 student states but 1 teacher"):
        losses.hidden_mse(s, t[:1])


@pytest.mark.parametrize("num_layers,depth_mult,expected", [
    (6, 1.0, [0, 1, 2, 3, 4, 5, 6]),
    (6, 0.75, [0, 1, 2, 3, 5]),
    (6, 0.5, [0, 1, 3, 5]),
    (12, 1.0, list(range(13))),
    (12, 0.75, [0, 1, 2, 3, 5, 6, 7, 9, 10, 11]),
    (12, 0.5, [0, 1, 3, 5, 7, 9, 11]),
])
def test_teacher_layer_indices(num_layers, depth_mult, expected):
    assert losses.teacher_layer_indices(num_layers, depth_mult) == expected


def _outputs(logits, states):
    return {"logits": logits, "hidden_states": states}


def test_distillation_loss_matches_hand_value_with_layer_matching():
    rng = np.random.default_rng(0)
    num_layers = 6
    teacher_states = [rng.normal(size=(2, 3, 4)).astype("float32") for _ in range(7)]
    student_states = [rng.normal(size=(2, 3, 4)).astype("float32") for _ in range(4)]  # d=0.5
    loss, parts = losses.distillation_loss(
        CLASSIFY, _outputs(STUDENT_LOGITS, student_states), _outputs(TEACHER_LOGITS, teacher_states),
        depth_mult=0.5, num_layers=num_layers, lambda_logits=2.0, lambda_hidden=0.1,
        return_parts=True)
    hand_hidden = sum(np.mean((student_states[k] - teacher_states[i]) ** 2)
                      for k, i in enumerate([0, 1, 3, 5]))
    np.testing.assert_allclose(float(parts["hidden"]), hand_hidden, rtol=1e-6)
    np.testing.assert_allclose(float(parts["logits"]), _hand_sce(), rtol=1e-6)
    np.testing.assert_allclose(float(loss), 2.0 * _hand_sce() + 0.1 * hand_hidden, rtol=1e-6)


def test_distillation_loss_regression_uses_mse_on_predictions():
    states = [np.zeros((2, 3, 4), "float32")] * 3
    loss = losses.distillation_loss(
        REGRESS, _outputs(np.array([[1.0], [2.0]], "float32"), states),
        _outputs(np.array([[0.0], [4.0]], "float32"), states),
        depth_mult=1.0, num_layers=2, lambda_logits=1.0, lambda_hidden=1.0)
    assert float(loss) == pytest.approx((1 + 4) / 2)


def test_distillation_loss_rejects_bad_inputs():
    states = [np.zeros((1, 2, 4), "float32")] * 3
    out = _outputs(STUDENT_LOGITS[:1], states)
    with pytest.raises(ValueError, match="lambda_hidden must be a finite number >= 0"):
        losses.distillation_loss(CLASSIFY, out, out, 1.0, 2, 1.0, -0.1)
    with pytest.raises(ValueError, match="both 0"):
        losses.distillation_loss(CLASSIFY, out, out, 1.0, 2, 0.0, 0)
    with pytest.raises(ValueError, match="full depth"):
        losses.distillation_loss(CLASSIFY, out, _outputs(STUDENT_LOGITS[:1], states[:2]), 1.0, 2, 1.0, 1.0)
    with pytest.raises(ValueError, match="should have 2 hidden states"):
        losses.distillation_loss(CLASSIFY, out, out, 0.5, 2, 1.0, 1.0)
