"""The stage `augment` (with --augment): TinyBERT's data augmentation of the training split.

    WORKDIR/augment/augmented.tsv   index, label, text_a[, text_b]: every kept copy, in order
    WORKDIR/augment/counts.json     examples, copies kept, replaced / eligible word slots
    WORKDIR/augment/stage.json      the same with the file's size, as every stage

Stages width and width_depth then train on the original and the augmented examples
(`SentenceTaskData.augmented`); the teacher and the final fine-tune stay on the original
data, as in the paper. Candidates (`dynabert_tf/data/augmentation.py`) come from a masked
LM when --aug_mlm_checkpoint names a BERT checkpoint with its `cls.predictions` head, and
otherwise from the nearest words by the run's own input token embeddings (said in one log
line). Work is written in shards of `SHARD_EXAMPLES` (atomically), so a killed stage
resumes at its first missing shard; the copies of example i depend only on (--seed, i).

This module imports TensorFlow only inside the functions that need it (preflight calls
`check_inputs` before TensorFlow starts).
"""

import csv
import io
import os
import shutil

import numpy as np

from dynabert_tf.data import augmentation
from dynabert_tf.data.tasks import Example
from dynabert_tf.core import files, layout
from train import sources

SHARD_EXAMPLES = 256
TSV, COUNTS, SHARDS = "augmented.tsv", "counts.json", "shards"
_MLM_TENSOR = "cls.predictions.transform.dense.weight"


def check_inputs(augmentation, vocab_path):
    """--augment's inputs, before TensorFlow: a WordPiece vocabulary, and a readable
    --aug_mlm_checkpoint holding a masked-LM head. ValueError / FileNotFoundError, one line.

    Args:
      augmentation: `train.settings.Augmentation`.
      vocab_path: the run's vocabulary (`train.sources.vocab_path`).
    """
    if not vocab_path.endswith(".txt"):
        raise ValueError(f"--augment needs a WordPiece vocabulary (vocab.txt); {vocab_path} "
                         f"is a byte-level BPE (RoBERTa) vocabulary")
    path = augmentation.aug_mlm_checkpoint
    if not path:
        return
    if not os.path.isdir(path):
        raise FileNotFoundError(f"--aug_mlm_checkpoint {path} is not a directory")
    for name in (layout.CONFIG, layout.WORDPIECE_VOCAB, layout.WEIGHTS):
        if not os.path.isfile(os.path.join(path, name)):
            raise FileNotFoundError(f"--aug_mlm_checkpoint {path} has no {name}")
    import safetensors

    try:
        with safetensors.safe_open(os.path.join(path, layout.WEIGHTS), "numpy") as f:
            names = list(f.keys())
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
        raise ValueError(f"--aug_mlm_checkpoint {path}: model.safetensors is not readable "
                         f"({type(e).__name__})") from None
    if not any(name.endswith(_MLM_TENSOR) for name in names):
        raise ValueError(f"--aug_mlm_checkpoint {path} has no masked-LM head ({_MLM_TENSOR}"
                         f" missing); give a BertForMaskedLM / BertForPreTraining checkpoint")


def _tokenizer(encoder):
    """list of str -> list of lists of word-piece ids, through the run's tokenizer."""
    import tensorflow as tf

    def tokenize(words):
        return [list(row) for row in encoder.tokenize(tf.constant(words, tf.string)).to_list()]
    return tokenize


def candidate_finder(settings, data):
    """The `CandidateFinder` of the run: its MLM checkpoint's, or the init checkpoint's
    input embeddings (random ones under --random_init, seeded by the stage)."""
    from dynabert_tf.io import checkpoint
    from dynabert_tf.models.bert.mlm_head import MaskedLM
    from dynabert_tf.models.bert.tokenizer import BertInputEncoder

    if settings.aug_mlm_checkpoint:
        backbone, head = checkpoint.load_masked_lm(settings.aug_mlm_checkpoint)
        encoder = BertInputEncoder(os.path.join(settings.aug_mlm_checkpoint,
                                                layout.WORDPIECE_VOCAB),
                                   settings.max_seq_length)
        mlm = MaskedLM(backbone, head).logits_at
        print(f"[augment] candidates: masked-LM top-{settings.aug_candidates} of "
              f"{settings.aug_mlm_checkpoint} for one-piece words, nearest words by its input "
              f"embeddings otherwise")
    else:
        if settings.random_init:
            from dynabert_tf.models.backbone import DynaBertBackbone
            from dynabert_tf.presets import hf_config

            backbone = DynaBertBackbone.from_config_object(
                hf_config.read_config(sources.checkpoint_dir(settings.model)))
        else:
            backbone = checkpoint.load_backbone(sources.checkpoint_dir(settings.model))
        encoder, mlm = data.encoder, None
        print(f"[augment] {settings.init_checkpoint} has no masked-LM head: every word's "
              f"candidates are its {settings.aug_candidates} nearest words by cosine of the "
              f"model's input embeddings (--aug_mlm_checkpoint gives TinyBERT's MLM ones)")
    return augmentation.CandidateFinder(
        encoder.vocabulary, np.asarray(backbone.embeddings.token_embeddings),
        _tokenizer(encoder), settings.aug_candidates, mlm=mlm,
        mlm_max_length=min(2 * settings.max_seq_length, 512))


