import math
import warnings

import numpy as np
import pytest

from dynabert_tf.tasks import metrics


def _logits(predicted, num_classes=2):
    return np.eye(num_classes)[predicted] * 3.0 - 1.0


def test_accuracy_and_f1_by_hand():
    predicted, labels = [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]
    assert metrics.accuracy(predicted, labels) == pytest.approx(3 / 5)
    # tp = 2, fp = 1, fn = 1: F1 = 2 * 2 / (2 * 2 + 1 + 1).
    assert metrics.f1(predicted, labels) == pytest.approx(2 / 3)
    assert metrics.f1([0, 0], [0, 0]) == 0.0


def test_mcc_binary_confusion_matrix():
    # TP = 6, TN = 3, FP = 1, FN = 2: (6*3 - 1*2) / sqrt(7 * 8 * 4 * 5).
    labels = [1] * 6 + [0] * 3 + [0] + [1] * 2
    predicted = [1] * 6 + [0] * 3 + [1] + [0] * 2
    assert metrics.mcc(predicted, labels) == pytest.approx(16 / math.sqrt(1120))
    assert metrics.mcc([1, 0, 1, 1], [1, 1, 1, 0]) == pytest.approx(-1 / 3)
    assert metrics.mcc([0, 1, 0, 1], [0, 1, 0, 1]) == pytest.approx(1.0)


def test_mcc_multiclass():
    # Confusion [[1,1,0],[0,2,0],[1,0,1]]: (4*6 - 12) / sqrt((36 - 12) * (36 - 14)).
    assert metrics.mcc([0, 1, 1, 1, 2, 0], [0, 0, 1, 1, 2, 2]) == pytest.approx(
        12 / math.sqrt(24 * 22))


def test_constant_inputs_give_zero_not_nan():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert metrics.mcc([1, 1, 1, 1], [0, 1, 0, 1]) == 0.0
        assert metrics.pearson([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]) == 0.0
        assert metrics.spearman([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]) == 0.0
        result = metrics.compute_metrics("cola", _logits([1, 1, 1, 1]), [0, 1, 0, 1])
    assert result == {"mcc": 0.0}


def test_correlations_by_hand():
    # Pearson of (1,2,3) and (2,4,7): cov 5 / (sqrt(2) * sqrt(114) / 3).
    assert metrics.pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(15 / math.sqrt(228))
    # Spearman: rank differences (0,1,1,0) -> 1 - 6 * 2 / (4 * 15).
    assert metrics.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert metrics.spearman([1, 2, 3, 4], [10, 9, 3, 1]) == pytest.approx(-1.0)


def test_compute_metrics_per_task():
    labels = [1, 0, 0, 1, 1]
    mrpc = metrics.compute_metrics("mrpc", _logits([1, 1, 0, 0, 1]), labels)
    assert mrpc == pytest.approx({"f1": 2 / 3, "accuracy": 3 / 5})
    assert metrics.primary_metric_value("mrpc", mrpc) == pytest.approx(3 / 5)
    mnli = metrics.compute_metrics("mnli", _logits([0, 2, 1], 3), [0, 2, 2])
    assert mnli == pytest.approx({"accuracy": 2 / 3})
    scores = np.array([[0.1], [0.4], [0.2], [0.9]])
    stsb = metrics.compute_metrics("stsb", scores, [1.0, 3.0, 2.0, 5.0])
    assert set(stsb) == {"pearson", "spearman"} and stsb["spearman"] == pytest.approx(1.0)
    assert metrics.compute_metrics("rt_rating", scores[:, 0], [1.0, 3.0, 2.0, 5.0]) == stsb
    assert metrics.primary_metric_value("rt_rating", stsb) == stsb["spearman"]


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"expects logits \[n, 2\], got shape \(3, 3\)"):
        metrics.compute_metrics("sst2", np.zeros((3, 3)), [0, 1, 0])
    with pytest.raises(ValueError, match="2 predictions but 3 labels"):
        metrics.compute_metrics("sst2", np.zeros((2, 2)), [0, 1, 0])
    with pytest.raises(ValueError, match=r"expects scores \[n\] or \[n, 1\]"):
        metrics.compute_metrics("stsb", np.zeros((2, 2)), [0.0, 1.0])
    with pytest.raises(ValueError, match="metrics lack 'mcc'.*got accuracy"):
        metrics.primary_metric_value("cola", {"accuracy": 1.0})
    with pytest.raises(ValueError, match="unknown task 'glue'"):
        metrics.compute_metrics("glue", np.zeros((2, 2)), [0, 1])
