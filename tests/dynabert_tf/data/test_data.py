import os
import time

import numpy as np
import pytest
import tensorflow as tf

from dynabert_tf.io import assets
from dynabert_tf import data
from dynabert_tf.data import tfds_source
from dynabert_tf.models.bert.tokenizer import BertInputEncoder
from tests.helpers import FIXTURES_DIR

GLUE_DIR = os.path.join(FIXTURES_DIR, "glue")

# Expected labels of each fixture split (class indices in `task.label_names` order).
FIXTURE_LABELS = {
    ("cola", "train"): [1, 0, 1, 0], ("cola", "dev"): [1, 0, 1],
    ("sst2", "train"): [0, 0, 1, 1], ("sst2", "dev"): [1, 0, 1],
    ("mrpc", "train"): [1, 0, 1], ("mrpc", "dev"): [1, 0, 0, 1, 1],
    ("qqp", "train"): [0, 1, 0], ("qqp", "dev"): [0, 0, 1, 1, 0],
    ("stsb", "train"): [5.0, 3.8, 3.8, 2.6], ("stsb", "dev"): [5.0, 4.75, 0.0],
    ("mnli", "train"): [2, 1, 1, 0], ("mnli", "dev_matched"): [2, 0, 1],
    ("mnli", "dev_mismatched"): [0, 0, 2, 1, 2],
    ("qnli", "train"): [1, 1, 0], ("qnli", "dev"): [0, 1],
    ("rte", "train"): [1, 0, 0], ("rte", "dev"): [1, 0],
    ("wnli", "train"): [1, 1, 1, 0], ("wnli", "dev"): [0, 1, 1],
}


@pytest.fixture(scope="module")
def encoder():
    try:
        return BertInputEncoder(os.path.join(assets.minilm_dir(), "vocab.txt"), 32)
    except assets.AssetError as e:
        pytest.skip(f"real vocabulary unavailable: {e}")


@pytest.fixture(scope="module")
def movie_splits():
    try:
        return data.movie_review_splits()
    except assets.AssetError as e:
        pytest.skip(f"movie reviews unavailable: {e}")


def test_registry():
    assert set(data.TASKS) == {"cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte",
                               "wnli", "rt_polarity", "rt_rating", "squad_v1", "squad_v2"}
    assert {name: task.head_kind for name, task in data.TASKS.items()
            if task.head_kind != "classification"} == {
        "stsb": "regression", "rt_rating": "regression", "squad_v1": "span", "squad_v2": "span"}
    assert data.get_task("squad_v2").squad_version == "v2.0"
    for task in data.TASKS.values():
        assert task.primary_metric in task.metric_names
    assert data.get_task("mnli").dev_splits == ("dev_matched", "dev_mismatched")
    assert data.get_task("stsb").num_labels == 1 and data.get_task("mnli").num_labels == 3
    with pytest.raises(ValueError, match="unknown task 'sst-2'; known: cola, sst2, mrpc"):
        data.get_task("sst-2")


@pytest.mark.parametrize("task_name, split", sorted(FIXTURE_LABELS))
def test_glue_fixture_loads(task_name, split):
    task = data.get_task(task_name)
    examples = data.load_examples(task_name, split, data_dir=GLUE_DIR)
    assert [example.label for example in examples] == FIXTURE_LABELS[task_name, split]
    assert all(example.text_a for example in examples)
    assert all((example.text_b is not None) == (task.text_b is not None) for example in examples)
    label_type = float if task.is_regression else int
    assert all(type(example.label) is label_type for example in examples)


def test_glue_fields_are_read_verbatim():
    mrpc = data.load_examples("mrpc", "train", data_dir=GLUE_DIR)  # the header has a BOM
    assert mrpc[0].text_b.startswith('Referring to him as only " the witness "')
    cola = data.load_examples("cola", "train", data_dir=GLUE_DIR)
    assert cola[2].text_a == 'The "big" dog barked.'
    mnli = data.load_examples("mnli", "dev_matched", data_dir=GLUE_DIR)
    assert mnli[1].text_b.startswith("The Government Executive articles")
    # data_dir may also be the task folder itself, as in google-research/bert.
    assert data.load_examples("mrpc", "train", os.path.join(GLUE_DIR, "MRPC")) == mrpc


@pytest.mark.parametrize("task_name, split", [("sst2", "test"), ("cola", "test"),
                                              ("qqp", "test"), ("mnli", "test_matched")])
def test_test_splits_have_no_labels(task_name, split):
    examples = data.load_examples(task_name, split, data_dir=GLUE_DIR)
    assert examples and all(example.label is None for example in examples)


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