def _write_tsv(path, rows, pairs):
    """rows: [(index, Example)] -> a TSV with a header, written atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(["index", "label", "text_a"] + ["text_b"] * pairs)
    for index, example in rows:
        writer.writerow([index, example.label, example.text_a]
                        + [example.text_b] * pairs)
    files.write_atomic(path, buffer.getvalue(), mode="w")


def _read_rows(path, task):
    """[(index, Example)] of an augmented TSV (labels typed as the task's)."""
    label_type = float if task.is_regression else int
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader)
        pairs = len(header) == 4
        return [(int(row[0]), Example(row[2], row[3] if pairs else None, label_type(row[1])))
                for row in reader]


def run_augment(settings, data, runtime):
    """Augments the training split into WORKDIR/augment/ (module doc); returns the summary."""
    import keras

    out = settings.stage_dir("augment")
    examples = data.train_examples
    if not runtime.is_chief:  # the chief writes; the others read after the barrier
        return {"examples": len(examples)}
    if not os.path.isfile(os.path.join(out, TSV)):
        _augment_in_shards(settings, data, examples, out, keras.utils.Progbar)
    counts = files.read_json(os.path.join(out, COUNTS), COUNTS)
    return {**counts, "bytes": os.path.getsize(os.path.join(out, TSV))}


def _augment_in_shards(settings, data, examples, out, progbar):
    shard_dir = os.path.join(out, SHARDS)
    pairs = examples[0].text_b is not None
    augmenter = None
    bar = progbar(len(examples), unit_name="example",  # --progress as for model.fit
                  verbose={"0": 0, "2": 2}.get(settings.progress, 1))
    totals = {"kept": 0, "eligible": 0, "replaced": 0}
    for start in range(0, len(examples), SHARD_EXAMPLES):
        name = os.path.join(shard_dir, f"{start:08d}")
        if not os.path.isfile(name + ".json"):
            if augmenter is None:
                augmenter = augmentation.Augmenter(candidate_finder(settings, data),
                                                   settings.aug_replace_prob,
                                                   settings.aug_copies)
            result = augmenter.augment(examples[start:start + SHARD_EXAMPLES], settings.seed,
                                       first_index=start)
            _write_tsv(name + ".tsv", result.examples, pairs)
            files.write_json(name + ".json", {"kept": len(result.examples),
                                              "eligible": result.eligible,
                                              "replaced": result.replaced})
        for key, value in files.read_json(name + ".json").items():
            totals[key] += value
        bar.update(min(start + SHARD_EXAMPLES, len(examples)))
    shards = sorted(f for f in os.listdir(shard_dir) if f.endswith(".tsv"))
    rows = [row for shard in shards
            for row in _read_rows(os.path.join(shard_dir, shard), data.task)]
    files.write_json(os.path.join(out, COUNTS), {
        "examples": len(examples), "augmented_examples": totals["kept"],
        "candidate_source": "mlm" if settings.aug_mlm_checkpoint else "embedding",
        "replace_prob": settings.aug_replace_prob, "candidates": settings.aug_candidates,
        "copies": settings.aug_copies, "eligible_word_slots": totals["eligible"],
        "replaced_fraction": round(totals["replaced"] / max(1, totals["eligible"]), 4)})
    _write_tsv(os.path.join(out, TSV), rows, pairs)
    shutil.rmtree(shard_dir)


def read_augmented(settings, task, num_examples):
    """The augmented examples of WORKDIR/augment (complete), checked to come from the
    `num_examples` training examples of this run."""
    out = settings.stage_dir("augment")
    path = os.path.join(out, TSV)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--augment: {path} is missing; run --stages=augment first")
    made_from = files.read_json(os.path.join(out, COUNTS), COUNTS)["examples"]
    if made_from != num_examples:
        raise ValueError(f"{out} was made from {made_from} training examples, this run has "
                         f"{num_examples} (--max_train_examples changed?); delete {out} to "
                         f"augment again")
    return [example for _, example in _read_rows(path, task)]
