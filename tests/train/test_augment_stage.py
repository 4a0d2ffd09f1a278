"""The masked-LM head loaded from a Hugging Face checkpoint, and the stage `augment`
(train/augment.py): its files, counts, resume after a kill, and the data width trains on."""

import csv
import json
import os

import numpy as np
import pytest
import safetensors.numpy
from scipy.special import erf

from dynabert_tf.data import augmentation
from dynabert_tf.io import checkpoint
from dynabert_tf.models.bert.mlm_head import MaskedLM
from dynabert_tf.presets import hf_config, hf_tensors
from tests.helpers import REPO_ROOT, TINY, random_inputs, tiny_backbone
from train import augment, task_data
from train.settings import Settings
from train.stages import run_stages



def _write_mlm_checkpoint(path, tied=True, head=True):
    """A random tiny BERT in the Hugging Face `BertForMaskedLM` layout; returns its head's
    tensors."""
    os.makedirs(path)
    rng = np.random.default_rng(0)
    hidden, vocab = TINY.hidden_size, TINY.vocab_size
    mlm = {"cls.predictions.transform.dense.weight": rng.normal(0, 0.3, (hidden, hidden)),
           "cls.predictions.transform.dense.bias": rng.normal(0, 0.1, hidden),
           "cls.predictions.transform.LayerNorm.weight": 1 + rng.normal(0, 0.1, hidden),
           "cls.predictions.transform.LayerNorm.bias": rng.normal(0, 0.1, hidden),
           "cls.predictions.bias": rng.normal(0, 0.5, vocab)}
    if not tied:
        mlm["cls.predictions.decoder.weight"] = rng.normal(0, 0.2, (vocab, hidden))
    mlm = {name: value.astype("float32") for name, value in mlm.items()}
    tensors = {**hf_tensors.backbone_tensors(tiny_backbone()), **(mlm if head else {})}
    safetensors.numpy.save_file(tensors, os.path.join(path, "model.safetensors"))
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(hf_config.to_hf_dict(TINY), f)
    with open(os.path.join(path, "vocab.txt"), "w") as f:
        f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                          + [f"w{i}" for i in range(TINY.vocab_size - 5)]) + "\n")
    return tensors


def test_masked_lm_head_matches_numpy(tmp_path):
    path = str(tmp_path / "mlm")
    tensors = _write_mlm_checkpoint(path)
    backbone, head = checkpoint.load_masked_lm(path)
    inputs = random_inputs(pad_last=0)
    positions = np.array([1, 4, 6])
    got = MaskedLM(backbone, head).logits_at(inputs["token_ids"], inputs["segment_ids"],
                                             inputs["padding_mask"], positions)
    sequence = np.asarray(backbone(inputs)["sequence_output"])
    x = sequence[np.arange(3), positions].astype("float64")
    p = "cls.predictions."
    x = x @ tensors[p + "transform.dense.weight"].T + tensors[p + "transform.dense.bias"]
    x = 0.5 * x * (1 + erf(x / np.sqrt(2)))  # exact GELU (TINY's hidden_act)
    x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-12)
    x = x * tensors[p + "transform.LayerNorm.weight"] + tensors[p + "transform.LayerNorm.bias"]
    decoder = tensors["bert.embeddings.word_embeddings.weight"]  # tied: no decoder.weight
    np.testing.assert_allclose(got, x @ decoder.T + tensors[p + "bias"], atol=2e-4)
    # A checkpoint with its own decoder matrix (untied) uses it.
    untied = _write_mlm_checkpoint(str(tmp_path / "untied"), tied=False)
    _, head = checkpoint.load_masked_lm(str(tmp_path / "untied"))
    np.testing.assert_array_equal(np.asarray(head.decoder), untied[p + "decoder.weight"])


