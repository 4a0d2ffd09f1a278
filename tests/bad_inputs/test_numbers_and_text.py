r"""Finite numbers and text that is text (issue 26, cases 4, 8, 9 and 12's vocabulary part).

Data readers refuse a non-finite score with the file and line, before TensorFlow starts;
a metric that comes out non-finite is an error naming the cell, split and metric, never a
bare NaN in the grid json; NUL and other control characters are dropped, the rest of the
sentence kept, by both tokenizers as by Hugging Face's BertTokenizer; a byte that is not UTF-8
names the file, line and byte offset; a vocabulary token listed twice names the file, the token
and both lines, from preflight before TensorFlow starts.

Readers and tokenizers run in-process; `train.run` runs in a subprocess only where "before
TensorFlow" is the point.
"""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from dynabert_tf import data, evaluation
from dynabert_tf.core import text_files
from dynabert_tf.data import squad_json
from dynabert_tf.presets import vocab as vocab_lib
from mobile.runtime.tokenizer import WordPieceEncoder
from tests.helpers import FIXTURES_DIR, REPO_ROOT, minilm_encoder
from tests.test_bad_inputs import _run_train_subprocess, check_one_line, snapshot

GLUE_DIR = os.path.join(FIXTURES_DIR, "glue")
STSB_HEADER = "\t".join(["index", "genre", "filename", "year", "old_index", "source1",
                          "source2", "sentence1", "sentence2", "score"]) + "\n"


def _stsb_row(index, score):
    return f"{index}\tmain\tMSRvid\t2012\t{index:04d}\tnone\tnone\tA man.\tA person.\t{score}\n"


def _write(path, content):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb" if isinstance(content, bytes) else "w") as f:
        f.write(content)


def _stsb_dir(root, split, bad_score, bad_line=4):
    """A GLUE folder whose STS-B `split` has `bad_score` on line `bad_line`."""
    rows = [_stsb_row(i, bad_score if i + 2 == bad_line else "3.5") for i in range(4)]
    _write(os.path.join(root, "STS-B", f"{split}.tsv"), STSB_HEADER + "".join(rows))
    return root


# --------------------------------------------------------------------- case 4: finite numbers

@pytest.mark.parametrize("split", ["train", "dev"])
@pytest.mark.parametrize("score", ["inf", "nan", "-inf", "NaN", "Infinity"])
def test_non_finite_score_names_file_and_line(tmp_path, split, score):  # issue case 4
    root = _stsb_dir(str(tmp_path), split, score, bad_line=4)
    with pytest.raises(ValueError) as error:
        data.load_examples("stsb", split, data_dir=root)
    assert str(error.value) == (f"STS-B/{split}.tsv line 4: score {score!r} is not a "
                                f"finite number")


def test_finite_scores_still_load(tmp_path):  # issue case 4: the check refuses only those
    root = _stsb_dir(str(tmp_path), "dev", "1e3", bad_line=4)
    assert [e.label for e in data.load_examples("stsb", "dev", data_dir=root)] == \
        [3.5, 3.5, 1000.0, 3.5]


@pytest.mark.parametrize("rating", ["nan", "inf"])
def test_non_finite_movie_review_rating(tmp_path, rating):  # issue case 4
    path = str(tmp_path / "reviews.tsv")
    _write(path, "0\t1.5\tgood\n1\t-2.0\tbad\n2\t" + rating + "\tworse\n")
    with pytest.raises(ValueError, match=f"^reviews.tsv line 3: rating '{rating}' is not a "
                                         f"finite number$"):
        data.movie_review_splits(path)


