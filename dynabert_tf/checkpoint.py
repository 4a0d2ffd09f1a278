"""Checkpoints in and out: Hugging Face BERT directories and keras-hub BERT presets.

Our own stage outputs use the Hugging Face layout too (config.json + model.safetensors +
vocab.txt), so every model this project writes can be read by other tools, and one loader
serves pretrained checkpoints and our own.

    backbone = load_backbone("path/to/hf_or_keras_hub_dir")
    classifier = load_classifier(workdir + "/width_depth")
    save_classifier(classifier, out_dir, vocab_path=..., extra_config={...})
"""

import json
import logging
import os
import shutil

import numpy as np
import safetensors
import safetensors.numpy

from dynabert_tf.config import BertConfig
from dynabert_tf.model import DynaBertBackbone, DynaBertClassifier

SAFETENSORS = "model.safetensors"
VOCAB = "vocab.txt"
_IGNORED = ("embeddings.position_ids",)  # a buffer, not a weight


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model: names and shapes in the message."""


def _transpose(x):
    return np.ascontiguousarray(x.T)


def _backbone_table(backbone):
    """(variable, hf_name, hf->ours, ours->hf) for every backbone weight."""
    cfg = backbone.bert_config
    heads, head_dim, hidden = cfg.num_heads, cfg.head_dim, cfg.hidden_size
    ident = lambda x: x
    emb = backbone.embeddings
    table = [
        (emb.token_embeddings, "embeddings.word_embeddings.weight", ident, ident),
        (emb.position_embeddings, "embeddings.position_embeddings.weight", ident, ident),
        (emb.segment_embeddings, "embeddings.token_type_embeddings.weight", ident, ident),
        (emb.layer_norm.gamma, "embeddings.LayerNorm.weight", ident, ident),
        (emb.layer_norm.beta, "embeddings.LayerNorm.bias", ident, ident),
        (backbone.pooler.kernel, "pooler.dense.weight", _transpose, _transpose),
        (backbone.pooler.bias, "pooler.dense.bias", ident, ident),
    ]
    qkv_in = lambda w: w.T.reshape(hidden, heads, head_dim)
    qkv_out = lambda k: _transpose(k.reshape(hidden, heads * head_dim))
    for i, layer in enumerate(backbone.transformer_layers):
        att, ffn = layer.attention, layer.feedforward
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            table += [
                (getattr(att, f"{name}_kernel"), f"{p}attention.self.{name}.weight", qkv_in,
                 qkv_out),
                (getattr(att, f"{name}_bias"), f"{p}attention.self.{name}.bias",
                 lambda b: b.reshape(heads, head_dim), lambda b: b.reshape(-1)),
            ]
        table += [
            (att.output_kernel, f"{p}attention.output.dense.weight",
             lambda w: w.T.reshape(heads, head_dim, hidden),
             lambda k: _transpose(k.reshape(heads * head_dim, hidden))),
            (att.output_bias, f"{p}attention.output.dense.bias", ident, ident),
            (att.layer_norm.gamma, f"{p}attention.output.LayerNorm.weight", ident, ident),
            (att.layer_norm.beta, f"{p}attention.output.LayerNorm.bias", ident, ident),
            (ffn.intermediate_kernel, f"{p}intermediate.dense.weight", _transpose, _transpose),
            (ffn.intermediate_bias, f"{p}intermediate.dense.bias", ident, ident),
            (ffn.output_kernel, f"{p}output.dense.weight", _transpose, _transpose),
            (ffn.output_bias, f"{p}output.dense.bias", ident, ident),
            (ffn.layer_norm.gamma, f"{p}output.LayerNorm.weight", ident, ident),
            (ffn.layer_norm.beta, f"{p}output.LayerNorm.bias", ident, ident),
        ]
    return table


def _normalise_name(name):
    """Strips the `bert.` prefix and maps TF-era LayerNorm gamma/beta to weight/bias."""
    if name.startswith("bert."):
        name = name[len("bert."):]
    if ".LayerNorm." in name:
        name = name.replace(".LayerNorm.gamma", ".LayerNorm.weight").replace(
            ".LayerNorm.beta", ".LayerNorm.bias")
    return name


def _assign(variable, value, name, source):
    if tuple(value.shape) != tuple(variable.shape):
        raise CheckpointError(f"{source}: tensor {name} has shape {tuple(value.shape)}, "
                              f"the model expects {tuple(variable.shape)}")
    variable.assign(value.astype(variable.dtype))


def read_safetensors(path):
    """Reads a safetensors file into a dict of numpy arrays, with a clear error if corrupt."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {SAFETENSORS} at {path}")
    try:
        return safetensors.numpy.load_file(path)
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"{path} is not a readable safetensors file: {e}") from None


