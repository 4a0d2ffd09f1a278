"""The task's examples and tf.data pipelines for one run, loaded once and shared by stages.

    data = task_data.load(settings)     # SentenceTaskData or SquadTaskData
    data.train_dataset(epoch), data.dev_sets, data.test_sets, data.importance_dataset()
"""

import copy
import functools
import math

from dynabert_tf import data as data_lib
from dynabert_tf import evaluation
from dynabert_tf.core import layout
from dynabert_tf.models.bert.tokenizer import BertInputEncoder
from dynabert_tf.models.roberta.tokenizer import RobertaInputEncoder
from dynabert_tf.presets.vocab import tokenizer_files
from train import sources


def make_encoder(vocab_path, max_seq_length):
    """The tokenizer of a vocabulary (`presets.vocab.tokenizer_files`): RoBERTa's byte-level BPE
    for a vocab.json (merges.txt beside it), BERT's WordPiece for a vocab.txt."""
    names = tokenizer_files(vocab_path)
    if layout.BPE_MERGES in names:
        return RobertaInputEncoder(vocab_path, names[layout.BPE_MERGES],
                                   max_seq_length)
    return BertInputEncoder(vocab_path, max_seq_length)


def load(settings):
    """The task data object for `settings.task`."""
    task = data_lib.get_task(settings.task)
    return SquadTaskData(settings) if task.source == "squad" else SentenceTaskData(settings)


class TaskData:
    """What every task shares: the task, its tokenizer, steps per epoch, saved metadata.

    Subclasses provide `train_examples` (whatever counts as one training row), `dev_sets`
    and `test_sets` ({split: `evaluation.EvalSet`}), `train_dataset(epoch)` and
    `_importance_batches()`.
    """

    def __init__(self, settings):
        self.settings = settings
        self.task = data_lib.get_task(settings.task)
        self.vocab_path = sources.vocab_path(settings.model)
        self.encoder = make_encoder(self.vocab_path, settings.max_seq_length)

    @property
    def steps_per_epoch(self):
        return math.ceil(len(self.train_examples) / self.settings.batch_size)

    def total_steps(self, epochs):
        return max(1, int(round(epochs * self.steps_per_epoch)))

    def _limit(self, examples, limit):
        return examples[:limit] if limit else examples

    def importance_dataset(self):
        """`--importance_batches` batches (0: all) of the data Taylor importance runs on."""
        batches = self.settings.importance_batches
        dataset = self._importance_batches()
        return dataset.take(batches) if batches else dataset

    def model_metadata(self, stage):
        """What a saved model's config.json records about the task and the run."""
        metadata = {"finetuning_task": self.task.name,
                    "max_seq_length": self.settings.max_seq_length,
                    "dynabert": {"stage": stage,
                                 "width_mults": list(self.settings.width_mults),
                                 "depth_mults": list(self.settings.depth_mults)}}
        if self.settings.hidden_on:
            metadata["dynabert"]["hidden_mults"] = list(self.settings.hidden_mults)
        if self.task.head_kind == "classification":
            metadata["id2label"] = {str(i): name for i, name in enumerate(self.task.label_names)}
            metadata["label2id"] = {name: i for i, name in enumerate(self.task.label_names)}
        return metadata


