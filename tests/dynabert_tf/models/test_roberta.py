"""RoBERTa: a Hugging Face RobertaModel dir loads with keras-hub's (and HF's) outputs, its
byte-level BPE inputs match keras-hub's and HF's tokenizers, and elastic slicing, extraction
and the HF save/load round trip keep working on it.

No real RoBERTa weights (nor torch) exist here, so the checkpoint is a small random one in the
real HF file layout: config.json, model.safetensors (`roberta.*` names), vocab.json,
merges.txt. The HF forward pass is re-implemented in numpy (`_hf_roberta_forward`), following
`transformers.models.roberta.modeling_roberta` (positions from the padding mask).
"""

import json
import math

import keras_hub
import numpy as np
import pytest
import safetensors.numpy
import tensorflow as tf

from dynabert_tf.io import checkpoint
from dynabert_tf.models import task_model
from dynabert_tf.models.roberta.tokenizer import RobertaInputEncoder
from tests import model_checks

HIDDEN, LAYERS, HEADS, INTERMEDIATE, MAX_LEN, PAD = 32, 2, 4, 64, 64, 1
# In rank order (BPE applies the lowest-ranked applicable merge first).
MERGES = [("l", "l"), ("e", "ll"), ("h", "ell"), ("hell", "o"), ("Ġ", "t"), ("h", "e"),
          ("Ġt", "he"), ("Ġ", "w"), ("o", "r"), ("Ġw", "or"), ("l", "d"), ("Ġwor", "ld"),
          ("i", "s"), ("Ġ", "is"), ("Ġ", "a")]


def _bytes_to_unicode():
    """GPT-2's byte -> printable character table (what byte-level BPE vocabularies use)."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def _vocab():
    tokens = ["<s>", "<pad>", "</s>", "<unk>"] + _bytes_to_unicode()
    tokens += ["".join(pair) for pair in MERGES] + ["<mask>"]
    return {token: i for i, token in enumerate(tokens)}


VOCAB = _vocab()


def _hf_config():
    return {"architectures": ["RobertaModel"], "model_type": "roberta",
            "vocab_size": len(VOCAB), "hidden_size": HIDDEN, "num_hidden_layers": LAYERS,
            "num_attention_heads": HEADS, "intermediate_size": INTERMEDIATE,
            "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1, "max_position_embeddings": MAX_LEN + PAD + 1,
            "type_vocab_size": 1, "initializer_range": 0.02, "layer_norm_eps": 1e-5,
            "pad_token_id": PAD, "bos_token_id": 0, "eos_token_id": 2,
            "position_embedding_type": "absolute"}


def _hf_tensors(seed, zero_token_type):
    rng = np.random.default_rng(seed)
    normal = lambda *shape: rng.normal(0, 0.2, shape).astype("float32")
    ln = lambda p: {f"{p}.weight": 1 + normal(HIDDEN), f"{p}.bias": normal(HIDDEN)}
    cfg = _hf_config()
    t = {"embeddings.word_embeddings.weight": normal(cfg["vocab_size"], HIDDEN),
         "embeddings.position_embeddings.weight": normal(cfg["max_position_embeddings"], HIDDEN),
         "embeddings.token_type_embeddings.weight": normal(1, HIDDEN),
         **ln("embeddings.LayerNorm"),
         "pooler.dense.weight": normal(HIDDEN, HIDDEN), "pooler.dense.bias": normal(HIDDEN)}
    if zero_token_type:  # as in every released RoBERTa (fairseq has no segment embedding)
        t["embeddings.token_type_embeddings.weight"][:] = 0
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            t[f"{p}attention.self.{name}.weight"] = normal(HIDDEN, HIDDEN)
            t[f"{p}attention.self.{name}.bias"] = normal(HIDDEN)
        t[f"{p}attention.output.dense.weight"] = normal(HIDDEN, HIDDEN)
        t[f"{p}attention.output.dense.bias"] = normal(HIDDEN)
        t.update(ln(f"{p}attention.output.LayerNorm"))
        t[f"{p}intermediate.dense.weight"] = normal(INTERMEDIATE, HIDDEN)
        t[f"{p}intermediate.dense.bias"] = normal(INTERMEDIATE)
        t[f"{p}output.dense.weight"] = normal(HIDDEN, INTERMEDIATE)
        t[f"{p}output.dense.bias"] = normal(HIDDEN)
        t.update(ln(f"{p}output.LayerNorm"))
    return t


def write_roberta_dir(path, seed=0, zero_token_type=True):
    """A random RobertaModel checkpoint in the HF layout; returns (dir, unprefixed tensors)."""
    path.mkdir(parents=True, exist_ok=True)
    tensors = _hf_tensors(seed, zero_token_type)
    safetensors.numpy.save_file({"roberta." + k: v for k, v in tensors.items()},
                                str(path / "model.safetensors"), metadata={"format": "pt"})
    (path / "config.json").write_text(json.dumps(_hf_config(), indent=2))
    (path / "vocab.json").write_text(json.dumps(VOCAB, ensure_ascii=False), encoding="utf-8")
    (path / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in MERGES), encoding="utf-8")
    return str(path), tensors


def _random_inputs(seed=0, batch=3, seq=9):
    """<s> random tokens </s>, right-padded: row 0 has 3 pads, row 1 has 1."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(4, len(VOCAB) - 1, size=(batch, seq)).astype("int32")
    token_ids[:, 0] = 0
    lengths = [seq - 3, seq - 1] + [seq] * (batch - 2)
    mask = (np.arange(seq)[None, :] < np.array(lengths)[:, None]).astype("int32")
    token_ids[np.arange(batch), np.array(lengths) - 1] = 2
    token_ids[mask == 0] = PAD
    return {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
            "padding_mask": mask}


