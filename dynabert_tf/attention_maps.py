"""Attention maps of a trained DynaBERT beside its teacher's (the paper's Figure 5).

    panels = cell_panels(student, teacher_maps, inputs, 0.5, 0.75, layers=(0, 5), heads=(0, 1))
    plots.attention_pairs(panels, tokens, "w0.50_d0.75.png", title="...")

Layers are numbered as in the full network (a student at depth 0.5 of 6 layers runs layers
0, 2, 4), heads as in the (rewired) full network: a cell at width m_w keeps the leading
round(m_w * heads). A chosen layer or head that a cell does not run gets no student matrix,
only a note saying why; the teacher always runs at full width and depth.
"""

import dataclasses

import numpy as np

from dynabert_tf.core import grid as grid_lib


@dataclasses.dataclass
class Panel:
    """One (layer, head) of one cell: teacher and student attention, [tokens, tokens] each
    (row: the attending token, column: the token attended to)."""

    layer: int
    head: int
    teacher: np.ndarray
    student: np.ndarray | None  # None when the cell does not run this layer or head
    note: str | None = None  # why `student` is None


def layer_attention(model, inputs, width_mult=1.0, depth_mult=1.0):
    """The first example's attention probabilities per kept layer.

    Args:
      model: a DynaBertTaskModel (or anything whose `return_dict=True` call gives
        `attention_probs` and whose `bert_config` gives `num_layers`).
      inputs: dict of int [batch, seq] `token_ids`, `segment_ids`, `padding_mask`.
    Returns:
      {full-network layer index: float32 [heads_kept, tokens, tokens]}, tokens = the first
      example's real (unpadded) length.
    """
    out = model(inputs, width_mult=width_mult, depth_mult=depth_mult, training=False,
                return_dict=True)
    length = int(np.sum(np.asarray(inputs["padding_mask"])[0]))
    layer_ids = grid_lib.kept_layers(model.bert_config.num_layers, depth_mult)
    return {layer: np.asarray(probs)[0, :, :length, :length]
            for layer, probs in zip(layer_ids, out["attention_probs"])}


def check_selection(config, layers, heads):
    """Raises ValueError unless every layer and head exists in a model of `config`."""
    if not layers or not heads:
        raise ValueError("--layers and --heads must each name at least one index")
    for flag, values, count in (("layers", layers, config.num_layers),
                                ("heads", heads, config.num_heads)):
        bad = [v for v in values if not 0 <= v < count]
        if bad:
            raise ValueError(f"--{flag} {','.join(map(str, bad))} out of range: the model has "
                             f"{count} {flag} (0..{count - 1})")


def cell_panels(student, teacher_maps, inputs, width_mult, depth_mult, layers, heads):
    """[Panel] for each layer in `layers`, each head in `heads` (in that order) of one cell.

    Args:
      student: the elastic model; run here at (width_mult, depth_mult).
      teacher_maps: `layer_attention(teacher, inputs)` at full width and depth.
      inputs: as `layer_attention`.
      layers, heads: full-network indices (`check_selection`).
    """
    config = student.bert_config
    student_maps = layer_attention(student, inputs, width_mult, depth_mult)
    kept_heads = grid_lib.num_kept(config.num_heads, width_mult)
    panels = []
    for layer in layers:
        for head in heads:
            student_map, note = None, None
            if layer not in student_maps:
                note = (f"layer {layer} does not run at depth {depth_mult:g} (kept layers "
                        f"{','.join(map(str, sorted(student_maps)))})")
            elif head >= kept_heads:
                note = (f"head {head} is not kept at width {width_mult:g} ({kept_heads} of "
                        f"{config.num_heads} heads)")
            else:
                student_map = student_maps[layer][head]
            panels.append(Panel(layer, head, teacher_maps[layer][head], student_map, note))
    return panels
