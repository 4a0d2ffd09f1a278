"""SQuAD answers from start/end logits, and the official exact-match and F1 scores.

    predictions, null_score_diff = postprocess(examples, features, start_logits, end_logits)
    scores = squad_scores(examples, predictions)                    # v1.1
    scores = squad_scores(examples, predictions, null_score_diff)   # v2.0, best threshold
    scores = evaluate_squad(examples, features, start_logits, end_logits, "v2.0")

Scores are fractions in [0, 1] (the official scripts print them x100). Normalisation and
per-answer scores are those of the official v2.0 evaluation script, which agrees with v1.1's
on answerable questions: gold answers that normalise to "" are dropped, and a question left
with none (unanswerable) has the single gold answer "", which only an empty prediction
matches. For v2.0 a question is predicted unanswerable when its null score difference
(null score - best span score) exceeds the threshold.
"""

import collections
import re
import string

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text):
    """Lowercase, drop punctuation and the articles a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match_score(prediction, ground_truth):
    """1.0 if the normalized texts are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def f1_score(prediction, ground_truth):
    """F1 of the bags of normalized tokens; 1.0 for two empty answers, 0.0 for one."""
    predicted, gold = normalize_answer(prediction).split(), normalize_answer(ground_truth).split()
    if not predicted or not gold:
        return float(predicted == gold)
    common = sum((collections.Counter(predicted) & collections.Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def metric_max_over_ground_truths(metric, prediction, ground_truths):
    """The best `metric(prediction, gold)` over the gold answers."""
    return max(metric(prediction, gold) for gold in ground_truths)


def gold_answers(example):
    """Texts of the example's gold answers that normalize to something, else [""]."""
    return [text for text, _ in example.answers if normalize_answer(text)] or [""]


def _best_span(start_logits, end_logits, start_char, end_char, is_max_context, n_best_size,
               max_answer_length):
    """(score, start char, end char) of the best valid span of one feature, or None.

    Args:
      start_logits, end_logits: float [seq].
      start_char, end_char, is_max_context: the feature's rows of `SquadFeatures`.
    """
    # Stable sorts: on ties the lower index wins, as in BERT's `_get_best_indexes`.
    starts = np.argsort(-start_logits, kind="stable")[:n_best_size, None]
    ends = np.argsort(-end_logits, kind="stable")[None, :n_best_size]
    valid = ((start_char[starts] >= 0) & (end_char[ends] >= 0) & (ends >= starts)
             & (ends - starts < max_answer_length) & is_max_context[starts])
    if not valid.any():
        return None
    scores = np.where(valid, start_logits[starts] + end_logits[ends], -np.inf)
    best = np.unravel_index(np.argmax(scores), scores.shape)  # first of equal scores
    start, end = starts[best[0], 0], ends[0, best[1]]
    return float(scores[best]), int(start_char[start]), int(end_char[end])


def postprocess(examples, features, start_logits, end_logits, n_best_size=20,
                max_answer_length=30):
    """Best answer text of each example over all its features (BERT's `write_predictions`).

    A span is valid when both ends are context tokens, end >= start, it has at most
    `max_answer_length` tokens and its start token is in its max-context window; only the
    `n_best_size` highest start and end logits of each feature are tried. Its score is
    start + end logit. The null score is the lowest [CLS] score (start[0] + end[0]) over the
    example's features. An example with no valid span gets "" and a span score of 0.0 (BERT's
    "empty" entry).

    Args:
      examples: list of `SquadExample`, those given to `make_features`.
      features: their `SquadFeatures`.
      start_logits, end_logits: float [num_features, seq], in `features` order.
    Returns:
      (predictions, null_score_diff): dicts by question id of the best non-null answer text
      and of null score - best span score (large: the model prefers "no answer").
    """
    start_logits = np.asarray(start_logits, np.float32)
    end_logits = np.asarray(end_logits, np.float32)
    if start_logits.shape != features.token_ids.shape or end_logits.shape != start_logits.shape:
        raise ValueError(f"logits of shapes {start_logits.shape} and {end_logits.shape} do not "
                         f"match the features' {features.token_ids.shape}")
    features_of = [[] for _ in examples]
    for feature, example in enumerate(features.example_index):
        features_of[example].append(feature)
    predictions, null_score_diff = {}, {}
    for example, feature_indices in zip(examples, features_of):
        best, null_score = None, np.inf
        for f in feature_indices:
            null_score = min(null_score, float(start_logits[f, 0] + end_logits[f, 0]))
            span = _best_span(start_logits[f], end_logits[f], features.token_start_char[f],
                              features.token_end_char[f], features.token_is_max_context[f],
                              n_best_size, max_answer_length)
            if span is not None and (best is None or span[0] > best[0]):
                best = span
        score, start, end = best if best is not None else (0.0, 0, 0)
        predictions[example.qas_id] = example.context[start:end]
        null_score_diff[example.qas_id] = null_score - score
    return predictions, null_score_diff


def _raw_scores(examples, predictions):
    """float [n] exact match and F1 of each example's prediction (no null threshold)."""
    missing = [example.qas_id for example in examples if example.qas_id not in predictions]
    if missing:
        raise ValueError(f"no prediction for {len(missing)} question(s), e.g. {missing[0]!r}")
    exact = [metric_max_over_ground_truths(exact_match_score, predictions[example.qas_id],
                                           gold_answers(example)) for example in examples]
    f1 = [metric_max_over_ground_truths(f1_score, predictions[example.qas_id],
                                        gold_answers(example)) for example in examples]
    return np.array(exact), np.array(f1)


def best_null_threshold(examples, predictions, null_score_diff):
    """The null threshold maximising F1 over `examples` (the official v2.0 `find_best_thresh`).

    Questions are answered in increasing order of null score difference; the threshold is
    the difference of the last one answered at the best total. Where leaving every question
    unanswered is best, it is just below the smallest difference (the official script reports
    0.0 there, which need not reproduce that score).
    """
    _, f1 = _raw_scores(examples, predictions)
    diffs = np.array([null_score_diff[example.qas_id] for example in examples], np.float64)
    score = sum(example.is_impossible for example in examples)  # all predicted unanswerable
    best_score, best_threshold = score, float(diffs.min()) - 1.0
    for i in np.argsort(diffs, kind="stable"):
        example = examples[i]
        if not example.is_impossible:
            score += f1[i]
        elif predictions[example.qas_id]:
            score -= 1
        if score > best_score:
            best_score, best_threshold = score, float(diffs[i])
    return best_threshold


def squad_scores(examples, predictions, null_score_diff=None, null_threshold=None):
    """Mean exact match and F1 over `examples`, as fractions.

    Args:
      examples: list of `SquadExample`.
      predictions: dict of answer text by question id.
      null_score_diff: v2.0: dict of null score difference by question id; a question is
        predicted unanswerable (answer "") when it exceeds `null_threshold`.
      null_threshold: with `null_score_diff`, the threshold; None picks the best one on
        `examples` (`best_null_threshold`).
    Returns:
      dict of float "exact_match" and "f1", and "null_threshold" with `null_score_diff`.
    """
    if not examples:
        raise ValueError("squad_scores got no examples")
    if null_score_diff is None:
        exact, f1 = _raw_scores(examples, predictions)
        return {"exact_match": float(exact.mean()), "f1": float(f1.mean())}
    if null_threshold is None:
        null_threshold = best_null_threshold(examples, predictions, null_score_diff)
    thresholded = {qas_id: "" if null_score_diff[qas_id] > null_threshold else text
                   for qas_id, text in predictions.items()}
    scores = squad_scores(examples, thresholded)
    return {**scores, "null_threshold": float(null_threshold)}


def evaluate_squad(examples, features, start_logits, end_logits, version):
    """`postprocess` then `squad_scores`; for "v2.0" with the best threshold on `examples`."""
    if version not in ("v1.1", "v2.0"):
        raise ValueError(f"unknown SQuAD version {version!r}; expected 'v1.1' or 'v2.0'")
    predictions, null_score_diff = postprocess(examples, features, start_logits, end_logits)
    if version == "v1.1":
        return squad_scores(examples, predictions)
    return squad_scores(examples, predictions, null_score_diff)