def _layer_norm(x, w, b, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def _hf_roberta_forward(t, token_ids, mask):
    """numpy float64 `RobertaModel(...).last_hidden_state` (eval mode, exact GELU)."""
    t = {k: v.astype("float64") for k, v in t.items()}
    positions = np.cumsum(token_ids != PAD, axis=1) * (token_ids != PAD) + PAD  # HF's rule
    x = (t["embeddings.word_embeddings.weight"][token_ids]
         + t["embeddings.position_embeddings.weight"][positions]
         + t["embeddings.token_type_embeddings.weight"][np.zeros_like(token_ids)])
    x = _layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"])
    bias = (1.0 - mask[:, None, None, :]) * np.finfo("float64").min / 2
    erf = np.vectorize(math.erf)
    batch, seq, d = len(x), x.shape[1], HIDDEN // HEADS
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        lin = lambda h, name: h @ t[f"{p}{name}.weight"].T + t[f"{p}{name}.bias"]
        split = lambda h: h.reshape(batch, seq, HEADS, d).transpose(0, 2, 1, 3)
        q, k, v = (split(lin(x, f"attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + bias
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, HIDDEN)
        x = _layer_norm(lin(context, "attention.output.dense") + x,
                        t[f"{p}attention.output.LayerNorm.weight"],
                        t[f"{p}attention.output.LayerNorm.bias"])
        h = lin(x, "intermediate.dense")
        h = 0.5 * h * (1 + erf(h / np.sqrt(2)))
        x = _layer_norm(lin(h, "output.dense") + x, t[f"{p}output.LayerNorm.weight"],
                        t[f"{p}output.LayerNorm.bias"])
    return x


@pytest.fixture(scope="module")
def roberta_dir(tmp_path_factory):
    return write_roberta_dir(tmp_path_factory.mktemp("roberta") / "hf")


def test_load_matches_keras_hub_and_hf(roberta_dir):
    path, tensors = roberta_dir
    ours = checkpoint.load_backbone(path)
    cfg = ours.bert_config
    assert (cfg.model_type, cfg.position_offset, cfg.type_vocab_size) == ("roberta", 2, 1)
    assert cfg.layer_norm_epsilon == 1e-5 and cfg.hidden_act == "gelu"
    inputs = _random_inputs()
    got = np.asarray(ours(inputs)["sequence_output"])
    reference = keras_hub.models.RobertaBackbone.from_preset(path)  # keras-hub's HF converter
    want = np.asarray(reference({"token_ids": inputs["token_ids"],
                                 "padding_mask": inputs["padding_mask"]}))
    np.testing.assert_allclose(got, want, atol=1e-4)  # padding positions included
    real = inputs["padding_mask"].astype(bool)
    hf = _hf_roberta_forward(tensors, inputs["token_ids"], inputs["padding_mask"])
    np.testing.assert_allclose(got[real], hf[real], atol=1e-4)


def test_keras_hub_roberta_preset_is_a_starting_checkpoint(roberta_dir, tmp_path):
    """A keras-hub RoBERTa preset (its own format) loads with keras-hub's outputs and saves as
    a Hugging Face RoBERTa dir that loads back the same."""
    reference = keras_hub.models.RobertaBackbone.from_preset(roberta_dir[0])
    preset = str(tmp_path / "keras_hub_preset")
    reference.save_to_preset(preset)
    ours = checkpoint.load_backbone(preset)
    assert (ours.bert_config.model_type, ours.bert_config.position_offset) == ("roberta", 2)
    inputs = _random_inputs()
    want = np.asarray(reference({"token_ids": inputs["token_ids"],
                                 "padding_mask": inputs["padding_mask"]}))
    got = np.asarray(ours(inputs)["sequence_output"])
    np.testing.assert_allclose(got, want, atol=1e-4)
    model = task_model.classifier(ours, 2)
    saved = model.save_to_preset(str(tmp_path / "hf"))
    again = checkpoint.load_backbone(saved)
    np.testing.assert_array_equal(np.asarray(again(inputs)["sequence_output"]), got)


def test_nonzero_token_type_row_is_used(tmp_path):
    """keras-hub drops HF's token_type row (zero in released RoBERTas); we keep it, as HF."""
    path, tensors = write_roberta_dir(tmp_path / "hf", seed=1, zero_token_type=False)
    inputs = _random_inputs(seed=1)
    got = np.asarray(checkpoint.load_backbone(path)(inputs)["sequence_output"])
    real = inputs["padding_mask"].astype(bool)
    hf = _hf_roberta_forward(tensors, inputs["token_ids"], inputs["padding_mask"])
    np.testing.assert_allclose(got[real], hf[real], atol=1e-4)


TEXTS_A = ["hello world", "Hello, the world is a world!", "the <mask> is   here\ttoo"]
TEXTS_B = ["is the world", "héllo ☃", "a"]
SEQ = 40


@pytest.fixture(scope="module")
def encoder(roberta_dir):  # one encoder: tracing the BPE graph takes seconds
    path, _ = roberta_dir
    return RobertaInputEncoder(f"{path}/vocab.json", f"{path}/merges.txt", SEQ)


def test_tokenizer_matches_keras_hub_and_hf(roberta_dir, encoder):
    path, _ = roberta_dir
    assert (encoder.pad_id, encoder.cls_id, encoder.sep_id) == (1, 0, 2)
    assert encoder.vocab_size == len(VOCAB) and encoder.max_seq_length == SEQ
    assert encoder.id_to_token(VOCAB["Ġworld"]) == "Ġworld"
    pieces = encoder.tokenize(tf.constant(TEXTS_A)).to_list()
    pieces_b = encoder.tokenize(tf.constant(TEXTS_B)).to_list()
    assert pieces[0] == [VOCAB["hello"], VOCAB["Ġworld"]]

    single = {k: v.numpy() for k, v in encoder(tf.constant(TEXTS_A)).items()}
    pair = {k: v.numpy() for k, v in encoder(tf.constant(TEXTS_A), tf.constant(TEXTS_B)).items()}
    for row, (a, b) in enumerate(zip(pieces, pieces_b)):
        for features, expected in ((single, [0] + a + [2]), (pair, [0] + a + [2, 2] + b + [2])):
            n = len(expected)
            assert features["token_ids"][row, :n].tolist() == expected
            assert (features["token_ids"][row, n:] == 1).all()
            assert features["padding_mask"][row].tolist() == [1] * n + [0] * (SEQ - n)
            assert not features["segment_ids"][row].any()
    assert pair["token_ids"][0, :9].tolist() == [
        0, VOCAB["hello"], VOCAB["Ġworld"], 2, 2, VOCAB["is"], VOCAB["Ġthe"], VOCAB["Ġworld"], 2]
    unpadded = encoder.encode_unpadded(tf.constant(TEXTS_A), tf.constant(TEXTS_B))
    assert unpadded["token_ids"].to_list()[0] == pair["token_ids"][0, :9].tolist()

    # keras-hub's own RoBERTa preprocessing (same tokenizer files, its packer and mask).
    reference = keras_hub.models.RobertaTextClassifierPreprocessor(
        keras_hub.tokenizers.RobertaTokenizer(vocabulary=f"{path}/vocab.json",
                                              merges=f"{path}/merges.txt"),
        sequence_length=SEQ)
    for features, texts in ((single, (TEXTS_A,)), (pair, (TEXTS_A, TEXTS_B))):
        want = reference(x=tuple(tf.constant(t) for t in texts))
        want = want[0] if isinstance(want, tuple) else want  # (x,) without labels
        np.testing.assert_array_equal(features["token_ids"], np.asarray(want["token_ids"]))
        np.testing.assert_array_equal(features["padding_mask"],
                                      np.asarray(want["padding_mask"]).astype("int32"))

    transformers = pytest.importorskip("transformers")
    hf = transformers.RobertaTokenizer(f"{path}/vocab.json", f"{path}/merges.txt")
    for row, (a, b) in enumerate(zip(TEXTS_A, TEXTS_B)):
        real_single = single["token_ids"][row][single["padding_mask"][row] == 1].tolist()
        real_pair = pair["token_ids"][row][pair["padding_mask"][row] == 1].tolist()
        assert hf(a)["input_ids"] == real_single
        assert hf(a, b)["input_ids"] == real_pair


def test_pair_truncation_and_literal_pad_token(encoder):
    long_text = "the world " * 25
    features = encoder(tf.constant([long_text]), tf.constant(["hello"]))
    a = encoder.tokenize(tf.constant([long_text])).to_list()[0]
    assert len(a) > SEQ
    assert features["token_ids"].numpy()[0].tolist() == (
        [0] + a[:SEQ - 5] + [2, 2, VOCAB["hello"], 2])  # the short segment is kept whole
    assert features["padding_mask"].numpy().all()
    features = encoder(tf.constant(["<pad>"]))  # a special token in the text is a token
    assert features["token_ids"].numpy()[0, :3].tolist() == [0, 1, 2]
    assert features["padding_mask"].numpy()[0].tolist() == [1, 1, 1] + [0] * (SEQ - 3)


def test_make_dataset(encoder):
    from dynabert_tf.data.pipeline import make_dataset
    from dynabert_tf.data.tasks import Example

    examples = [Example(text_a=a, text_b=b, label=i % 2)
                for i, (a, b) in enumerate(zip(TEXTS_A, TEXTS_B))]
    features, labels = next(iter(make_dataset(examples, encoder, 3, pad_to="longest")))
    want = encoder(tf.constant(TEXTS_A), tf.constant(TEXTS_B))
    width = features["token_ids"].shape[1]
    assert width == int(tf.reduce_max(tf.reduce_sum(want["padding_mask"], 1)))
    for name in ("token_ids", "segment_ids", "padding_mask"):
        np.testing.assert_array_equal(features[name], want[name][:, :width])


def test_slicing_extraction_and_save_roundtrip(roberta_dir, tmp_path):
    path, _ = roberta_dir
    model = task_model.classifier(checkpoint.load_backbone(path), 2)
    inputs = _random_inputs(seed=2)
    # Extracted == dynamic and the preset round trip (at full size and at the cell):
    # `model_checks`, as for every model kind.
    sub, = model_checks.check_extracted_equals_dynamic(model, inputs, [(0.5, 0.5)], atol=1e-5,
                                                       rtol=0).values()
    assert sub.bert_config.model_type == "roberta" and sub.bert_config.position_offset == 2

    out, _ = model_checks.check_preset_round_trip(model, inputs, tmp_path / "saved",
                                                  [(1.0, 1.0), (0.5, 0.5)], atol=1e-6)
    hf = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert hf["model_type"] == "roberta" and hf["pad_token_id"] == PAD
    assert hf["max_position_embeddings"] == MAX_LEN + 2
    assert hf["architectures"] == ["RobertaForSequenceClassification"]
    names = safetensors.numpy.load_file(f"{out}/model.safetensors")
    backbone_names = [n for n in names if not n.startswith("classifier.")]
    assert backbone_names and all(n.startswith("roberta.") for n in backbone_names)
