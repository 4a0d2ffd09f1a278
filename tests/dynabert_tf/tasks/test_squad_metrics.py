import dataclasses

import numpy as np
import pytest

from dynabert_tf.data import squad
from dynabert_tf.tasks import squad_metrics as metrics
from tests.helpers import SQUAD_DIR, minilm_encoder

MAX_SEQ_LENGTH, DOC_STRIDE = 64, 16


@pytest.fixture(scope="module")
def encoder():
    return minilm_encoder(MAX_SEQ_LENGTH)


@pytest.fixture(scope="module")
def dev(encoder):
    """(examples, features) of both fixture dev sets, by version."""
    result = {}
    for version in ("v1.1", "v2.0"):
        examples = squad.load_squad_examples(version, "dev", SQUAD_DIR)
        result[version] = examples, squad.make_features(examples, encoder, MAX_SEQ_LENGTH,
                                                        DOC_STRIDE)
    return result


def _example(qas_id, answers, context="", is_impossible=None):
    answers = tuple((text, 0) for text in answers)
    impossible = not answers if is_impossible is None else is_impossible
    return squad.SquadExample(qas_id, "?", context, answers, impossible, "")


def _oracle_logits(features, high=10.0, low=-10.0):
    """Logits peaked at each feature's training labels ([CLS] where it has no answer)."""
    rows = np.arange(len(features))
    start_logits = np.full(features.token_ids.shape, low, np.float32)
    end_logits = np.full(features.token_ids.shape, low, np.float32)
    start_logits[rows, features.start_positions] = high
    end_logits[rows, features.end_positions] = high
    return start_logits, end_logits


@pytest.mark.parametrize("text, normalized", [
    ("The Cat!", "cat"),
    ("  a  dog\tand\nAN owl ", "dog and owl"),
    ("Theatre, then... the end.", "theatre then end"),
    ("Rock 'n' roll", "rock n roll"),
    ("“petites Curies”", "“petites curies”"),  # only ASCII punctuation is removed
    ("The", ""),
])
def test_normalize_answer(text, normalized):
    assert metrics.normalize_answer(text) == normalized


def test_exact_match_and_f1_by_hand():
    assert metrics.exact_match_score("The Cat.", "cat") == 1.0
    assert metrics.exact_match_score("cats", "cat") == 0.0
    # pred {cat, sat}, gold {cat, sat, on, mat}: precision 2/2, recall 2/4 -> F1 = 2/3.
    assert metrics.f1_score("the cat sat", "cat sat on the mat") == pytest.approx(2 / 3)
    # Bags: cat cat dog vs cat dog dog share one cat and one dog: P = R = 2/3.
    assert metrics.f1_score("cat cat dog", "cat dog dog") == pytest.approx(2 / 3)
    # pred 3 tokens, gold 1: P = 1/3, R = 1 -> F1 = 0.5.
    assert metrics.f1_score("in Warsaw , Poland", "Warsaw") == pytest.approx(0.5)
    assert metrics.f1_score("Paris", "London") == 0.0
    assert metrics.f1_score("", "") == 1.0 and metrics.exact_match_score("", "") == 1.0
    assert metrics.f1_score("the", "") == 1.0  # normalizes to empty
    assert metrics.f1_score("", "cat") == 0.0 and metrics.f1_score("cat", "") == 0.0


def test_max_over_gold_answers():
    golds = ["Warsaw", "in Warsaw, Poland"]
    assert metrics.metric_max_over_ground_truths(metrics.exact_match_score, "in warsaw",
                                                 golds) == 0.0
    # vs "Warsaw": P 1/2, R 1 -> 2/3; vs "in Warsaw, Poland": P 1, R 2/3 -> 0.8.
    assert metrics.metric_max_over_ground_truths(metrics.f1_score, "in warsaw",
                                                 golds) == pytest.approx(0.8)
    assert metrics.gold_answers(_example("q", ["The", "Warsaw"])) == ["Warsaw"]
    assert metrics.gold_answers(_example("q", [])) == [""]


def test_squad_scores_are_means_of_fractions():
    examples = [_example("a", ["Henri Becquerel", "Becquerel"]),
                _example("b", ["the cat sat on the mat"]),
                _example("c", ["1891"]),
                _example("d", [])]
    predictions = {"a": "becquerel", "b": "The cat sat!", "c": "1890", "d": ""}
    scores = metrics.squad_scores(examples, predictions)
    # exact: 1, 0, 0, 1; F1: 1, 2/3 (P 1, R 2/4 of cat sat on mat), 0, 1.
    assert scores == pytest.approx({"exact_match": 0.5, "f1": (1 + 2 / 3 + 0 + 1) / 4})
    with pytest.raises(ValueError, match="no prediction for 1 question.*'d'"):
        metrics.squad_scores(examples, {"a": "", "b": "", "c": ""})


