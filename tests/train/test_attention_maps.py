"""train.attention_maps: one PNG per cell, the drawn matrices are the models' attention, heads
and layers a cell does not run are reported, bad input is one line."""

import os

import keras
import matplotlib.image
import numpy as np
import pytest

from dynabert_tf.io import checkpoint
from helpers import TINY_DEEP, tiny_classifier
from train import attention_maps

SENTENCE = "the movie was not very good ."
TOKENS = ["[CLS]", "the", "movie", "was", "not", "very", "good", ".", "[SEP]"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """WORKDIR/final and WORKDIR/rewire: two different random 4-layer models, 4 heads."""
    root = str(tmp_path_factory.mktemp("attention_maps"))
    vocab = os.path.join(root, "vocab_src.txt")
    tokens = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]",
                                                                  "[MASK]"]
    tokens += ["the", "a", "movie", "film", "good", "bad", "great", "boring", "is", "was",
               "not", "very", "fun", "dull", ".", ","]
    with open(vocab, "w") as f:
        f.write("\n".join(tokens) + "\n")
    for seed, stage in ((0, "final"), (1, "rewire")):
        keras.utils.set_random_seed(seed)
        checkpoint.save_task_model(tiny_classifier(config=TINY_DEEP), os.path.join(root, stage),
                                   vocab, {"dynabert": {"width_mults": [1.0, 0.25],
                                                        "depth_mults": [0.5]}})
    return root


def _attention(model, inputs, width_mult, depth_mult):
    """{layer: [heads, 9, 9]} attention probabilities of SENTENCE, computed directly."""
    out = model(inputs, width_mult=width_mult, depth_mult=depth_mult, return_dict=True)
    layers = (0, 1, 2, 3) if depth_mult == 1.0 else (0, 2)
    return {layer: p.numpy()[0] for layer, p in zip(layers, out["attention_probs"])}


def test_one_png_per_cell_and_the_drawn_matrices_are_the_attention(workdir, tmp_path, capsys):
    out = str(tmp_path / "maps")
    results = attention_maps.main([
        "attention_maps", f"--model_dir={workdir}", f"--sentence={SENTENCE}", "--layers=0,3",
        "--heads=0,1", f"--output_dir={out}"])
    printed = capsys.readouterr().out.splitlines()
    # --cells=all: the grid config.json records (widths 1, 0.25 x depth 0.5), one PNG each
    names = ["w1.00_d0.50", "w0.25_d0.50"]
    assert [r["cell"] for r in results] == names
    assert sorted(os.listdir(out)) == sorted([".lock", *(f"attention_{n}.png" for n in names)])
    image = matplotlib.image.imread(os.path.join(out, "attention_w0.25_d0.50.png"))
    assert image.ndim == 3 and min(image.shape[:2]) > 200
    assert [line for line in printed if line.startswith("w0.25")] == [
        "w0.25_d0.50: head 1 is not kept at width 0.25 (1 of 4 heads)",
        "w0.25_d0.50: layer 3 does not run at depth 0.5 (kept layers 0,2)"]

    with open(os.path.join(workdir, "final", "vocab.txt")) as f:
        vocab = f.read().split()
    ones = np.ones((1, len(TOKENS)), "int32")  # [CLS] sentence [SEP], WordPiece by hand
    inputs = {"token_ids": np.array([[vocab.index(t) for t in TOKENS]], "int32"),
              "segment_ids": 0 * ones, "padding_mask": ones}
    teacher = _attention(checkpoint.load_task_model(os.path.join(workdir, "rewire")), inputs,
                         1.0, 1.0)
    student_model = checkpoint.load_task_model(os.path.join(workdir, "final"))
    for result, width in zip(results, (1.0, 0.25)):
        student = _attention(student_model, inputs, width, 0.5)
        assert [(p.layer, p.head) for p in result["panels"]] == [(0, 0), (0, 1), (3, 0), (3, 1)]
        for panel, (drawn_teacher, drawn_student) in zip(result["panels"], result["drawn"]):
            np.testing.assert_allclose(drawn_teacher, teacher[panel.layer][panel.head],
                                       atol=1e-6)
            if panel.layer == 0 and panel.head < len(student[0]):  # width 0.25 keeps head 0
                np.testing.assert_allclose(drawn_student, student[0][panel.head], atol=1e-6)
            else:
                assert drawn_student is None and panel.student is None and panel.note
        assert not np.allclose(result["drawn"][0][0], result["drawn"][0][1])  # two models


@pytest.mark.parametrize("args, phrase", [
    (["--heads=4"], "--heads 4 out of range: the model has 4 heads (0..3)"),
    (["--layers=0,x"], "--layers must be a list of integers, got 0,x"),
    (["--cells=w0.3"], "--cells: bad cell name 'w0.3'"),
    (["--sentence= "], "--sentence is required"),
    (["--model_dir=/no/such/dir"], "--teacher_dir is required when --model_dir is not a workdir"),
])
def test_bad_input_is_one_line(workdir, tmp_path, capsys, args, phrase):
    argv = ["attention_maps", f"--model_dir={workdir}", f"--sentence={SENTENCE}",
            f"--output_dir={tmp_path / 'out'}", *args]
    with pytest.raises(SystemExit) as exit_info:
        attention_maps.main(argv)
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and phrase in lines[0], lines
    assert not os.path.exists(tmp_path / "out")