def test_checkpoint_without_a_head_is_refused(tmp_path):
    path = str(tmp_path / "plain")
    _write_mlm_checkpoint(path, head=False)
    with pytest.raises(checkpoint.CheckpointError, match="has no masked-LM head"):
        checkpoint.load_masked_lm(path)
    settings = Settings(task="rt_polarity", workdir=str(tmp_path / "w"), augment=True,
                        aug_mlm_checkpoint=path)
    with pytest.raises(ValueError, match="has no masked-LM head"):
        augment.check_inputs(settings, os.path.join(path, "vocab.txt"))


def _settings(workdir, **overrides):
    values = dict(task="rt_polarity", workdir=workdir, random_init=True, vocab_file="minilm_l6",
                  init_checkpoint=os.path.join(REPO_ROOT, "configs", "tiny_bert"),
                  max_seq_length=32, max_train_examples=40, max_eval_examples=8, augment=True,
                  aug_copies=3, progress="0", stages=("width",))
    return Settings(**{**values, **overrides})


def _tsv(workdir):
    with open(os.path.join(workdir, "augment", augment.TSV), encoding="utf-8") as f:
        return list(csv.reader(f, delimiter="\t"))


def test_stage_writes_counts_resumes_and_feeds_width(tmp_path, monkeypatch):
    monkeypatch.setattr(augment, "SHARD_EXAMPLES", 16)  # 40 examples: 3 shards
    settings = _settings(str(tmp_path / "a"))
    assert settings.pipeline == ["augment", "width"]
    data = task_data.load(settings)
    summary = run_stages(settings, data, ["augment"])["augment"]
    rows = _tsv(settings.workdir)
    assert rows[0] == ["index", "label", "text_a"]
    assert summary["examples"] == 40 and summary["augmented_examples"] == len(rows) - 1 > 40
    assert summary["bytes"] == os.path.getsize(os.path.join(settings.workdir, "augment",
                                                            augment.TSV))
    assert summary["candidate_source"] == "embedding"
    assert abs(summary["replaced_fraction"] - 0.4) < 0.08  # ~700 slots: 4 sigma
    for index, label, text in rows[1:]:
        original = data.train_examples[int(index)]
        assert int(label) == original.label and text != original.text_a
    assert not os.path.exists(os.path.join(settings.workdir, "augment", augment.SHARDS))

    # Killed during its second shard, then run again: the same file as the unbroken run.
    resumed = _settings(str(tmp_path / "b"))
    real_augment = augmentation.Augmenter.augment
    calls = []

    class Killed(Exception):
        pass

    def dies_on_second_shard(self, examples, seed, first_index=0):
        calls.append(first_index)
        if calls == [0, 16]:
            raise Killed
        return real_augment(self, examples, seed, first_index)

    monkeypatch.setattr(augmentation.Augmenter, "augment", dies_on_second_shard)
    with pytest.raises(Killed):
        run_stages(resumed, data, ["augment"])
    shards = os.path.join(resumed.workdir, "augment", augment.SHARDS)
    assert sorted(os.listdir(shards)) == ["00000000.json", "00000000.tsv"]
    calls.clear()
    run_stages(resumed, data, ["augment"])
    assert calls == [16, 32]  # only the missing shards
    assert _tsv(resumed.workdir) == rows

    data.__dict__.update(dev_sets={}, test_sets={})  # not built here: tracing costs seconds
    view = data.augmented
    assert len(view.train_examples) == 40 + summary["augmented_examples"]
    assert view.train_examples[:40] == data.train_examples and view.dev_sets is data.dev_sets
    assert view.steps_per_epoch > data.steps_per_epoch
    with pytest.raises(ValueError, match="made from 40 training examples, this run has 30"):
        augment.read_augmented(settings, data.task, 30)  # --max_train_examples changed


def test_tsv_round_trips_pairs_quotes_and_regression_labels(tmp_path):
    from dynabert_tf.data.tasks import Example, get_task

    rows = [(0, Example('He said "fine" ,', "a '' b", 3.25)), (7, Example("x", "y", 0.0))]
    path = str(tmp_path / "a.tsv")
    augment._write_tsv(path, rows, pairs=True)
    assert augment._read_rows(path, get_task("stsb")) == rows
