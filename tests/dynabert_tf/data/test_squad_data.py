import json
import os
import re
import time
import unicodedata

import numpy as np
import pytest
import tensorflow as tf

from dynabert_tf.data import squad, tfds_source
from dynabert_tf.tasks.squad_metrics import normalize_answer
from tests.helpers import SQUAD_DIR, minilm_encoder

FILES = ("train-v1.1", "dev-v1.1", "train-v2.0", "dev-v2.0")
# Small windows, so that every fixture context spans several of them.
MAX_SEQ_LENGTH, DOC_STRIDE = 64, 16


@pytest.fixture(scope="module")
def encoder():
    return minilm_encoder(MAX_SEQ_LENGTH)


@pytest.fixture(scope="module")
def fixture_examples():
    return {name: squad.read_squad_json(os.path.join(SQUAD_DIR, f"{name}.json"))
            for name in FILES}


@pytest.fixture(scope="module")
def fixture_features(encoder, fixture_examples):
    return {name: squad.make_features(examples, encoder, MAX_SEQ_LENGTH, DOC_STRIDE)
            for name, examples in fixture_examples.items()}


def _fold(text):
    """Lowercase without accents, as an uncased vocabulary sees `text`."""
    return "".join(c for c in unicodedata.normalize("NFD", text.lower())
                   if unicodedata.category(c) != "Mn")


def _write(path, content):
    with open(path, "w", encoding="utf-8") as f:
        f.write(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def _squad_json(qa, context="Paris is the capital of France."):
    return {"version": "1.1", "data": [{"title": "Paris", "paragraphs": [
        {"context": context, "qas": [qa]}]}]}


def test_fixture_files_are_read(fixture_examples):
    counts = {name: (len(examples), sum(e.is_impossible for e in examples))
              for name, examples in fixture_examples.items()}
    assert counts == {"train-v1.1": (16, 0), "dev-v1.1": (16, 0), "train-v2.0": (17, 5),
                      "dev-v2.0": (16, 5)}
    first = fixture_examples["dev-v1.1"][0]
    assert (first.qas_id, first.title, first.question) == (
        "d1q001", "Marie_Curie", "Where was Maria Skłodowska born?")
    assert first.answers == (("Warsaw", 37), ("in Warsaw", 34), ("Warsaw", 37))
    assert first.context.startswith("Maria Salomea Skłodowska was born in Warsaw")
    for examples in fixture_examples.values():
        assert len({e.qas_id for e in examples}) == len(examples)
        assert len({e.title for e in examples}) == 2 and len({e.context for e in examples}) >= 2
        for example in examples:
            assert bool(example.answers) != example.is_impossible
            assert all(example.context[start:start + len(text)] == text
                       for text, start in example.answers)
    dev = fixture_examples["dev-v1.1"]
    assert sum(len({text for text, _ in e.answers}) > 1 for e in dev) >= 10
    assert all(len(e.answers) == 1 for e in fixture_examples["train-v1.1"])


def test_load_squad_examples_from_json(fixture_examples, tmp_path):
    for name in FILES:
        split, version = name.split("-")
        assert squad.load_squad_examples(version, split, SQUAD_DIR) == fixture_examples[name]
    with pytest.raises(FileNotFoundError, match=re.escape(
            f"no SQuAD file at {os.path.join(tmp_path, 'dev-v2.0.json')}")):
        squad.load_squad_examples("v2.0", "dev", str(tmp_path))
    with pytest.raises(ValueError, match="needs data_dir .* train-v1.1.json"):
        squad.load_squad_examples("v1.1", "train")
    with pytest.raises(ValueError, match="unknown SQuAD version 'v2'"):
        squad.load_squad_examples("v2", "train", SQUAD_DIR)
    with pytest.raises(ValueError, match="SQuAD has no split 'test'"):
        squad.load_squad_examples("v1.1", "test", SQUAD_DIR)
    with pytest.raises(ValueError, match="unknown data_source 'csv'"):
        squad.load_squad_examples("v1.1", "dev", SQUAD_DIR, data_source="csv")


@pytest.mark.parametrize("content, message", [
    ('{"data": [', "is not valid JSON"),
    ({"data": [{"title": "t", "paragraphs": [{"qas": []}]}]},
     r"data\[0\].paragraphs\[0\]: missing key 'context'"),
    ({"data": [{"title": "t"}]}, r"data\[0\]: missing key 'paragraphs'"),
    ({"version": "1.1"}, r": missing key 'data'"),
    ({"data": 3}, r": unexpected layout"),
    (_squad_json({"id": "q1", "question": "Capital?",
                  "answers": [{"text": "France", "answer_start": 23}]}),
     r"data\[0\].paragraphs\[0\].qas\[0\]: answer 'France' is not at answer_start 23 of its "
     r"context \(found ' Franc'\)"),
    (_squad_json({"id": "q1", "question": "Capital?", "answers": [{"text": "Paris"}]}),
     "missing key 'answer_start'"),
    (_squad_json({"id": "q1", "question": "Capital?", "answers": []}),
     "no answers, and is_impossible is not true"),
    (_squad_json({"id": "q1", "question": "Capital?", "is_impossible": True,
                  "answers": [{"text": "Paris", "answer_start": 0}]}),
     "an unanswerable question has answers"),
    ({"data": [{"paragraphs": [{"context": "Paris.", "qas": [
        {"id": "q", "question": "a?", "answers": [{"text": "Paris", "answer_start": 0}]},
        {"id": "q", "question": "b?", "answers": [{"text": "Paris", "answer_start": 0}]}]}]}]},
     "question id 'q' appears twice"),
])
def test_malformed_json_names_the_file(tmp_path, content, message):
    path = _write(tmp_path / "train-v1.1.json", content)
    with pytest.raises(ValueError, match=f"{re.escape(path)}.*{message}"):
        squad.read_squad_json(path)


def test_tfds_offline_fails_fast_with_clear_message(tmp_path):
    if tfds_source.reachable("https://rajpurkar.github.io/"):
        pytest.skip("the SQuAD download host is reachable; the offline path cannot be shown")
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="tensorflow-datasets needs network access to download "
                                           "squad/v2.0.*--data_dir=<folder holding dev-v2.0.json>"):
        squad.load_squad_examples("v2.0", "dev", str(tmp_path), data_source="tfds")
    assert time.monotonic() - start < 20