def assign_hf_tensors(backbone, tensors, source="checkpoint"):
    """Assigns HF-named `tensors` to `backbone`; returns the names it did not use.

    Raises CheckpointError naming every missing tensor, or a tensor of the wrong shape.
    """
    tensors = {_normalise_name(k): v for k, v in tensors.items()}
    table = _backbone_table(backbone)
    missing = [name for _, name, _, _ in table if name not in tensors]
    if missing:
        raise CheckpointError(f"{source}: missing tensors {', '.join(missing[:8])}"
                              + (f" and {len(missing) - 8} more" if len(missing) > 8 else ""))
    for variable, name, to_ours, from_ours in table:
        value = tensors[name]
        expected = from_ours(np.zeros(variable.shape, "float32")).shape
        if tuple(value.shape) != tuple(expected):
            raise CheckpointError(f"{source}: tensor {name} has shape {tuple(value.shape)}, "
                                  f"the model expects {tuple(expected)}")
        variable.assign(to_ours(value).astype(variable.dtype))
    used = {name for _, name, _, _ in table}
    return sorted(set(tensors) - used - set(_IGNORED))


def backbone_to_hf_tensors(backbone, prefix="bert."):
    """The backbone's weights as HF-named numpy arrays (the inverse of assign_hf_tensors)."""
    return {prefix + name: np.ascontiguousarray(from_ours(np.asarray(variable)))
            for variable, name, _, from_ours in _backbone_table(backbone)}


def _is_keras_hub_preset(path):
    config_path = os.path.join(path, "config.json")
    if not os.path.isfile(config_path):
        return False
    with open(config_path) as f:
        try:
            return "class_name" in json.load(f)
        except json.JSONDecodeError:
            return False


def _load_keras_hub_backbone(path):
    """A keras-hub BERT preset dir -> our backbone (keras-hub's BERT uses tanh GELU)."""
    import keras_hub  # imported lazily: only this path needs it

    reference = keras_hub.models.BertBackbone.from_preset(path)
    ref = reference.get_config()
    backbone = DynaBertBackbone.from_config_object(BertConfig(
        vocab_size=ref["vocabulary_size"], hidden_size=ref["hidden_dim"],
        num_layers=ref["num_layers"], num_heads=ref["num_heads"],
        intermediate_size=ref["intermediate_dim"],
        max_position_embeddings=ref["max_sequence_length"],
        type_vocab_size=ref["num_segments"], hidden_dropout=ref["dropout"],
        attention_dropout=ref["dropout"], hidden_act="gelu_approximate"))
    by_path = {w.path: w for w in reference.weights}
    for ours, ref_path in _keras_hub_paths(backbone):
        _assign(ours, np.asarray(by_path[ref_path]), ref_path, path)
    return backbone


def _keras_hub_paths(backbone):
    emb = backbone.embeddings
    pairs = [(emb.token_embeddings, "token_embedding/embeddings"),
             (emb.position_embeddings, "position_embedding/embeddings"),
             (emb.segment_embeddings, "segment_embedding/embeddings"),
             (emb.layer_norm.gamma, "embeddings_layer_norm/gamma"),
             (emb.layer_norm.beta, "embeddings_layer_norm/beta"),
             (backbone.pooler.kernel, "pooled_dense/kernel"),
             (backbone.pooler.bias, "pooled_dense/bias")]
    for i, layer in enumerate(backbone.transformer_layers):
        att, ffn, p = layer.attention, layer.feedforward, f"transformer_layer_{i}/"
        for name in ("query", "key", "value"):
            pairs += [(getattr(att, f"{name}_kernel"), f"{p}self_attention_layer/{name}/kernel"),
                      (getattr(att, f"{name}_bias"), f"{p}self_attention_layer/{name}/bias")]
        pairs += [(att.output_kernel, f"{p}self_attention_layer/attention_output/kernel"),
                  (att.output_bias, f"{p}self_attention_layer/attention_output/bias"),
                  (att.layer_norm.gamma, f"{p}self_attention_layer_norm/gamma"),
                  (att.layer_norm.beta, f"{p}self_attention_layer_norm/beta"),
                  (ffn.intermediate_kernel, f"{p}feedforward_intermediate_dense/kernel"),
                  (ffn.intermediate_bias, f"{p}feedforward_intermediate_dense/bias"),
                  (ffn.output_kernel, f"{p}feedforward_output_dense/kernel"),
                  (ffn.output_bias, f"{p}feedforward_output_dense/bias"),
                  (ffn.layer_norm.gamma, f"{p}feedforward_layer_norm/gamma"),
                  (ffn.layer_norm.beta, f"{p}feedforward_layer_norm/beta")]
    return pairs