def test_examples_built_by_hand_with_a_nan_label(tmp_path):  # issue case 4
    vocab = str(tmp_path / "vocab.txt")
    _write(vocab, "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]) + "\n")
    from dynabert_tf.models.bert.tokenizer import BertInputEncoder

    examples = [data.Example("a", None, 1.0), data.Example("b", None, float("nan"))]
    with pytest.raises(ValueError, match="^example 1: label nan is not a finite number$"):
        data.encode(examples, BertInputEncoder(vocab, 8))


def _metrics(logits_by_split, labels):
    """evaluate_cell's own loop over STS-B splits whose model outputs are given: each row's
    inputs carry its index, and the forward looks its logits up."""
    rows = np.arange(len(labels), dtype=np.int32)[:, None]
    features = {"token_ids": rows, "segment_ids": rows * 0, "padding_mask": rows * 0 + 1}
    results = {}
    for split, logits in logits_by_split.items():
        dataset = tf.data.Dataset.from_tensor_slices((features, labels)).batch(4)
        forward = lambda inputs, table=logits: {
            "logits": tf.gather(table, inputs["token_ids"][:, 0])}
        results.update(evaluation.evaluate_cell(
            None, {split: evaluation.EvalSet.labelled("stsb", dataset)}, forward=forward,
            cell="w0.50_d1.00"))
    return results


def test_non_finite_metric_is_an_error_naming_cell_split_and_metric():  # issue case 4
    labels = np.array([0.5, 1.0, 2.0, 3.0], np.float32)
    good = np.array([[0.1], [0.9], [2.2], [2.9]], np.float32)
    assert _metrics({"dev": good}, labels)["pearson"] > 0.9
    diverged = np.array([[np.nan], [0.9], [2.2], [2.9]], np.float32)
    with pytest.raises(ValueError) as error:
        _metrics({"dev": good, "test": diverged}, labels)
    assert str(error.value) == ("cell w0.50_d1.00, test: metric pearson is nan, not a finite "
                                "number; the model's outputs are not finite (weights diverged "
                                "or not loaded?)")
    # Constant predictions are a correlation of 0.0 (tasks.metrics), not an error.
    constant = np.full((4, 1), 0.5, np.float32)
    assert _metrics({"dev": constant}, labels) == {"pearson": 0.0, "spearman": 0.0}


def test_strict_json_squad_file(tmp_path):  # issue case 4: NaN is not JSON
    path = str(tmp_path / "dev-v1.1.json")
    _write(path, '{"data": [{"title": "t", "paragraphs": [{"context": "Paris", "qas": '
                 '[{"id": "q", "question": "Where?", "answers": [{"text": "Paris", '
                 '"answer_start": NaN}]}]}]}]}')
    with pytest.raises(ValueError, match="dev-v1.1.json is not valid JSON: NaN is not a JSON "
                                         "number"):
        squad_json.read_squad_json(path)


# ------------------------------------------------ case 8: NUL and control characters in text

@pytest.fixture(scope="module")
def encoders():
    """(training-side BertInputEncoder, run-time WordPieceEncoder, vocab path) on MiniLM's
    real vocabulary."""
    training = minilm_encoder(32)
    with open(training.vocab_path, "rb") as f:
        runtime = WordPieceEncoder(f.read(), 32)
    return training, runtime, training.vocab_path


def _training_ids(encoder, texts):
    return encoder.tokenize(tf.constant(texts)).to_list()


def test_nul_inside_a_word_keeps_the_sentence(encoders):  # issue case 8
    training, runtime, _ = encoders
    clean = runtime.tokenize("a charming film")
    assert len(clean) == 3  # "a", "charming", "film"
    assert runtime.tokenize("a char\x00ming film") == clean
    assert _training_ids(training, ["a char\x00ming film", "a charming film"]) == [clean, clean]
    packed = training(tf.constant(["a char\x00ming film"]))
    assert packed["token_ids"][0].numpy().tolist() == \
        runtime.encode("a char\x00ming film").token_ids


SENTENCES = [
    "a char\x00ming film", "A CHAR\x01MING, Film!", "Café naïve résumé\x7f of the crème",
    "tab\tnew\nline\rreturn", "zero\u200bwidth and soft\xadhyphen", "bell\x07 and \x1b[31m red",
    "replacement \ufffd char", "It's (really) \"good\"... isn't it?", "NUL at the end\x00",
    "\x00", "Hello\x85World", "ÉCOLE Zoë's DÉJÀ-VU\x0b\x0cform feed", "",
]


def test_both_tokenizers_agree_with_hugging_face(encoders):  # issue case 8
    training, runtime, vocab_path = encoders
    transformers = pytest.importorskip("transformers")
    reference = transformers.BertTokenizer(vocab_path, do_lower_case=True)
    expected = [reference.encode(text, add_special_tokens=False) for text in SENTENCES]
    assert [runtime.tokenize(text) for text in SENTENCES] == expected
    assert _training_ids(training, SENTENCES) == expected


def test_roberta_keeps_the_sentence_after_a_nul():  # issue case 8
    from dynabert_tf.models.roberta.tokenizer import RobertaInputEncoder

    root = os.path.join(REPO_ROOT, "configs", "tiny_roberta")
    encoder = RobertaInputEncoder(os.path.join(root, "vocab.json"),
                                  os.path.join(root, "merges.txt"), 16)
    nul, clean, ctrl = encoder.tokenize(tf.constant(
        ["a char\x00ming film", "a charming film", "a char\x01ming film"])).to_list()
    assert nul == clean  # byte-level BPE keeps other control characters as bytes
    assert len(ctrl) > len(clean)


def test_squad_context_spans_cover_the_original_text(encoders):  # issue case 8
    training, runtime, _ = encoders
    from dynabert_tf.data import squad

    context = "a char\x00ming film\x07 ends"
    tokens = squad.tokenize_contexts([context], training)[0]
    assert tokens.ids.tolist() == runtime.tokenize(context) == runtime.tokenize(
        "a charming film ends")
    assert [context[s:e] for s, e in zip(tokens.start_char, tokens.end_char)] == \
        ["a", "char\x00ming", "film", "ends"]


def test_control_characters_in_a_data_file_are_kept_as_text(tmp_path):  # issue case 8
    _write(str(tmp_path / "SST-2" / "train.tsv"),
           "sentence\tlabel\na char\x00ming film\t1\nbell\x07 here\t0\n")
    examples = data.load_examples("sst2", "train", data_dir=str(tmp_path))
    assert [e.text_a for e in examples] == ["a char\x00ming film", "bell\x07 here"]


# --------------------------------------------------------------- case 9: invalid UTF-8 in files

def test_invalid_utf8_in_a_glue_file_names_file_line_and_byte(tmp_path):  # issue case 9
    _write(str(tmp_path / "SST-2" / "dev.tsv"),
           b"sentence\tlabel\nfine\t1\ncaf\xe9 au lait\t0\n")
    with pytest.raises(ValueError) as error:
        data.load_examples("sst2", "dev", data_dir=str(tmp_path))
    assert str(error.value) == ("SST-2/dev.tsv line 3: byte 0xe9 at byte offset 3 of the line "
                                "is not valid UTF-8")


def test_invalid_utf8_after_multibyte_text_counts_bytes(tmp_path):  # issue case 9
    path = str(tmp_path / "reviews.tsv")
    _write(path, "0\t1.5\tgood\n".encode() + "1\t2.0\tnaïve ".encode() + b"\xff\n")
    with pytest.raises(ValueError, match="^reviews.tsv line 2: byte 0xff at byte offset 13 of "
                                         "the line is not valid UTF-8$"):
        data.movie_review_splits(path)


def test_invalid_utf8_in_a_squad_file_and_a_vocabulary(tmp_path):  # issue case 9
    squad = str(tmp_path / "train-v1.1.json")
    _write(squad, b'{"data": [\n  {"title": "\xc3("}]}')
    with pytest.raises(ValueError) as error:
        squad_json.read_squad_json(squad)
    assert str(error.value) == f"{squad} line 2: byte 0xc3 at byte offset 13 of the line is " \
                               f"not valid UTF-8"
    vocab = str(tmp_path / "vocab.txt")
    _write(vocab, b"[PAD]\n[UNK]\nbad\x80token\n")
    with pytest.raises(ValueError) as error:
        vocab_lib.read_wordpiece_vocab(vocab)
    assert str(error.value) == f"vocabulary {vocab} line 3: byte 0x80 at byte offset 3 of the " \
                               f"line is not valid UTF-8"


def test_decode_utf8_reports_the_first_bad_byte():  # issue case 9
    assert text_files.decode_utf8("\ufeffok\n".encode(), "f") == "ok\n"  # BOM dropped
    with pytest.raises(ValueError, match="^f line 1: byte 0xe2 at byte offset 1 of"):
        text_files.decode_utf8(b"a\xe2\x82", "f")  # truncated multi-byte character


# ------------------------------------------------------ case 12: duplicate vocabulary tokens

def test_duplicate_vocabulary_token_names_file_token_and_lines(tmp_path):  # issue case 12
    vocab = str(tmp_path / "vocab.txt")
    _write(vocab, "[PAD]\n[UNK]\n[CLS]\nfilm\n[SEP]\nfilm\n")
    message = (f"vocabulary {vocab} line 6: token 'film' is already on line 4; tokens must "
               f"be unique")
    with pytest.raises(ValueError) as error:
        vocab_lib.read_wordpiece_vocab(vocab)
    assert str(error.value) == message
    from dynabert_tf.models.bert.tokenizer import BertInputEncoder

    with pytest.raises(ValueError) as error:  # library users get the same line
        BertInputEncoder(vocab, 16)
    assert str(error.value) == message


# ----------------------------- cases 4, 9, 12: train.run answers before TensorFlow starts

@pytest.fixture(scope="module")
def minilm_vocab():
    return minilm_encoder(8).vocab_path


@pytest.mark.parametrize("case", ["nan_in_train_tsv", "invalid_utf8_dev_tsv",
                                  "duplicate_vocab_token"])
def test_train_run_refuses_before_tensorflow(tmp_path, minilm_vocab, case):  # cases 4, 9, 12
    glue = str(tmp_path / "glue")
    shutil.copytree(os.path.join(GLUE_DIR, "STS-B"), os.path.join(glue, "STS-B"))
    args = ["--flagfile=configs/stsb.flags", "--flagfile=configs/smoke_glue.flags",
            f"--data_dir={glue}", f"--workdir={tmp_path / 'work'}"]
    if case == "nan_in_train_tsv":  # issue case 4 / 9: not "the loss is nan at step 1"
        _stsb_dir(glue, "train", "nan", bad_line=3)
        phrase = "STS-B/train.tsv line 3: score 'nan' is not a finite number"
    elif case == "invalid_utf8_dev_tsv":  # issue case 9
        with open(os.path.join(glue, "STS-B", "dev.tsv"), "ab") as f:
            f.write(_stsb_row(9, "1.0").replace("A man.", "A m\xe9n.").encode("latin-1"))
        phrase = "STS-B/dev.tsv line 5: byte 0xe9 at byte offset"
    else:  # issue case 12
        vocab = str(tmp_path / "vocab.txt")
        with open(minilm_vocab) as source:
            tokens = source.read().splitlines()
        _write(vocab, "\n".join(tokens + ["the"]) + "\n")
        args.append(f"--vocab_file={vocab}")
        phrase = (f"vocabulary {vocab} line {len(tokens) + 1}: token 'the' is already on line "
                  f"{tokens.index('the') + 1}")
    before = snapshot(str(tmp_path))
    code, stdout, stderr, _ = _run_train_subprocess(*args)
    check_one_line(code, stderr, phrase)
    assert stdout.strip().splitlines()[-1] == "no tensorflow"
    assert snapshot(str(tmp_path)) == before  # no workdir made, no data file touched


def test_every_json_reader_is_strict(tmp_path):
    # issue case 4: a bare NaN in a JSON file the project reads (eval_grid.json, manifest.json,
    # run.json go through core.files.read_json) is refused naming the file, not parsed.
    from dynabert_tf.core import files

    path = tmp_path / "eval_grid.json"
    path.write_text('{"cells": {"w1.00_d1.00": {"metrics": {"pearson": NaN}}}}')
    with pytest.raises(ValueError, match=r"eval_grid.json is not valid JSON: NaN is not a JSON"):
        files.read_json(str(path))
    path.write_bytes(b'{"task": "caf\xe9"}\n')
    with pytest.raises(ValueError, match=r"eval_grid.json line 1: byte 0xe9"):
        files.read_json(str(path))
    path.write_text('{"task": "rt_polarity", "x": 1.5}')
    assert files.read_json(str(path)) == {"task": "rt_polarity", "x": 1.5}
