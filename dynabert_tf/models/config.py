"""Encoder architecture config (from a Hugging Face `config.json`) and the input names."""

import dataclasses
import os

from dynabert_tf.core import files

# Model inputs: int32 [batch, seq] tensors, keras-hub's names (padding_mask: 1 token, 0 pad).
INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")
MODEL_TYPES = ("bert", "roberta")

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
_POSITIVE_INTS = ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
                  "max_position_embeddings", "type_vocab_size")
_FRACTIONS = ("hidden_dropout", "attention_dropout")
# Hugging Face activation names -> ours ("gelu" is the exact erf form).
_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_approximate",
                "gelu_pytorch_tanh": "gelu_approximate",
                "gelu_approximate": "gelu_approximate", "relu": "relu"}


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """Shape of a post-LayerNorm BERT-family encoder (BERT, RoBERTa).

    `model_type` names the checkpoint family ("bert" or "roberta": tensor-name prefix and
    tokenizer); `position_offset` is the embedding row of position 0 (RoBERTa: its padding
    index + 1 = 2).

    `layer_num_heads` / `layer_intermediate_sizes`: per-layer head and FFN neuron counts of a
    model whose layers differ in size (a standalone per-layer sub-network,
    `elastic.subnetwork.extract_layerwise`); `num_heads` / `intermediate_size` are then their
    largest. None (the canonical form when all layers are equal) means uniform layers.
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_epsilon: float = 1e-12
    hidden_act: str = "gelu"
    # Width of one attention head when it is not hidden_size / num_heads (a standalone
    # sub-network keeps fewer heads of the parent's head width); None: hidden / heads.
    attention_head_dim: int | None = None
    model_type: str = "bert"
    position_offset: int = 0
    layer_num_heads: tuple[int, ...] | None = None
    layer_intermediate_sizes: tuple[int, ...] | None = None

    def __post_init__(self):
        _check_types(vars(self))
        for field, uniform in (("layer_num_heads", "num_heads"),
                               ("layer_intermediate_sizes", "intermediate_size")):
            object.__setattr__(self, field, _per_layer(self, field, uniform))
        if self.attention_head_dim is not None:
            if not (isinstance(self.attention_head_dim, int) and self.attention_head_dim > 0):
                raise ValueError(f"attention_head_dim must be a positive int, got "
                                 f"{self.attention_head_dim!r}")
            if self.attention_head_dim * self.num_heads == self.hidden_size:
                object.__setattr__(self, "attention_head_dim", None)  # the canonical form
        elif self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by "
                             f"num_heads {self.num_heads}")
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"unsupported model_type {self.model_type!r}; expected one of "
                             f"{', '.join(MODEL_TYPES)}")
        if self.hidden_act not in set(_ACTIVATIONS.values()):
            raise ValueError(f"unsupported hidden_act {self.hidden_act!r}; "
                             f"expected one of {sorted(set(_ACTIVATIONS.values()))}")

    @property
    def heads_per_layer(self):
        """(heads of layer 0, heads of layer 1, ...): `layer_num_heads` or uniform."""
        return self.layer_num_heads or (self.num_heads,) * self.num_layers

    @property
    def intermediate_sizes_per_layer(self):
        """(FFN neurons of layer 0, ...): `layer_intermediate_sizes` or uniform."""
        return self.layer_intermediate_sizes or (self.intermediate_size,) * self.num_layers

    @property
    def head_dim(self):
        if self.attention_head_dim is not None:
            return self.attention_head_dim
        return self.hidden_size // self.num_heads

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        return cls(**values)

    def to_hf_dict(self):
        """The Hugging Face `config.json` form of this config."""
        inverse_act = {"gelu": "gelu", "gelu_approximate": "gelu_pytorch_tanh", "relu": "relu"}
        hf = {hf_key: getattr(self, ours) for hf_key, ours in _HF_KEYS.items()}
        hf["hidden_act"] = inverse_act[self.hidden_act]
        if self.attention_head_dim is not None:
            hf["attention_head_size"] = self.attention_head_dim
        for field, hf_key in _HF_PER_LAYER_KEYS.items():  # written only for per-layer sizes
            if getattr(self, field) is not None:
                hf[hf_key] = list(getattr(self, field))
        if self.model_type == "roberta":  # padding index = the row before position 0
            hf.update(model_type="roberta", architectures=["RobertaModel"],
                      pad_token_id=self.position_offset - 1, bos_token_id=0, eos_token_id=2)
        else:
            hf.update(model_type="bert", architectures=["BertModel"], pad_token_id=0)
        return hf

    @classmethod
    def from_hf_dict(cls, hf):
        missing = [k for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                               "intermediate_size", "vocab_size") if k not in hf]
        if missing:
            raise ValueError(f"config.json lacks {', '.join(missing)}")
        if hf.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only absolute position embeddings are supported, got "
                             f"{hf['position_embedding_type']!r}")
        act = hf.get("hidden_act", "gelu")
        if not isinstance(act, str) or act not in _ACTIVATIONS:
            raise ValueError(f"unsupported hidden_act {act!r} in config.json")
        values = {ours: hf[hf_key] for hf_key, ours in _HF_KEYS.items() if hf_key in hf}
        _check_types(values, names={ours: hf_key for hf_key, ours in _HF_KEYS.items()})
        values["hidden_act"] = _ACTIVATIONS[act]
        if hf.get("attention_head_size") is not None:  # written only for a narrowed cell
            values["attention_head_dim"] = hf["attention_head_size"]
        for field, hf_key in _HF_PER_LAYER_KEYS.items():
            if hf.get(hf_key) is not None:
                values[field] = hf[hf_key]
        model_type = hf.get("model_type", "bert")
        if model_type not in MODEL_TYPES:
            raise ValueError(f"unsupported model_type {model_type!r} in config.json; "
                             f"expected one of {', '.join(MODEL_TYPES)}")
        values["model_type"] = model_type
        if model_type == "roberta":  # positions count from padding_idx + 1
            pad = hf.get("pad_token_id", 1)
            if not (isinstance(pad, int) and _is_number(pad) and pad >= 0):
                raise ValueError(f"pad_token_id must be an integer >= 0, got {pad!r}")
            values["position_offset"] = pad + 1
        return cls(**values)

    @classmethod
    def from_json_file(cls, path):
        """Reads a Hugging Face `config.json` (a file or the directory holding it)."""
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        hf = files.read_json(path, "config.json")
        if not isinstance(hf, dict):
            raise ValueError(f"{path} holds a JSON {type(hf).__name__}, not an object")
        try:
            return cls.from_hf_dict(hf)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None


def _per_layer(config, field, uniform):
    """The validated tuple of `config.<field>` (one positive int per layer, the largest equal
    to `config.<uniform>`), or None when it is None or all its values are equal."""
    values = getattr(config, field)
    if values is None:
        return None
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{field} must be a list of positive integers, got {values!r}")
    values = tuple(values)
    if not all(isinstance(v, int) and _is_number(v) and v > 0 for v in values):
        raise ValueError(f"{field} must be a list of positive integers, got {list(values)}")
    if len(values) != config.num_layers:
        raise ValueError(f"{field} has {len(values)} values for {config.num_layers} layers")
    if max(values) != getattr(config, uniform):
        raise ValueError(f"{uniform} must be the largest of {field}: {max(values)}, got "
                         f"{getattr(config, uniform)}")
    return None if len(set(values)) == 1 else values


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_types(values, names=None):
    """ValueError naming the first field of `values` of the wrong type or range (by its name
    in `names`, e.g. the config.json key, when given)."""
    names = names or {}
    for field, value in values.items():
        name = names.get(field, field)
        if field in _POSITIVE_INTS and not (isinstance(value, int) and _is_number(value)
                                            and value > 0):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if field in _FRACTIONS and not (_is_number(value) and 0 <= value < 1):
            raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
        if field == "layer_norm_epsilon" and not (_is_number(value) and value > 0):
            raise ValueError(f"{name} must be a number > 0, got {value!r}")
