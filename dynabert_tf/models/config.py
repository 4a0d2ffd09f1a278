"""Encoder architecture config and the input names. No file format: a Hugging Face
`config.json` maps to a `BertConfig` in `presets/hf_config.py`."""

import dataclasses

# Model inputs: int32 [batch, seq] tensors, keras-hub's names (padding_mask: 1 token, 0 pad).
INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")
MODEL_TYPES = ("bert", "roberta")

_POSITIVE_INTS = ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
                  "max_position_embeddings", "type_vocab_size")
_FRACTIONS = ("hidden_dropout", "attention_dropout")
# Activations of the feed-forward layers ("gelu" is the exact erf form).
HIDDEN_ACTS = ("gelu", "gelu_approximate", "relu")


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
        check_fields(vars(self))
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
        if self.hidden_act not in HIDDEN_ACTS:
            raise ValueError(f"unsupported hidden_act {self.hidden_act!r}; "
                             f"expected one of {sorted(HIDDEN_ACTS)}")

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


def check_fields(values, names=None):
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