def test_v2_scores_at_a_threshold_and_the_best_one():
    examples = [_example("a", ["Paris"]), _example("b", ["Rome"]),
                _example("c", []), _example("d", [])]
    predictions = {"a": "Paris", "b": "Rome", "c": "Oslo", "d": "Bern"}
    diffs = {"a": -2.0, "b": 1.0, "c": 0.5, "d": 3.0}
    # Answering in order a (+1), c (-1), b (+1), d (-1) from 2 (all null): 3, 2, 3, 2. The
    # first best is after a: threshold -2.0, where b, c and d are null: a, c, d right.
    assert metrics.best_null_threshold(examples, predictions, diffs) == -2.0
    assert metrics.squad_scores(examples, predictions, diffs) == {
        "exact_match": 0.75, "f1": 0.75, "null_threshold": -2.0}
    everything = metrics.squad_scores(examples, predictions, diffs, null_threshold=5.0)
    assert everything == {"exact_match": 0.5, "f1": 0.5, "null_threshold": 5.0}
    nothing = metrics.squad_scores(examples, predictions, diffs, null_threshold=-5.0)
    assert nothing["exact_match"] == 0.5
    # a is null when its difference exceeds the threshold: at 0.0 only a is answered, c is not.
    assert metrics.squad_scores(examples, predictions, diffs, 0.0)["exact_match"] == 0.75
    assert metrics.squad_scores(examples, predictions, diffs, 0.5)["exact_match"] == 0.5


def test_best_threshold_when_no_answer_is_best():
    examples = [_example("a", ["Paris"]), _example("b", [])]
    predictions, diffs = {"a": "Rome", "b": "Oslo"}, {"a": -1.0, "b": 0.0}
    threshold = metrics.best_null_threshold(examples, predictions, diffs)
    assert threshold < -1.0  # below every difference: both null, b right
    assert metrics.squad_scores(examples, predictions, diffs)["exact_match"] == 0.5


def _single_feature(encoder):
    context = "Paris is the capital of France."
    example = squad.SquadExample("q", "What is the capital of France?", context,
                                 (("Paris", 0),), False, "")
    features = squad.make_features([example], encoder, MAX_SEQ_LENGTH, DOC_STRIDE)
    offset = int(np.argmax(features.token_start_char[0] >= 0))  # first context position
    # Context tokens: paris is the capital of france . -> positions offset + 0..6.
    assert features.token_start_char[0, offset:offset + 8].tolist() == [
        0, 6, 9, 13, 21, 24, 30, -1]
    return example, features, offset


def test_postprocess_skips_invalid_spans(encoder):
    example, features, offset = _single_feature(encoder)
    paris, france = offset, offset + 5

    def best(starts, ends, **kwargs):
        start_logits = np.zeros(features.token_ids.shape, np.float32)
        end_logits = np.zeros(features.token_ids.shape, np.float32)
        for position, value in starts.items():
            start_logits[0, position] = value
        for position, value in ends.items():
            end_logits[0, position] = value
        predictions, diffs = metrics.postprocess([example], features, start_logits, end_logits,
                                                 **kwargs)
        return predictions["q"], diffs["q"]

    # The question tokens (1, 2) score highest but are not context: skipped.
    assert best({1: 9, paris: 5, france: 4}, {2: 9, france: 6, paris: 5}) == (
        "Paris is the capital of France", -11.0)  # null 0 - (5 + 6)
    # A 6-token span is too long for max_answer_length=3; the tie of the two 1-token spans
    # goes to the higher start logit's, "Paris".
    assert best({1: 9, paris: 5, france: 4}, {2: 9, france: 6, paris: 5},
                max_answer_length=3) == ("Paris", -10.0)
    # Spans of exactly max_answer_length tokens are allowed, longer ones are not.
    the = paris + 2
    assert best({paris: 5}, {the: 6, paris: 1}, max_answer_length=3)[0] == "Paris is the"
    assert best({paris: 5}, {the: 6, paris: 1}, max_answer_length=2)[0] == "Paris"
    # An end before the start is skipped: (France, Paris) scores 14, (France, France) 9.
    assert best({france: 7, paris: 1}, {paris: 7, france: 2}) == ("France", -9.0)
    # With n_best_size=1 only the (question token, question token) pair is tried: no answer,
    # and the span score is 0.0; the null score is start[0] + end[0].
    assert best({0: 1.5, 1: 9, paris: 5}, {0: 2.0, 2: 9, paris: 5}, n_best_size=1) == ("", 3.5)
    # The [CLS] position is never an answer.
    assert best({0: 9, paris: 1}, {0: 9, paris: 1}) == ("Paris", 18.0 - 2.0)


