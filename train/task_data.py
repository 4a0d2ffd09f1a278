"""The task's examples and tf.data pipelines for one run, loaded once and shared by stages."""

import functools
import math

from dynabert_tf import data as data_lib
from dynabert_tf.tokenization import BertInputEncoder


class TaskData:
    """Train/dev/test examples of `settings.task` and the datasets stages ask for."""

    def __init__(self, settings):
        self.settings = settings
        self.task = data_lib.get_task(settings.task)
        self.vocab_path = settings.resolved_vocab()
        self.encoder = BertInputEncoder(self.vocab_path, settings.max_seq_length)

    @property
    def regression(self):
        return self.task.is_regression

    @property
    def num_classes(self):
        return self.task.num_labels

    def _load(self, split, limit):
        examples = data_lib.load_examples(self.task, split, data_dir=self.settings.data_dir,
                                          data_source=self.settings.data_source)
        return examples[:limit] if limit else examples

    @functools.cached_property
    def train_examples(self):
        return self._load("train", self.settings.max_train_examples)

    @functools.cached_property
    def dev_examples(self):
        """{split name: examples} — one split for most tasks, two for MNLI."""
        return {split: self._load(split, self.settings.max_eval_examples)
                for split in self.task.dev_splits}

    @functools.cached_property
    def test_examples(self):
        """{split: examples} of the labelled test splits: the built-in tasks have them; GLUE
        hides its test labels, so a GLUE task has none."""
        if self.task.glue_dir is not None:
            return {}
        return {split: self._load(split, self.settings.max_eval_examples)
                for split in self.task.test_splits}

    @property
    def steps_per_epoch(self):
        return math.ceil(len(self.train_examples) / self.settings.batch_size)

    def total_steps(self, epochs):
        return max(1, int(round(epochs * self.steps_per_epoch)))

    def train_dataset(self, epoch):
        """The training batches of `epoch`, shuffled by (seed, epoch): same order on resume."""
        return data_lib.make_dataset(self.train_examples, self.encoder,
                                     self.settings.batch_size, shuffle=True,
                                     seed=self.settings.seed + epoch, pad_to=self.settings.pad_to,
                                     bucket_boundaries=self.settings.bucket_boundaries or None)

    def eval_dataset(self, examples):
        return data_lib.make_dataset(examples, self.encoder, self.settings.eval_batch_size,
                                     pad_to=self.settings.pad_to)

    @functools.cached_property
    def dev_datasets(self):
        """{split: dataset}, tokenized once and reused by every evaluation of the run."""
        return {split: self.eval_dataset(ex) for split, ex in self.dev_examples.items()}

    @functools.cached_property
    def test_datasets(self):
        return {split: self.eval_dataset(ex) for split, ex in self.test_examples.items()}

    def importance_dataset(self):
        split = self.settings.importance_split
        examples = (self.train_examples if split == "train"
                    else next(iter(self.dev_examples.values())))
        dataset = data_lib.make_dataset(examples, self.encoder, self.settings.batch_size,
                                        pad_to=self.settings.pad_to)
        batches = self.settings.importance_batches
        return dataset.take(batches) if batches else dataset

    def model_metadata(self, stage):
        """What a saved model's config.json records about the task and the run."""
        metadata = {"finetuning_task": self.task.name,
                    "max_seq_length": self.settings.max_seq_length,
                    "dynabert": {"stage": stage,
                                 "width_mults": list(self.settings.width_mults),
                                 "depth_mults": list(self.settings.depth_mults)}}
        if not self.regression:
            metadata["id2label"] = {str(i): name for i, name in enumerate(self.task.label_names)}
            metadata["label2id"] = {name: i for i, name in enumerate(self.task.label_names)}
        return metadata