def _check_dir(path):
    if not os.path.isdir(path):
        raise FileNotFoundError(f"checkpoint directory {path} does not exist")


def load_backbone(path):
    """A Hugging Face BERT dir (config.json + model.safetensors) or a keras-hub preset dir."""
    _check_dir(path)
    if _is_keras_hub_preset(path):
        return _load_keras_hub_backbone(path)
    backbone = DynaBertBackbone.from_config_object(BertConfig.from_json_file(path))
    unused = assign_hf_tensors(backbone, read_safetensors(os.path.join(path, SAFETENSORS)),
                               source=path)
    unused = [name for name in unused if not name.startswith("classifier.")]
    if unused:
        logging.warning("%s: ignored tensors not in the backbone: %s", path, ", ".join(unused))
    return backbone


def read_hf_config(path):
    with open(os.path.join(path, "config.json")) as f:
        return json.load(f)


def load_classifier(path, num_classes=None, dropout=0.1):
    """Backbone + head. The head comes from `classifier.weight/bias` when the checkpoint has
    them (and `num_classes` is None or matches); otherwise it is freshly initialised.

    `num_classes` defaults to the checkpoint's `num_labels`.
    """
    _check_dir(path)
    backbone = load_backbone(path)
    if _is_keras_hub_preset(path):
        tensors, hf = {}, {}
    else:
        tensors, hf = read_safetensors(os.path.join(path, SAFETENSORS)), read_hf_config(path)
    if num_classes is None:
        if "num_labels" not in hf:
            raise CheckpointError(f"{path}: config.json has no num_labels; pass num_classes")
        num_classes = hf["num_labels"]
    model = DynaBertClassifier(backbone, num_classes, dropout=dropout)
    kernel, bias = tensors.get("classifier.weight"), tensors.get("classifier.bias")
    if kernel is not None and kernel.shape[0] == num_classes:
        _assign(model.classifier.kernel, _transpose(kernel), "classifier.weight", path)
        _assign(model.classifier.bias, bias, "classifier.bias", path)
    return model


def save_classifier(model, path, vocab_path=None, extra_config=None):
    """Writes `model` as a Hugging Face BertForSequenceClassification-style directory.

    config.json holds the architecture, `num_labels` and anything in `extra_config` (e.g.
    `id2label`, `finetuning_task`, `dynabert`); vocab.txt is copied when given. Files are
    written to a temporary name first, so an interrupted save never leaves a torn checkpoint.
    """
    os.makedirs(path, exist_ok=True)
    tensors = backbone_to_hf_tensors(model.backbone)
    tensors["classifier.weight"] = _transpose(np.asarray(model.classifier.kernel))
    tensors["classifier.bias"] = np.asarray(model.classifier.bias)
    hf = model.bert_config.to_hf_dict()
    hf.update(architectures=["BertForSequenceClassification"], num_labels=model.num_classes)
    hf.update(extra_config or {})
    tmp = os.path.join(path, SAFETENSORS + ".tmp")
    safetensors.numpy.save_file(tensors, tmp, metadata={"format": "pt"})
    os.replace(tmp, os.path.join(path, SAFETENSORS))
    if vocab_path and os.path.abspath(vocab_path) != os.path.abspath(os.path.join(path, VOCAB)):
        shutil.copyfile(vocab_path, os.path.join(path, VOCAB))
    with open(os.path.join(path, "config.json.tmp"), "w") as f:
        json.dump(hf, f, indent=2)
    os.replace(os.path.join(path, "config.json.tmp"), os.path.join(path, "config.json"))
    return path
