"""The standard clients open the exported files: MediaPipe Tasks' TextClassifier (mediapipe,
pinned in requirements.txt) reads every per-cell file's TFLite Metadata (tokenizer, vocab,
labels), and its categories and scores equal the project's own LiteRT run; one tokenizer
behaviour (accents, capitals, punctuation) once the app normalizes text as README says."""

import json
import os

import keras
import numpy as np
import pytest

from dynabert_tf.core import grid as grid_lib
from dynabert_tf.elastic import cost
from dynabert_tf.io import checkpoint
from mobile import export as export_lib
from mobile.export import client_metadata as client_lib
from mobile.export import tflite as tflite_lib
from mobile.litert.parity import softmax
from mobile.runtime import model_file
from mobile.runtime.tokenizer import WordPieceEncoder, client_text
from tests.helpers import TINY_DEEP, tiny_classifier

SEQ_LEN = 24
WORDS = ["the", "a", "movie", "film", "good", "bad", "great", "boring", "is", "was", "not",
         "very", "fun", "dull", ".", ",", "!", "?", "'", "-", "cafe", "naive", "cliche",
         "##s", "it", "s", "and", "but", "plot", "french"]
# Accents, capitals, punctuation, a long one (truncated), words outside the vocabulary.
SENTENCES = [
    "the movie is very good .",
    "A Naïve, BORING film!",
    "café clichés and a naïve plot -- not fun ...",
    "It's a FRENCH café film? Great!",
    "Clichés, clichés -- but the film isn't dull",
    "ÉPIC failure: bad bad bad",
    "the film " * 12 + "was great",
    "zebra quantum",
]


def make_workdir(root):
    """A tiny trained-model layout whose vocabulary holds the fixture's words."""
    keras.utils.set_random_seed(0)
    model = tiny_classifier(config=TINY_DEEP)
    rng = np.random.default_rng(0)
    for dense, std in ((model.backbone.pooler, 0.5), (model.head.dense, 1.0)):
        dense.kernel.assign(rng.normal(0, std, dense.kernel.shape))
    special = ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    unused = TINY_DEEP.vocab_size - 1 - len(special) - len(WORDS)
    tokens = ["[PAD]"] + [f"[unused{i}]" for i in range(unused)] + special + WORDS
    os.makedirs(root, exist_ok=True)
    vocab = os.path.join(root, "vocab_src.txt")
    with open(vocab, "w") as f:
        f.write("\n".join(tokens) + "\n")
    # id2label as training writes it for rt_polarity ("0", "1"): the export names them.
    checkpoint.save_task_model(model, os.path.join(root, "final"), vocab, {
        "id2label": {"0": "0", "1": "1"}, "finetuning_task": "rt_polarity",
        "max_seq_length": SEQ_LEN})
    cells = {grid_lib.cell_name(w, d): {"width_mult": w, "depth_mult": d,
                                        "metrics": {"accuracy": 0.9 - 0.01 * i},
                                        "flops": cost.count_flops(TINY_DEEP, w, d)}
             for i, (w, d) in enumerate(grid_lib.grid())}
    with open(os.path.join(root, "eval_grid.json"), "w") as f:
        json.dump({"task": "rt_polarity", "primary_metric": "accuracy", "cells": cells}, f)
    return root


def litert_scores(path, encoder, text):
    """(logits, probabilities) of the project's LiteRT run on `text` (no normalization)."""
    from ai_edge_litert.interpreter import Interpreter

    packed = encoder.encode(text)
    runner = Interpreter(model_path=path).get_signature_runner(tflite_lib.SIGNATURE)
    outputs = runner(**{name: np.asarray([getattr(packed, name)], np.int32)
                        for name in tflite_lib.INPUT_NAMES})
    return outputs.get("logits", [None])[0], outputs[client_lib.PROBABILITIES][0]


def mediapipe_heads(path, texts):
    """[{head name: [score by class index]}] of MediaPipe's TextClassifier, and the labels."""
    from mediapipe.tasks.python.core import base_options
    from mediapipe.tasks.python.text import text_classifier

    options = text_classifier.TextClassifierOptions(
        base_options=base_options.BaseOptions(model_asset_path=path))
    results, labels = [], None
    with text_classifier.TextClassifier.create_from_options(options) as classifier:
        for text in texts:
            heads = {}
            for head in classifier.classify(text).classifications:
                by_index = sorted(head.categories, key=lambda c: c.index)
                heads[head.head_name] = np.asarray([c.score for c in by_index])
                labels = [c.category_name for c in by_index]
            results.append(heads)
    return results, labels