class SentenceTaskData(TaskData):
    """Sentence(-pair) classification and regression: GLUE and the built-in tasks."""

    def _load(self, split, limit):
        examples = data_lib.load_examples(self.task, split, data_dir=self.settings.data_dir,
                                          data_source=self.settings.data_source)
        return self._limit(examples, limit)

    @functools.cached_property
    def train_examples(self):
        return self._load("train", self.settings.max_train_examples)

    @functools.cache
    def _encoded(self, split):
        """`data.Encoded` of a split: tokenized once, re-batched by every epoch and every
        evaluation of the run."""
        examples = (self.train_examples if split == "train" else
                    {**self.dev_examples, **self.test_examples}[split])
        return data_lib.encode(examples, self.encoder)

    @functools.cached_property
    def dev_examples(self):
        """{split name: examples} — one split for most tasks, two for MNLI."""
        return {split: self._load(split, self.settings.max_eval_examples)
                for split in self.task.dev_splits}

    @functools.cached_property
    def test_examples(self):
        """{split: examples} of the labelled test splits (the built-in tasks; GLUE hides its
        test labels)."""
        if not self.task.has_test_labels:
            return {}
        return {split: self._load(split, self.settings.max_eval_examples)
                for split in self.task.test_splits}

    def train_dataset(self, epoch):
        """The training batches of `epoch`, shuffled by (seed, epoch): same order on resume."""
        return data_lib.batches(self._encoded("train"), self.settings.batch_size, shuffle=True,
                                seed=self.settings.seed + epoch, pad_to=self.settings.pad_to,
                                bucket_boundaries=self.settings.bucket_boundaries or None)

    def _eval_set(self, split):
        dataset = data_lib.batches(self._encoded(split), self.settings.eval_batch_size,
                                   pad_to=self.settings.pad_to)
        return evaluation.EvalSet.labelled(self.task, dataset)

    @functools.cached_property
    def dev_sets(self):
        """{split: EvalSet}, reused by every evaluation of the run."""
        return {split: self._eval_set(split) for split in self.dev_examples}

    @functools.cached_property
    def test_sets(self):
        return {split: self._eval_set(split) for split in self.test_examples}

    @functools.cached_property
    def augmented(self):
        """This data with WORKDIR/augment's copies added to the training split (--augment,
        stages width and width_depth); dev and test sets are shared, not rebuilt."""
        from train import augment

        extra = augment.read_augmented(self.settings, self.task, len(self.train_examples))
        _ = self.dev_sets, self.test_sets  # built once, before the copy shares them
        view = copy.copy(self)
        view.__dict__.pop("augmented", None)
        view.__dict__["train_examples"] = self.train_examples + extra
        return view

    def _importance_batches(self):
        split = ("train" if self.settings.importance_split == "train"
                 else self.task.dev_splits[0])
        return data_lib.batches(self._encoded(split), self.settings.batch_size,
                                pad_to=self.settings.pad_to)


class SquadTaskData(TaskData):
    """SQuAD v1.1 / v2.0: questions over paragraphs, one feature per document window.

    A training step's row is a feature (a window), so `train_examples` holds the features;
    dev is scored per question by EM / F1 after post-processing (`tasks/squad_metrics.py`).
    """

    def __init__(self, settings):
        super().__init__(settings)
        if not isinstance(self.encoder, BertInputEncoder):
            raise ValueError("SQuAD features need WordPiece character offsets; a RoBERTa "
                             "(byte-level BPE) checkpoint cannot run a SQuAD task yet")

    def _features(self, split, limit):
        from dynabert_tf.data import squad

        source = "tfds" if self.settings.data_source == "tfds" else "json"
        examples = self._limit(squad.load_squad_examples(
            self.task.squad_version, split, data_dir=self.settings.data_dir,
            data_source=source), limit)
        return examples, squad.make_features(
            examples, self.encoder, max_seq_length=self.settings.max_seq_length,
            doc_stride=self.settings.doc_stride, max_query_length=self.settings.max_query_length)

    @functools.cached_property
    def train_features(self):
        return self._features("train", self.settings.max_train_examples)[1]

    @property
    def train_examples(self):
        return self.train_features.token_ids

    def _dataset(self, features, batch_size, shuffle=False, seed=0):
        from dynabert_tf.data import squad

        return squad.make_dataset(features, batch_size, shuffle=shuffle, seed=seed)

    def train_dataset(self, epoch):
        return self._dataset(self.train_features, self.settings.batch_size, shuffle=True,
                             seed=self.settings.seed + epoch)

    @functools.cached_property
    def dev_sets(self):
        from dynabert_tf.tasks import squad_metrics

        examples, features = self._features("dev", self.settings.max_eval_examples)
        version = self.task.squad_version
        score = lambda outputs, _: squad_metrics.evaluate_squad(
            examples, features, outputs["start_logits"], outputs["end_logits"], version)
        return {"dev": evaluation.EvalSet(
            self._dataset(features, self.settings.eval_batch_size), score)}

    @property
    def test_sets(self):
        return {}

    def _importance_batches(self):
        return self._dataset(self.train_features, self.settings.batch_size)
