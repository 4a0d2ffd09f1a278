"""Hugging Face `config.json` <-> `models.config.BertConfig`, and what a `config.json` says
about the task head. No TensorFlow (`train/preflight.py` reads configs through here).

    config = hf_config.read_config("path/to/dir")       # BertConfig (a dir or the file)
    hf = hf_config.to_hf_dict(config)                   # the config.json dict
    hf_config.head_kind(read_json(dir))                 # "classification" | ... | None
"""

import os

from dynabert_tf.core import files, layout
from dynabert_tf.models import config as model_config

# Hugging Face config.json key -> BertConfig field.
_HF_KEYS = {
    "vocab_size": "vocab_size",
    "hidden_size": "hidden_size",
    "num_hidden_layers": "num_layers",
    "num_attention_heads": "num_heads",
    "intermediate_size": "intermediate_size",
    "max_position_embeddings": "max_position_embeddings",
    "type_vocab_size": "type_vocab_size",
    "hidden_dropout_prob": "hidden_dropout",
    "attention_probs_dropout_prob": "attention_dropout",
    "layer_norm_eps": "layer_norm_epsilon",
    "hidden_act": "hidden_act",
}
# Per-layer sizes (BertConfig field -> config.json key), written only when layers differ.
_HF_PER_LAYER_KEYS = {"layer_num_heads": "layer_num_attention_heads",
                      "layer_intermediate_sizes": "layer_intermediate_sizes"}
# Hugging Face activation names -> ours ("gelu" is the exact erf form), and back.
_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_approximate",
                "gelu_pytorch_tanh": "gelu_approximate",
                "gelu_approximate": "gelu_approximate", "relu": "relu"}
_HF_ACTIVATION = {"gelu": "gelu", "gelu_approximate": "gelu_pytorch_tanh", "relu": "relu"}
_FAMILY = {"bert": "Bert", "roberta": "Roberta"}  # class-name prefix of each model_type


def to_hf_dict(config):
    """The Hugging Face `config.json` form of the BertConfig `config` (a bare encoder:
    `architectures` ["BertModel"] / ["RobertaModel"])."""
    hf = {hf_key: getattr(config, ours) for hf_key, ours in _HF_KEYS.items()}
    hf["hidden_act"] = _HF_ACTIVATION[config.hidden_act]
    if config.attention_head_dim is not None:
        hf["attention_head_size"] = config.attention_head_dim
    for field, hf_key in _HF_PER_LAYER_KEYS.items():  # written only for per-layer sizes
        if getattr(config, field) is not None:
            hf[hf_key] = list(getattr(config, field))
    if config.model_type == "roberta":  # padding index = the row before position 0
        hf.update(pad_token_id=config.position_offset - 1, bos_token_id=0, eos_token_id=2)
    else:
        hf.update(pad_token_id=0)
    hf.update(model_type=config.model_type, architectures=[architecture(config, "Model")])
    return hf


def architecture(config, task):
    """The Hugging Face class name of `config`'s family for `task` ("Model",
    "ForSequenceClassification", "ForQuestionAnswering")."""
    return _FAMILY[config.model_type] + task


def from_hf_dict(hf):
    """The BertConfig of a Hugging Face `config.json` dict; ValueError naming the key."""
    missing = [k for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                           "intermediate_size", "vocab_size") if k not in hf]
    if missing:
        raise ValueError(f"{layout.CONFIG} lacks {', '.join(missing)}")
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError("only absolute position embeddings are supported, got "
                         f"{hf['position_embedding_type']!r}")
    act = hf.get("hidden_act", "gelu")
    if not isinstance(act, str) or act not in _ACTIVATIONS:
        raise ValueError(f"unsupported hidden_act {act!r} in {layout.CONFIG}")
    values = {ours: hf[hf_key] for hf_key, ours in _HF_KEYS.items() if hf_key in hf}
    model_config.check_fields(values, names={ours: hf_key for hf_key, ours in _HF_KEYS.items()})
    values["hidden_act"] = _ACTIVATIONS[act]
    if hf.get("attention_head_size") is not None:  # written only for a narrowed cell
        values["attention_head_dim"] = hf["attention_head_size"]
    for field, hf_key in _HF_PER_LAYER_KEYS.items():
        if hf.get(hf_key) is not None:
            values[field] = hf[hf_key]
    model_type = hf.get("model_type", "bert")
    if model_type not in model_config.MODEL_TYPES:
        raise ValueError(f"unsupported model_type {model_type!r} in {layout.CONFIG}; "
                         f"expected one of {', '.join(model_config.MODEL_TYPES)}")
    values["model_type"] = model_type
    if model_type == "roberta":  # positions count from padding_idx + 1
        pad = hf.get("pad_token_id", 1)
        if not (isinstance(pad, int) and not isinstance(pad, bool) and pad >= 0):
            raise ValueError(f"pad_token_id must be an integer >= 0, got {pad!r}")
        values["position_offset"] = pad + 1
    return model_config.BertConfig(**values)


def read_json(path):
    """The `config.json` dict of the model dir `path` (or of the file itself)."""
    if os.path.isdir(path):
        path = os.path.join(path, layout.CONFIG)
    hf = files.read_json(path, layout.CONFIG)
    if not isinstance(hf, dict):
        raise ValueError(f"{path} holds a JSON {type(hf).__name__}, not an object")
    return hf


def read_config(path):
    """The BertConfig of a Hugging Face `config.json` (the model dir or the file itself);
    ValueError naming the file and the key otherwise."""
    hf = read_json(path)
    try:
        return from_hf_dict(hf)
    except ValueError as e:
        where = os.path.join(path, layout.CONFIG) if os.path.isdir(path) else path
        raise ValueError(f"{where}: {e}") from None


def head_kind(hf):
    """The head kind a Hugging Face `config.json` dict describes: "span", "regression",
    "classification", or None (no head: a bare encoder)."""
    architectures = hf.get("architectures") or []
    if any(name.endswith("ForQuestionAnswering") for name in architectures):
        return "span"
    if hf.get("problem_type") == "regression" or (
            any(name.endswith("ForSequenceClassification") for name in architectures)
            and hf.get("num_labels") == 1):
        return "regression"
    if any(name.endswith("ForSequenceClassification") for name in architectures) or \
            "num_labels" in hf:
        return "classification"
    return None


def is_keras_hub_preset(path):
    """True if `path` holds a keras-hub preset (its `config.json` names a `class_name`)."""
    try:
        return "class_name" in files.read_json(os.path.join(path, layout.CONFIG))
    except (OSError, ValueError):
        return False


# Hugging Face class-name suffix of each head kind.
_HEAD_TASKS = {"classification": "ForSequenceClassification",
               "regression": "ForSequenceClassification", "span": "ForQuestionAnswering"}


def head_fields(head, config):
    """What the task head `head` (a `tasks.heads.TaskHead`) adds to `config`'s config.json:
    `architectures`, `num_labels` and, for sequence heads, `problem_type`."""
    fields = {"architectures": [architecture(config, _HEAD_TASKS[head.kind])]}
    if head.kind == "classification":
        fields.update(num_labels=head.num_classes, problem_type="single_label_classification")
    elif head.kind == "regression":
        fields.update(num_labels=1, problem_type="regression")
    else:
        fields.update(num_labels=2)
    return fields