def test_tokenizer_agrees_after_client_normalization(tmp_path):
    """The app's normalization (`client_text`) changes no token id of the project's tokenizer,
    and the clients' tokenizer (lowercasing, accents kept) gives those ids on it."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + WORDS
    project = WordPieceEncoder(vocab, SEQ_LEN)
    client_like = WordPieceEncoder(vocab, SEQ_LEN, strip_accents=False)
    assert client_text("Café naïve ÉPIC") == "Cafe naive EPIC"
    for text in SENTENCES:
        assert project.encode(client_text(text)) == project.encode(text), text
        assert client_like.encode(client_text(text)) == project.encode(text), text
    assert client_like.encode("café") != project.encode("café")  # why apps normalize


def test_minimum_parser_version_follows_the_schema_members_used():
    """The replacement of MediaPipe's missing `_pywrap_metadata_version` extension."""
    import flatbuffers
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    def version(subgraph, files=None):
        model = fb.ModelMetadataT()
        model.subgraphMetadata, model.associatedFiles = [subgraph], files
        builder = flatbuffers.Builder(0)
        builder.Finish(model.Pack(builder), b"M001")
        return client_lib.minimum_parser_version(builder.Output())

    subgraph = fb.SubGraphMetadataT()
    assert version(subgraph) == "1.0.0"
    vocab = fb.AssociatedFileT()
    vocab.name, vocab.type = "vocab.txt", fb.AssociatedFileType.VOCABULARY
    assert version(subgraph, [vocab]) == "1.0.1"
    unit = fb.ProcessUnitT()
    unit.optionsType = fb.ProcessUnitOptions.BertTokenizerOptions
    unit.options = fb.BertTokenizerOptionsT()
    unit.options.vocabFile = [vocab]
    subgraph.inputProcessUnits = [unit]
    assert version(subgraph) == "1.1.0"  # what a classifier file needs
    group = fb.TensorGroupT()
    group.name = "g"
    subgraph.outputTensorGroups = [group]
    assert version(subgraph) == "1.2.0"


@pytest.mark.slow
def test_mediapipe_opens_every_cell_and_equals_litert(tmp_path):
    workdir = make_workdir(str(tmp_path / "work"))
    float_out, dynamic_out = str(tmp_path / "none"), str(tmp_path / "dynamic")
    manifest = export_lib.export_model(workdir, float_out, "none", SEQ_LEN, progress=False)
    assert len(manifest["cells"]) == len(grid_lib.grid())
    assert manifest["labels"] == ["negative", "positive"]
    assert manifest["standard_metadata"].startswith("mediapipe ")
    # Probabilities alone (--class_outputs=probabilities, the Task Library's form).
    dynamic = export_lib.export_model(workdir, dynamic_out, "dynamic_range", SEQ_LEN,
                                      cells="w1.00_d1.00,w0.25_d0.50", progress=False,
                                      class_outputs="probabilities")
    assert [o["name"] for o in dynamic["cells"][0]["outputs"]] == ["probabilities"]

    metadata = model_file.read_metadata(os.path.join(float_out, manifest["cells"][0]["file"]))
    encoder = WordPieceEncoder(metadata["vocab.txt"], SEQ_LEN)  # ids == BertInputEncoder's
    normalized = [client_text(text) for text in SENTENCES]
    for out, entries, exact in ((float_out, manifest["cells"], True),
                                (dynamic_out, dynamic["cells"], False)):
        for entry in entries:
            path = os.path.join(out, entry["file"])
            assert "mediapipe_text_classifier" in entry["clients"]
            results, labels = mediapipe_heads(path, normalized)
            assert labels == ["negative", "positive"], entry["cell"]
            for text, heads in zip(SENTENCES, results):
                logits, probabilities = litert_scores(path, encoder, text)
                # classifications[0]: the probabilities
                assert list(heads) == (["probability", "logits"] if exact else ["probability"])
                assert abs(heads["probability"].sum() - 1) < 1e-5
                assert heads["probability"].argmax() == probabilities.argmax(), (
                    entry["cell"], text)
                if exact:
                    np.testing.assert_allclose(heads["probability"], probabilities, atol=1e-5)
                    np.testing.assert_allclose(heads["logits"], logits, atol=1e-5)
                    np.testing.assert_allclose(probabilities, softmax(logits), atol=1e-6)
