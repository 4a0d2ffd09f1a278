"""Architecture config (from a Hugging Face `config.json`) and the width x depth grid.

The grid rules live here and nowhere else:

* width: `num_kept(total, width_mult)` heads / FFN neurons are kept, the leading ones;
* depth: `kept_layers(num_layers, depth_mult)` lists the layer indices that run.
"""

import dataclasses
import json
import math
import os

# Model inputs: int32 [batch, seq] tensors, keras-hub's names (padding_mask: 1 token, 0 pad).
INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")
WIDTH_MULTS = (1.0, 0.75, 0.5, 0.25)
DEPTH_MULTS = (1.0, 0.75, 0.5)

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
# Hugging Face activation names -> ours ("gelu" is the exact erf form).
_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_approximate",
                "gelu_pytorch_tanh": "gelu_approximate",
                "gelu_approximate": "gelu_approximate", "relu": "relu"}


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """Shape of a post-LayerNorm BERT encoder."""

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

    def __post_init__(self):
        if self.attention_head_dim is not None:
            if not (isinstance(self.attention_head_dim, int) and self.attention_head_dim > 0):
                raise ValueError(f"attention_head_dim must be a positive int, got "
                                 f"{self.attention_head_dim!r}")
            if self.attention_head_dim * self.num_heads == self.hidden_size:
                object.__setattr__(self, "attention_head_dim", None)  # the canonical form
        elif self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by "
                             f"num_heads {self.num_heads}")
        if self.hidden_act not in set(_ACTIVATIONS.values()):
            raise ValueError(f"unsupported hidden_act {self.hidden_act!r}; "
                             f"expected one of {sorted(set(_ACTIVATIONS.values()))}")

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
        if act not in _ACTIVATIONS:
            raise ValueError(f"unsupported hidden_act {act!r} in config.json")
        values = {ours: hf[hf_key] for hf_key, ours in _HF_KEYS.items() if hf_key in hf}
        values["hidden_act"] = _ACTIVATIONS[act]
        if hf.get("attention_head_size") is not None:  # written only for a narrowed cell
            values["attention_head_dim"] = hf["attention_head_size"]
        return cls(**values)

    @classmethod
    def from_json_file(cls, path):
        """Reads a Hugging Face `config.json` (a file or the directory holding it)."""
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no config.json at {path}")
        with open(path) as f:
            try:
                hf = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path} is not valid JSON: {e}") from None
        return cls.from_hf_dict(hf)


def check_multiplier(name, value):
    """Raises ValueError unless 0 < value <= 1."""
    if not isinstance(value, (int, float)) or not 0.0 < float(value) <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return float(value)


def num_kept(total, width_mult):
    """Heads or FFN neurons kept at `width_mult`: round(m_w * total), halves up, at least 1."""
    width_mult = check_multiplier("width_mult", width_mult)
    return max(1, min(total, int(math.floor(width_mult * total + 0.5))))


def kept_layers(num_layers, depth_mult):
    """Indices of the layers that run at `depth_mult` ("every other" layer drop).

    The kept count is D = round(m_d * L) (Python rounding, halves to even, at least 1) and
    the kept layers are floor(i / m_d) for i < D, the rule of the DynaBERT paper's code.
    For 12 layers: 0.75 -> 0,1,2,4,5,6,8,9,10 and 0.5 -> 0,2,4,6,8,10.
    For 6 layers:  0.75 -> 0,1,2,4 (round(4.5) = 4) and 0.5 -> 0,2,4.
    """
    depth_mult = check_multiplier("depth_mult", depth_mult)
    depth = max(1, round(depth_mult * num_layers))
    return tuple(min(num_layers - 1, int(math.floor(i / depth_mult + 1e-9)))
                 for i in range(depth))


def cell_name(width_mult, depth_mult):
    """File/json name of a grid cell, e.g. `w0.50_d0.75`."""
    return f"w{width_mult:.2f}_d{depth_mult:.2f}"


def parse_cell_name(name):
    """Inverse of `cell_name`: 'w0.50_d0.75' -> (0.5, 0.75)."""
    try:
        w_part, d_part = name.split("_")
        if not (w_part.startswith("w") and d_part.startswith("d")):
            raise ValueError
        width_mult, depth_mult = float(w_part[1:]), float(d_part[1:])
    except ValueError:
        raise ValueError(f"bad cell name {name!r}; expected like 'w0.50_d0.75'") from None
    return check_multiplier("width_mult", width_mult), check_multiplier("depth_mult", depth_mult)


def grid(width_mults=WIDTH_MULTS, depth_mults=DEPTH_MULTS):
    """All (width_mult, depth_mult) cells, largest first: depth-major, then width."""
    for value in (*width_mults, *depth_mults):
        check_multiplier("multiplier", value)
    return [(w, d) for d in sorted(depth_mults, reverse=True)
            for w in sorted(width_mults, reverse=True)]
