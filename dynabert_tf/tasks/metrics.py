"""Task metrics: accuracy, F1, Matthews correlation (MCC), Pearson and Spearman.

    metrics = compute_metrics(task, logits, labels)   # e.g. {"f1": 0.88, "accuracy": 0.84}
    score = primary_metric_value(task, metrics)

Correlations of a constant input are undefined; they are reported as 0.0 (no measurable
relation, the convention scikit-learn uses for MCC) rather than NaN, so a collapsed model
scores 0 and results stay valid JSON.
"""

import numpy as np
from scipy import stats

from dynabert_tf import data


def accuracy(predicted, labels):
    """Fraction of equal entries of int [n] `predicted` and `labels`."""
    return float(np.mean(np.asarray(predicted) == np.asarray(labels)))


def f1(predicted, labels, positive=1):
    """Binary F1 of the `positive` class (0.0 when it is never predicted nor present)."""
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    true_positive = np.sum((predicted == positive) & (labels == positive))
    denominator = np.sum(predicted == positive) + np.sum(labels == positive)
    return float(2.0 * true_positive / denominator) if denominator else 0.0


def mcc(predicted, labels):
    """Matthews correlation of int [n] class indices (multi-class form; 0.0 if undefined)."""
    predicted, labels = np.asarray(predicted, np.int64), np.asarray(labels, np.int64)
    num_classes = int(max(predicted.max(initial=0), labels.max(initial=0))) + 1
    confusion = np.zeros((num_classes, num_classes), np.float64)  # [true, predicted]
    np.add.at(confusion, (labels, predicted), 1.0)
    true_counts, predicted_counts = confusion.sum(axis=1), confusion.sum(axis=0)
    samples, correct = confusion.sum(), np.trace(confusion)
    covariance = correct * samples - true_counts @ predicted_counts
    variance_true = samples ** 2 - true_counts @ true_counts
    variance_predicted = samples ** 2 - predicted_counts @ predicted_counts
    if variance_true == 0 or variance_predicted == 0:
        return 0.0
    return float(covariance / np.sqrt(variance_true * variance_predicted))


def _correlation(function, scores, targets):
    scores, targets = np.asarray(scores, np.float64), np.asarray(targets, np.float64)
    if len(scores) < 2 or np.ptp(scores) == 0 or np.ptp(targets) == 0:
        return 0.0
    return float(function(scores, targets)[0])


def pearson(scores, targets):
    """Pearson correlation of float [n] `scores` and `targets` (0.0 if either is constant)."""
    return _correlation(stats.pearsonr, scores, targets)


def spearman(scores, targets):
    """Spearman rank correlation of float [n] `scores` and `targets` (0.0 if constant)."""
    return _correlation(stats.spearmanr, scores, targets)


_CLASSIFICATION_METRICS = {"accuracy": accuracy, "f1": f1, "mcc": mcc}
_REGRESSION_METRICS = {"pearson": pearson, "spearman": spearman}


def compute_metrics(task, predictions, labels):
    """The task's metrics (`task.metric_names`) of one evaluated split.

    Args:
      task: a `data.Task` or task name.
      predictions: classification logits [n, num_classes]; regression scores [n, 1] or [n].
      labels: class indices [n] or regression targets [n].
    Returns:
      dict metric name -> float.
    """
    task = data.get_task(task)
    predictions, labels = np.asarray(predictions), np.asarray(labels).reshape(-1)
    if task.is_regression:
        if predictions.ndim == 2 and predictions.shape[1] == 1:
            predictions = predictions[:, 0]
        if predictions.ndim != 1:
            raise ValueError(f"task {task.name!r} expects scores [n] or [n, 1], got shape "
                             f"{predictions.shape}")
        functions = _REGRESSION_METRICS
    else:
        if predictions.ndim != 2 or predictions.shape[1] != task.num_labels:
            raise ValueError(f"task {task.name!r} expects logits [n, {task.num_labels}], got "
                             f"shape {predictions.shape}")
        predictions = np.argmax(predictions, axis=-1)
        functions = _CLASSIFICATION_METRICS
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels")
    if not len(labels):
        raise ValueError("cannot compute metrics of zero examples")
    return {name: functions[name](predictions, labels) for name in task.metric_names}


def primary_metric_value(task, metrics):
    """The value of the task's primary metric in a `compute_metrics` result."""
    task = data.get_task(task)
    if task.primary_metric not in metrics:
        raise ValueError(f"metrics lack {task.primary_metric!r}, the primary metric of task "
                         f"{task.name!r}; got {', '.join(metrics) or 'none'}")
    return metrics[task.primary_metric]