def _rows(features, rows):
    """The features at `rows` (e.g. those of one example)."""
    return squad.SquadFeatures(**{field.name: getattr(features, field.name)[rows]
                                  for field in dataclasses.fields(features)})


def test_postprocess_needs_the_start_in_its_max_context_window(encoder, dev):
    examples, features = dev["v1.1"]
    rows = np.flatnonzero(features.example_index == 0)
    row = rows[0]  # the first window: its last context tokens have more context in the next
    position = np.flatnonzero(features.token_start_char[row] >= 0)[-2]
    assert not features.token_is_max_context[row, position]
    start_logits = np.zeros(features.token_ids.shape, np.float32)
    end_logits = np.zeros(features.token_ids.shape, np.float32)
    start_logits[row, position] = end_logits[row, position] = 10.0
    span = examples[0].context[features.token_start_char[row, position]:
                               features.token_end_char[row, position]]
    first_example = _rows(features, rows)
    predictions, _ = metrics.postprocess(examples[:1], first_example, start_logits[rows],
                                         end_logits[rows])
    assert predictions[examples[0].qas_id] != span
    everywhere = dataclasses.replace(first_example,
                                     token_is_max_context=first_example.token_start_char >= 0)
    predictions, _ = metrics.postprocess(examples[:1], everywhere, start_logits[rows],
                                         end_logits[rows])
    assert predictions[examples[0].qas_id] == span


def test_null_score_is_the_lowest_over_windows(encoder, dev):
    examples, features = dev["v1.1"]
    rows = np.flatnonzero(features.example_index == 0)
    start_logits = np.zeros((len(rows), MAX_SEQ_LENGTH), np.float32)
    end_logits = np.zeros((len(rows), MAX_SEQ_LENGTH), np.float32)
    start_logits[:, 0] = np.arange(len(rows)) + 3.0  # [CLS] scores 3+1, 4+1, ...
    end_logits[:, 0] = 1.0
    context = np.flatnonzero(features.token_is_max_context[rows[1]])[0]
    start_logits[1, context] = end_logits[1, context] = 2.0  # best span: 4.0
    _, diffs = metrics.postprocess(examples[:1], _rows(features, rows), start_logits, end_logits)
    assert diffs[examples[0].qas_id] == pytest.approx(4.0 - 4.0)
    with pytest.raises(ValueError, match="do not match the features"):
        metrics.postprocess(examples[:1], _rows(features, rows), start_logits[:, :8],
                            end_logits[:, :8])


def test_oracle_logits_score_one_on_dev_v1(dev):
    examples, features = dev["v1.1"]
    start_logits, end_logits = _oracle_logits(features)
    predictions, _ = metrics.postprocess(examples, features, start_logits, end_logits)
    assert predictions == {e.qas_id: e.answers[0][0] for e in examples}
    assert metrics.evaluate_squad(examples, features, start_logits, end_logits, "v1.1") == {
        "exact_match": 1.0, "f1": 1.0}


def test_oracle_logits_score_one_on_dev_v2(dev):
    examples, features = dev["v2.0"]
    start_logits, end_logits = _oracle_logits(features)
    predictions, diffs = metrics.postprocess(examples, features, start_logits, end_logits)
    answerable = [e for e in examples if not e.is_impossible]
    impossible = [e for e in examples if e.is_impossible]
    assert len(answerable) == 11 and len(impossible) == 5
    # [CLS] +10 +10 in every window of an unanswerable question, -10 -10 in the answer's one.
    assert {diffs[e.qas_id] for e in impossible} == {20.0 - -20.0}
    assert {diffs[e.qas_id] for e in answerable} == {-20.0 - 20.0}
    assert all(predictions[e.qas_id] == e.answers[0][0] for e in answerable)
    scores = metrics.evaluate_squad(examples, features, start_logits, end_logits, "v2.0")
    assert scores == {"exact_match": 1.0, "f1": 1.0, "null_threshold": -40.0}
    # Answering everything gets only the 11 answerable questions right (the oracle's spans
    # for unanswerable ones may be "The" or ",", which normalize to "" and count as right).
    answered = {**predictions, **{e.qas_id: "Oslo" for e in impossible}}
    assert metrics.squad_scores(examples, answered, diffs, null_threshold=100.0) == {
        "exact_match": 11 / 16, "f1": 11 / 16, "null_threshold": 100.0}
    # v1.1 scoring ignores the null scores.
    assert metrics.squad_scores(examples, answered)["exact_match"] == 11 / 16
    with pytest.raises(ValueError, match="unknown SQuAD version 'v2'"):
        metrics.evaluate_squad(examples, features, start_logits, end_logits, "v2")