@pytest.mark.parametrize("task_name, folder, text, message", [
    ("sst2", "SST-2", "sentence\tlabel\nfine\t1\nbad row\t0\textra\n",
     "SST-2/train.tsv line 3: expected 2 columns, got 3"),
    ("sst2", "SST-2", "sentence\tlabel\nfine\t1\nbad label\tpositive\n",
     "SST-2/train.tsv line 3: bad label 'positive'; expected one of 0, 1"),
    ("stsb", "STS-B", "sentence1\tsentence2\tscore\na\tb\t4.2\nc\td\tn/a\n",
     "STS-B/train.tsv line 3: cannot parse 'n/a' as a number"),
    ("rte", "RTE", "index\tsentence1\tlabel\n0\ta\tentailment\n",
     "RTE/train.tsv line 1: header lacks column\\(s\\) sentence2"),
    ("cola", "CoLA", "gj04\t1\t\tfine.\ngj04\t1\tbroken\n",
     "CoLA/train.tsv line 2: expected 4 columns, got 3"),
    ("sst2", "SST-2", "", "SST-2/train.tsv line 1: empty file"),
])
def test_malformed_tsv_names_file_and_line(tmp_path, task_name, folder, text, message):
    _write(os.path.join(tmp_path, folder, "train.tsv"), text)
    with pytest.raises(ValueError, match=message):
        data.load_examples(task_name, "train", data_dir=str(tmp_path))


def test_missing_file_split_and_data_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"no train.tsv for task 'qnli' at {tmp_path}"):
        data.load_examples("qnli", "train", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="task 'sst2' has no split 'dev_matched'"):
        data.load_examples("sst2", "dev_matched", data_dir=GLUE_DIR)
    with pytest.raises(ValueError, match="needs data_dir"):
        data.load_examples("sst2", "train")
    with pytest.raises(ValueError, match="unknown data_source 'csv'"):
        data.load_examples("sst2", "train", data_dir=GLUE_DIR, data_source="csv")


def test_tfds_offline_fails_fast_with_clear_message(tmp_path):
    if tfds_source.reachable("https://dl.fbaipublicfiles.com/"):
        pytest.skip("the GLUE download host is reachable; the offline path cannot be shown")
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="tensorflow-datasets needs network access to "
                                           "download glue/sst2.*--data_source=tsv"):
        data.load_examples("sst2", "train", data_dir=str(tmp_path), data_source="tfds")
    assert time.monotonic() - start < 20


