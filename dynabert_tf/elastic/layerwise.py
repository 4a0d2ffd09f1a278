"""Per-layer ("mix-n-match") sub-networks of one trained DynaBERT (no TensorFlow import).

A grid cell keeps the same width in every kept layer. A `LayerwiseConfig` chooses, from the
same weights, any increasing subset of layers and, for each kept layer, its own number of
heads and FFN neurons (the leading ones, as at a grid width):

    config = LayerwiseConfig(layers=(0, 1, 2, 4), heads=(12, 9, 6, 3),
                             neurons=(1536, 1152, 768, 384))
    config.name        # 'mix_l0.1.2.4_h12.9.6.3_n1536.1152.768.384'
    model(inputs, subnetwork=config)   # DynaBertTaskModel / DynaBertBackbone
    check(config, bert_config)         # one-line ValueError if it does not fit the model

Head and neuron counts are multiples of the grid's step, the count kept at width 0.25
(`head_step`, `neuron_step`: 12 heads -> 3, 1536 neurons -> 384), or a count some grid width
keeps (different from a multiple only when the total is not divisible by 4), so every grid
cell is one of these configurations (`from_cell`, `is_grid_cell`).
"""

import dataclasses
import re

from dynabert_tf.core import grid as grid_lib

STEP_WIDTH = min(grid_lib.WIDTH_MULTS)
_NAME = re.compile(r"mix_l(\d+(?:\.\d+)*)_h(\d+(?:\.\d+)*)_n(\d+(?:\.\d+)*)")


@dataclasses.dataclass(frozen=True)
class LayerwiseConfig:
    """Kept layer indices (strictly increasing) and, per kept layer, heads and FFN neurons."""

    layers: tuple[int, ...]
    heads: tuple[int, ...]
    neurons: tuple[int, ...]

    def __post_init__(self):
        for field in ("layers", "heads", "neurons"):
            value = getattr(self, field)
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise ValueError(f"LayerwiseConfig.{field} must be a sequence of ints, got "
                                 f"{value!r}")
            value = tuple(value)
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                value = tuple(_as_int(field, v) for v in value)
            object.__setattr__(self, field, value)

    @property
    def name(self):
        """Stable, file-safe name, e.g. 'mix_l0.1.2.4_h12.9.6.3_n1536.1152.768.384'."""
        join = lambda values: ".".join(str(v) for v in values)
        return f"mix_l{join(self.layers)}_h{join(self.heads)}_n{join(self.neurons)}"

    @classmethod
    def from_name(cls, name):
        """Inverse of `name`."""
        match = _NAME.fullmatch(name) if isinstance(name, str) else None
        if match is None:
            raise ValueError(f"bad per-layer sub-network name {name!r}; expected like "
                             f"'mix_l0.1.2.4_h12.9.6.3_n1536.1152.768.384'")
        return cls(*(tuple(int(v) for v in group.split(".")) for group in match.groups()))

    def to_dict(self):
        return {"layers": list(self.layers), "heads": list(self.heads),
                "neurons": list(self.neurons)}

    @classmethod
    def from_dict(cls, values):
        if not isinstance(values, dict) or set(values) != {"layers", "heads", "neurons"}:
            raise ValueError(f"a per-layer sub-network dict has exactly the keys layers, heads, "
                             f"neurons; got {values!r}")
        return cls(values["layers"], values["heads"], values["neurons"])


def _as_int(field, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ValueError(f"LayerwiseConfig.{field} must hold ints, got {value!r}")
    return int(value)


def head_step(bert_config):
    """The grid's head step: heads kept at width 0.25 (12 -> 3)."""
    return grid_lib.num_kept(bert_config.num_heads, STEP_WIDTH)


def neuron_step(bert_config):
    """The grid's FFN neuron step: neurons kept at width 0.25 (1536 -> 384)."""
    return grid_lib.num_kept(bert_config.intermediate_size, STEP_WIDTH)


def _choices(total, step):
    grid_counts = {grid_lib.num_kept(total, w) for w in grid_lib.WIDTH_MULTS}
    return tuple(sorted(set(range(step, total + 1, step)) | grid_counts))


def head_choices(bert_config):
    """Allowed head counts of one layer, increasing: multiples of `head_step` up to the
    layer's heads, and every grid width's count."""
    return _choices(bert_config.num_heads, head_step(bert_config))


def neuron_choices(bert_config):
    """Allowed FFN neuron counts of one layer, increasing (as `head_choices`)."""
    return _choices(bert_config.intermediate_size, neuron_step(bert_config))


def from_cell(bert_config, width_mult, depth_mult):
    """The grid cell (width_mult, depth_mult) as a LayerwiseConfig."""
    layers = grid_lib.kept_layers(bert_config.num_layers, depth_mult)
    heads = grid_lib.num_kept(bert_config.num_heads, width_mult)
    neurons = grid_lib.num_kept(bert_config.intermediate_size, width_mult)
    return LayerwiseConfig(layers, (heads,) * len(layers), (neurons,) * len(layers))


def check(config, bert_config):
    """Returns `config` if it is a sub-network of a model of `bert_config`; else a one-line
    ValueError saying what is wrong."""
    if not isinstance(config, LayerwiseConfig):
        raise ValueError(f"subnetwork must be a LayerwiseConfig, got {type(config).__name__}")
    if getattr(bert_config, "layer_num_heads", None) is not None or getattr(
            bert_config, "layer_intermediate_sizes", None) is not None:
        raise ValueError("per-layer sub-networks are taken from a model of uniform layers; "
                         "this model's layers already differ in size")
    layers, total = config.layers, bert_config.num_layers
    if not layers:
        raise ValueError("a per-layer sub-network keeps at least one layer")
    if len(config.heads) != len(layers) or len(config.neurons) != len(layers):
        raise ValueError(f"{config.name}: {len(layers)} layers but {len(config.heads)} head "
                         f"counts and {len(config.neurons)} neuron counts")
    bad = [i for i in layers if not 0 <= i < total]
    if bad:
        raise ValueError(f"{config.name}: layer index {bad[0]} out of range for {total} layers")
    if any(a >= b for a, b in zip(layers, layers[1:])):
        raise ValueError(f"{config.name}: layer indices must be strictly increasing, got "
                         f"{list(layers)}")
    for what, counts, allowed, total_of_layer in (
            ("heads", config.heads, head_choices(bert_config), bert_config.num_heads),
            ("neurons", config.neurons, neuron_choices(bert_config),
             bert_config.intermediate_size)):
        for layer, count in zip(layers, counts):
            if count not in allowed:
                raise ValueError(
                    f"{config.name}: layer {layer} keeps {count} {what}; allowed: a positive "
                    f"multiple of {allowed[0]} up to {total_of_layer} "
                    f"({', '.join(str(a) for a in allowed)})")
    return config


def is_grid_cell(config, bert_config):
    """(width_mult, depth_mult) of the grid cell equal to `config` (the largest such, in
    `grid.grid()` order), or None."""
    for width_mult, depth_mult in grid_lib.grid():
        if from_cell(bert_config, width_mult, depth_mult) == config:
            return width_mult, depth_mult
    return None