def test_tfds_records_become_examples(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    context = "Paris is the capital of France."

    class PreparedSquadV2:  # the feature names of tfds' squad/v2.0
        def is_prepared(self):
            return True

        def as_dataset(self, split):
            assert split == "validation"
            return tf.data.Dataset.from_tensor_slices({
                "id": ["q1", "q2"], "title": ["Paris", "Paris"], "context": [context] * 2,
                "question": ["Capital of France?", "Capital of Spain?"],
                "answers": {"text": tf.ragged.constant([["Paris", "Paris"], []], tf.string),
                            "answer_start": tf.ragged.constant([[0, 0], []], tf.int32)},
                "plausible_answers": {"text": tf.ragged.constant([[], ["France"]], tf.string),
                                      "answer_start": tf.ragged.constant([[], [24]], tf.int32)},
                "is_impossible": [False, True]})

    names = []
    monkeypatch.setattr(tfds, "builder",
                        lambda name, data_dir=None: names.append(name) or PreparedSquadV2())
    examples = squad.load_squad_examples("v2.0", "dev", data_source="tfds")
    assert names == ["squad/v2.0"]
    assert examples == [
        squad.SquadExample("q1", "Capital of France?", context, (("Paris", 0), ("Paris", 0)),
                           False, "Paris"),
        squad.SquadExample("q2", "Capital of Spain?", context, (), True, "Paris")]


def test_context_tokens_match_the_encoder_and_carry_char_spans(encoder, fixture_examples):
    tricky = ["Café naïve Beyoncé's 1990s—\"quoted\" (U.S.A.) e-mail",
              "Straße cafe\u0301 a\xa0b 東京 x\u200by", "  spaced   out  ", ""]
    contexts = list({e.context for examples in fixture_examples.values() for e in examples})
    texts = contexts + tricky
    tokenized = squad.tokenize_contexts(texts, encoder)
    for text, tokens, expected in zip(texts, tokenized, encoder.tokenize(tf.constant(texts))):
        np.testing.assert_array_equal(tokens.ids, expected.numpy())
    for text, tokens in zip(contexts, tokenized):  # precomposed accents: exact piece spans
        pieces = [encoder.id_to_token(i).removeprefix("##") for i in tokens.ids]
        assert pieces == [_fold(text[s:e]) for s, e in zip(tokens.start_char, tokens.end_char)]
        assert np.all(tokens.start_char[1:] >= tokens.end_char[:-1])

    def spans(index):
        tokens = tokenized[len(contexts) + index]
        return [(encoder.id_to_token(i), texts[len(contexts) + index][s:e])
                for i, s, e in zip(tokens.ids, tokens.start_char, tokens.end_char)]

    assert spans(0)[:8] == [("cafe", "Café"), ("naive", "naïve"), ("beyonce", "Beyoncé"),
                            ("'", "'"), ("s", "s"), ("1990s", "1990s"), ("—", "—"), ('"', '"')]
    # Case folding lengthens "ß" and "e\u0301" loses its accent: pieces span the whole word.
    assert spans(1) == [("st", "Straße"), ("##ras", "Straße"), ("##se", "Straße"),
                        ("cafe", "cafe\u0301"), ("[UNK]", "a\xa0b"), ("東", "東"), ("京", "京"),
                        ("x", "x"), ("##y", "y")]  # the zero-width space is dropped
    assert spans(2) == [("spaced", "spaced"), ("out", "out")] and spans(3) == []


def _question_ids(encoder, examples):
    return [ids.numpy().tolist()
            for ids in encoder.tokenize(tf.constant([e.question for e in examples]))]


def test_feature_layout(encoder, fixture_examples, fixture_features):
    for name, features in fixture_features.items():
        examples = fixture_examples[name]
        n = len(features)
        assert n > 2 * len(examples)  # every context spans several 64-token windows
        for array in (features.token_ids, features.segment_ids, features.padding_mask,
                      features.token_start_char, features.token_end_char):
            assert array.shape == (n, MAX_SEQ_LENGTH) and array.dtype == np.int32
        assert features.token_is_max_context.shape == (n, MAX_SEQ_LENGTH)
        assert features.token_is_max_context.dtype == bool
        for array in (features.start_positions, features.end_positions, features.example_index):
            assert array.shape == (n,) and array.dtype == np.int32
        np.testing.assert_array_equal(np.unique(features.example_index), np.arange(len(examples)))
        assert np.all(np.diff(features.example_index) >= 0)
        questions = _question_ids(encoder, examples)
        for row in range(n):
            query = questions[features.example_index[row]]
            length = int(features.padding_mask[row].sum())
            context = len(query) + 2
            assert features.token_ids[row, :context].tolist() == (
                [encoder.cls_id] + query + [encoder.sep_id])
            assert features.token_ids[row, length - 1] == encoder.sep_id
            assert np.all(features.token_ids[row, length:] == encoder.pad_id)
            assert features.padding_mask[row].tolist() == [1] * length + [0] * (
                MAX_SEQ_LENGTH - length)
            assert features.segment_ids[row].tolist() == (
                [0] * context + [1] * (length - context) + [0] * (MAX_SEQ_LENGTH - length))
            in_context = np.flatnonzero(features.token_start_char[row] >= 0)
            np.testing.assert_array_equal(in_context, np.arange(context, length - 1))
            assert np.all(features.token_end_char[row, in_context] > 0)
            assert not features.token_is_max_context[row, features.token_start_char[row] < 0].any()


def test_windows_step_by_doc_stride_and_keep_max_context_once(encoder, fixture_examples,
                                                              fixture_features):
    examples, features = fixture_examples["dev-v1.1"], fixture_features["dev-v1.1"]
    questions = _question_ids(encoder, examples)
    contexts = squad.tokenize_contexts([e.context for e in examples], encoder)
    for index, tokens in enumerate(contexts):
        rows = np.flatnonzero(features.example_index == index)
        window = MAX_SEQ_LENGTH - len(questions[index]) - 3
        num_tokens = len(tokens.ids)
        assert len(rows) >= 2 and len(rows) == -(-(num_tokens - window) // DOC_STRIDE) + 1
        windows = []
        for k, row in enumerate(rows):
            in_context = features.token_start_char[row] >= 0
            span = slice(k * DOC_STRIDE, min(k * DOC_STRIDE + window, num_tokens))
            np.testing.assert_array_equal(features.token_ids[row, in_context], tokens.ids[span])
            np.testing.assert_array_equal(features.token_start_char[row, in_context],
                                          tokens.start_char[span])
            np.testing.assert_array_equal(features.token_end_char[row, in_context],
                                          tokens.end_char[span])
            windows.append((span.start, span.stop, features.token_is_max_context[row, in_context]))
        assert windows[-1][1] == num_tokens
        for token in range(num_tokens):  # BERT's _check_is_max_context, written out
            best, best_score, flags = None, None, []
            for k, (start, stop, max_context) in enumerate(windows):
                if start <= token < stop:
                    score = min(token - start, stop - 1 - token) + 0.01 * (stop - start)
                    if best_score is None or score > best_score:
                        best, best_score = k, score
                    flags.append((k, bool(max_context[token - start])))
            assert [k for k, flag in flags if flag] == [best]


def _answer_text(features, row, example):
    start, end = features.start_positions[row], features.end_positions[row]
    return example.context[features.token_start_char[row, start]:
                           features.token_end_char[row, end]]


@pytest.mark.parametrize("name", ["train-v1.1", "train-v2.0", "dev-v1.1", "dev-v2.0"])
def test_labels_point_at_the_answer_or_cls(fixture_examples, fixture_features, name):
    examples, features = fixture_examples[name], fixture_features[name]
    labelled = set()
    for row, index in enumerate(features.example_index):
        example = examples[index]
        start, end = features.start_positions[row], features.end_positions[row]
        if example.is_impossible:
            assert (start, end) == (0, 0)
            continue
        text, answer_start = example.answers[0]
        in_context = features.token_start_char[row] >= 0
        inside = (features.token_start_char[row, in_context].min() <= answer_start and
                  answer_start + len(text) <= features.token_end_char[row, in_context].max())
        if not inside:
            assert (start, end) == (0, 0)
            continue
        assert in_context[start] and in_context[end] and start <= end
        assert _answer_text(features, row, example) == text  # fixture answers are whole words
        assert normalize_answer(_answer_text(features, row, example)) == normalize_answer(text)
        labelled.add(index)
    assert labelled == {i for i, e in enumerate(examples) if not e.is_impossible}
    # Each answer is found in some windows and missed by others of the same question.
    assert 0 < np.mean(features.start_positions > 0) < 0.6


def test_answer_only_in_the_second_window(encoder, fixture_examples):
    bees = fixture_examples["train-v1.1"]
    early, late = bees[0], bees[4]
    assert late.answers[0][0] == "when autumn arrives" and late.context == early.context
    features = squad.make_features([early, late], encoder, max_seq_length=96, doc_stride=64)
    np.testing.assert_array_equal(features.example_index, [0, 0, 1, 1])  # two windows each
    assert features.token_ids.shape == (4, 96)
    labels = list(zip(features.start_positions.tolist(), features.end_positions.tolist()))
    assert labels[1] == (0, 0) and labels[2] == (0, 0)
    assert _answer_text(features, 0, early) == "more than 50,000"
    assert _answer_text(features, 3, late) == "when autumn arrives"
    # The late answer's tokens are the last ones of the second window, before its [SEP].
    assert labels[3][1] == features.padding_mask[3].sum() - 3  # "arrives", "."; "[SEP]"


def test_answer_next_to_punctuation_gets_only_its_tokens(encoder):
    context = "The lab (in Paris) was Curie's."
    examples = [squad.SquadExample("paren", "Where?", context, (("in Paris", 9),), False, ""),
                squad.SquadExample("owner", "Whose?", context, (("Curie", 23),), False, "")]
    features = squad.make_features(examples, encoder, MAX_SEQ_LENGTH, DOC_STRIDE)
    assert [_answer_text(features, row, example) for row, example in enumerate(examples)] == [
        "in Paris", "Curie"]  # not "(in Paris" nor "Curie'"


def test_question_is_cut_to_max_query_length(encoder, fixture_examples):
    example = fixture_examples["train-v1.1"][0]
    features = squad.make_features([example], encoder, MAX_SEQ_LENGTH, DOC_STRIDE,
                                   max_query_length=4)
    query = _question_ids(encoder, [example])[0]
    assert len(query) > 4
    assert features.token_ids[0, :6].tolist() == [encoder.cls_id] + query[:4] + [encoder.sep_id]
    assert features.segment_ids[0, 5] == 0 and features.segment_ids[0, 6] == 1
    with pytest.raises(ValueError, match=f"max_seq_length={len(query) + 3} leaves no room for "
                                         f"the context after question 't1q001' "
                                         f"\\({len(query)} tokens\\)"):
        squad.make_features([example], encoder, len(query) + 3, DOC_STRIDE)
    assert len(squad.make_features([example], encoder, len(query) + 4, DOC_STRIDE)) > 100
    with pytest.raises(ValueError, match="no examples"):
        squad.make_features([], encoder)


def test_make_dataset(fixture_features):
    features = fixture_features["train-v2.0"]
    batches = list(squad.make_dataset(features, batch_size=16))
    inputs, labels = batches[0]
    assert set(inputs) == {"token_ids", "segment_ids", "padding_mask"}
    assert set(labels) == {"start_positions", "end_positions", "feature_index"}
    for tensor in (*inputs.values(), *labels.values()):
        assert tensor.dtype == tf.int32
    assert inputs["token_ids"].shape == (16, MAX_SEQ_LENGTH)
    assert labels["start_positions"].shape == (16,)
    order = np.concatenate([labels["feature_index"] for _, labels in batches])
    np.testing.assert_array_equal(order, np.arange(len(features)))
    np.testing.assert_array_equal(inputs["segment_ids"], features.segment_ids[:16])
    np.testing.assert_array_equal(
        np.concatenate([labels["end_positions"] for _, labels in batches]), features.end_positions)

    def epoch(dataset):
        return np.concatenate([labels["feature_index"] for _, labels in dataset])

    shuffled = squad.make_dataset(features, batch_size=16, shuffle=True, seed=3)
    first, second = epoch(shuffled), epoch(shuffled)
    assert sorted(first) == list(range(len(features)))
    assert not np.array_equal(first, order) and not np.array_equal(first, second)
    np.testing.assert_array_equal(
        epoch(squad.make_dataset(features, batch_size=16, shuffle=True, seed=3)), first)
    inputs, labels = next(iter(shuffled))
    rows = labels["feature_index"].numpy()
    np.testing.assert_array_equal(inputs["token_ids"], features.token_ids[rows])
    np.testing.assert_array_equal(labels["start_positions"], features.start_positions[rows])