def test_tfds_labels_are_mapped_by_name(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")

    class PreparedMnli:  # tfds orders MNLI labels entailment, neutral, contradiction
        builder_config = None
        info = type("Info", (), {"features": {"label": tfds.features.ClassLabel(
            names=["entailment", "neutral", "contradiction"])}})()

        def is_prepared(self):
            return True

        def as_dataset(self, split):
            assert split == "validation_mismatched"
            return tf.data.Dataset.from_tensor_slices({
                "premise": ["p0", "p1", "p2"], "hypothesis": ["h0", "h1", "h2"],
                "label": np.array([0, 1, 2]), "idx": np.arange(3)})

    monkeypatch.setattr(tfds, "builder", lambda name, data_dir=None: PreparedMnli())
    examples = data.load_examples("mnli", "dev_mismatched", data_source="tfds")
    assert [e.label for e in examples] == [1, 2, 0]  # entailment, neutral, contradiction
    assert (examples[1].text_a, examples[1].text_b) == ("p1", "h1")


def test_movie_review_splits(movie_splits):
    sizes = {split: len(rows) for split, rows in movie_splits.items()}
    assert sizes == {"train": 8482, "dev": 1060, "test": 1061}  # 10,605 rows, 2 repeated texts
    texts = {split: {text for _, text in rows} for split, rows in movie_splits.items()}
    assert sum(map(len, texts.values())) == 10603  # disjoint, no duplicates
    assert data.movie_review_splits() == movie_splits  # deterministic
    assert all(-4 <= rating <= 4 for rows in movie_splits.values() for rating, _ in rows)


def test_rt_tasks_share_the_splits(movie_splits):
    for split, rows in movie_splits.items():
        polarity = data.load_examples("rt_polarity", split)
        rating = data.load_examples("rt_rating", split)
        assert [(e.label, e.text_a) for e in rating] == rows
        assert len(polarity) == sum(r != 0 for r, _ in rows) and len(polarity) < len(rows)
        labels = np.array([e.label for e in polarity])
        assert set(labels) == {0, 1} and 0.45 < labels.mean() < 0.55
        by_text = {text: r for r, text in rows}
        assert all((by_text[e.text_a] > 0) == (e.label == 1) for e in polarity)
    with pytest.raises(FileNotFoundError, match="no movie-review file at"):
        data.load_examples("rt_polarity", "train", data_dir="/nonexistent")


def _single(texts, labels):
    return [data.Example(text, None, label) for text, label in zip(texts, labels)]


def test_make_dataset_pads_to_max_or_longest(encoder):
    examples = _single(["a b", "a b c d e f", "hello", "one two three"], [0, 1, 0, 1])
    padded = list(data.make_dataset(examples, encoder, batch_size=2, pad_to="max"))
    longest = list(data.make_dataset(examples, encoder, batch_size=2, pad_to="longest"))
    assert [f["token_ids"].shape for f, _ in padded] == [(2, 32), (2, 32)]
    assert [f["token_ids"].shape for f, _ in longest] == [(2, 8), (2, 5)]
    for (dense, labels), (short, short_labels) in zip(padded, longest):
        width = short["token_ids"].shape[1]
        for name in ("token_ids", "segment_ids", "padding_mask"):
            assert short[name].dtype == tf.int32
            np.testing.assert_array_equal(short[name], dense[name][:, :width])
        assert labels.dtype == tf.int32 and labels.numpy().tolist() == short_labels.numpy().tolist()
    np.testing.assert_array_equal(longest[0][0]["padding_mask"].numpy().sum(1), [4, 8])


def test_make_dataset_pairs_regression_and_unlabelled(encoder):
    pairs = [data.Example("a man", "a person", 4.5), data.Example("a cat", "a car", 0.5)]
    features, labels = next(iter(data.make_dataset(pairs, encoder, 2, pad_to="longest")))
    assert labels.dtype == tf.float32 and labels.numpy().tolist() == [4.5, 0.5]
    assert features["segment_ids"].numpy().tolist()[0] == [0, 0, 0, 0, 1, 1, 1]
    unlabelled = _single(["x", "y z"], [None, None])
    features = next(iter(data.make_dataset(unlabelled, encoder, 8)))
    assert isinstance(features, dict) and features["token_ids"].shape == (2, 32)
    with pytest.raises(ValueError, match="mix single sentences and pairs"):
        data.make_dataset(pairs + unlabelled, encoder, 2)
    with pytest.raises(ValueError, match="pad_to must be 'max' or 'longest'"):
        data.make_dataset(pairs, encoder, 2, pad_to="batch")


def test_make_dataset_shuffles_deterministically_and_covers_every_example(encoder):
    examples = _single([f"sentence number {i}" for i in range(50)], list(range(50)))
    dataset = data.make_dataset(examples, encoder, 8, shuffle=True, seed=3, drop_remainder=True)
    epoch_1 = np.concatenate([labels for _, labels in dataset])
    epoch_2 = np.concatenate([labels for _, labels in dataset])
    again = data.make_dataset(examples, encoder, 8, shuffle=True, seed=3, drop_remainder=True)
    assert len(epoch_1) == 48 and len(set(epoch_1)) == 48
    assert not np.array_equal(epoch_1, np.arange(48)) and not np.array_equal(epoch_1, epoch_2)
    np.testing.assert_array_equal(np.concatenate([labels for _, labels in again]), epoch_1)
    ordered = data.make_dataset(examples, encoder, 16)
    np.testing.assert_array_equal(np.concatenate([y for _, y in ordered]), np.arange(50))


def test_one_encoding_serves_every_epoch(encoder, monkeypatch):
    """`encode` tokenizes once; `batches` of it equals `make_dataset`, epoch after epoch."""
    examples = _single([f"sentence number {i}" for i in range(20)], list(range(20)))
    calls = []
    original = encoder.encode_unpadded
    monkeypatch.setattr(encoder, "encode_unpadded", lambda *a: calls.append(1) or original(*a))
    encoded = data.encode(examples, encoder)
    for seed in (1, 2):
        fresh = data.make_dataset(examples, encoder, 8, shuffle=True, seed=seed, pad_to="longest")
        reused = data.batches(encoded, 8, shuffle=True, seed=seed, pad_to="longest")
        for (f1, y1), (f2, y2) in zip(fresh, reused):
            np.testing.assert_array_equal(y1, y2)
            np.testing.assert_array_equal(f1["token_ids"], f2["token_ids"])
    assert len(calls) == 3  # one encode + one per make_dataset


def test_bucketing_on_real_sentences(encoder, movie_splits):
    encoder = BertInputEncoder(encoder.vocab_path, 128)
    examples = data.load_examples("rt_polarity", "dev")
    plain = data.make_dataset(examples, encoder, 32, pad_to="longest")
    bucketed = data.make_dataset(examples, encoder, 32, pad_to="longest",
                                 bucket_boundaries=[16, 24])
    plain_tokens = sum(f["token_ids"].shape[0] * f["token_ids"].shape[1] for f, _ in plain)
    bucketed_batches = list(bucketed)
    bucketed_tokens = sum(f["token_ids"].shape[0] * f["token_ids"].shape[1]
                          for f, _ in bucketed_batches)
    assert sum(len(labels) for _, labels in bucketed_batches) == len(examples)
    assert bucketed_tokens < plain_tokens < len(examples) * 128 / 2
    real_tokens = sum(int(f["padding_mask"].numpy().sum()) for f, _ in bucketed_batches)
    assert 15 < real_tokens / len(examples) < 40  # ~27 tokens per snippet
