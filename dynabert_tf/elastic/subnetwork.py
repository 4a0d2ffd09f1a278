"""A standalone, static-shape model for one (width_mult, depth_mult) cell.

The dynamic model runs a cell by slicing its weights on every call. For deployment we copy
those slices out once: the extracted model holds only the kept layers
(`grid.kept_layers`), the leading `grid.num_kept` heads and FFN neurons of each (each layer's
`width_axes`, `layers/weight_layout.py`), and the untouched embeddings, pooler and task head.
It is an ordinary `DynaBertTaskModel` whose config has

    num_layers = len(kept_layers), num_heads = kept heads, intermediate_size = kept neurons,
    attention_head_dim = the parent's head width (hidden / parent heads)

so calling it at width 1.0, depth 1.0 reproduces the parent at the cell:

    cell = extract_subnetwork(model, width_mult=0.5, depth_mult=0.75)
    cell(inputs)  ==  model(inputs, width_mult=0.5, depth_mult=0.75)   # up to float error
    cell.save_to_preset("out/w0.50_d0.75", vocab_path="vocab.txt")

A per-layer sub-network (`elastic.layerwise.LayerwiseConfig`) is extracted the same way; its
layers keep their own head and neuron counts (`BertConfig.layer_num_heads`,
`layer_intermediate_sizes`):

    mixed = extract_layerwise(model, config)
    mixed(inputs)  ==  model(inputs, subnetwork=config)

With `hidden_mult` the cell also has hidden_size = the kept hidden units
(`grid.num_kept(hidden_size, hidden_mult)`): every weight's hidden axes (`hidden_axes` of
each layer, the pooler's and the head's) keep their leading units.
"""

from dynabert_tf.core import grid as grid_lib
from dynabert_tf.elastic import layerwise
from dynabert_tf.layers import weight_layout
from dynabert_tf.models import config as model_config
from dynabert_tf.models.backbone import DynaBertBackbone
from dynabert_tf.models.task_model import DynaBertTaskModel


def cell_config(bert_config, width_mult, depth_mult, hidden_mult=1.0):
    """The BertConfig of the standalone (width_mult, depth_mult[, hidden_mult]) cell of
    `bert_config` (of a model whose layers differ in size, the width keeps its share of each
    layer's own)."""
    kept = grid_lib.kept_layers(bert_config.num_layers, depth_mult)
    heads = [grid_lib.num_kept(bert_config.heads_per_layer[i], width_mult) for i in kept]
    neurons = [grid_lib.num_kept(bert_config.intermediate_sizes_per_layer[i], width_mult)
               for i in kept]
    return _narrowed_config(bert_config, heads, neurons,
                            grid_lib.num_kept(bert_config.hidden_size, hidden_mult))


def layerwise_config(bert_config, config):
    """The BertConfig of the standalone per-layer sub-network `config` of `bert_config`."""
    layerwise.check(config, bert_config)
    return _narrowed_config(bert_config, config.heads, config.neurons)


def _narrowed_config(bert_config, heads, neurons, hidden_size=None):
    """`bert_config` with layers of `heads` heads (of the parent's head width) and `neurons`
    FFN neurons, one per kept layer (uniform when all are equal: the canonical form), and
    `hidden_size` hidden units (default the parent's)."""
    return model_config.BertConfig(**{
        **bert_config.to_dict(), "num_layers": len(heads), "num_heads": max(heads),
        "intermediate_size": max(neurons), "layer_num_heads": tuple(heads),
        "layer_intermediate_sizes": tuple(neurons), "attention_head_dim": bert_config.head_dim,
        "hidden_size": hidden_size or bert_config.hidden_size})


def _copy_narrowed(target, source, hidden, hidden_axes=None):
    """Copies `source`'s weights into `target`, hidden axes cut to `hidden` units."""
    weight_layout.assign_all(target, weight_layout.narrowed(source, hidden=hidden,
                                                            hidden_axes=hidden_axes))


def extract_subnetwork(model, width_mult, depth_mult, hidden_mult=1.0):
    """A standalone `DynaBertTaskModel` equal to `model` run at (width_mult, depth_mult,
    hidden_mult).

    The weights are copied (not shared), so the result can be exported or saved on its own.
    Its dropout rates are the parent's; call it with `training=False` (the default).
    """
    width_mult = grid_lib.check_multiplier("width_mult", width_mult)
    depth_mult = grid_lib.check_multiplier("depth_mult", depth_mult)
    hidden_mult = grid_lib.check_multiplier("hidden_mult", hidden_mult)
    cfg = cell_config(model.bert_config, width_mult, depth_mult, hidden_mult)
    kept = grid_lib.kept_layers(model.bert_config.num_layers, depth_mult)
    return _standalone(model, cfg, kept)


def extract_layerwise(model, config):
    """A standalone `DynaBertTaskModel` equal to `model(inputs, subnetwork=config)`: layer k
    is the parent's layer `config.layers[k]` keeping its leading `config.heads[k]` heads and
    `config.neurons[k]` neurons (copied weights, as `extract_subnetwork`)."""
    return _standalone(model, layerwise_config(model.bert_config, config), config.layers)


def _standalone(model, cfg, kept):
    """The model of config `cfg` holding the parent's embeddings, pooler and head, and the
    leading heads / neurons (as many as `cfg` gives each layer) of its layers `kept`, all at
    the leading `cfg.hidden_size` hidden units."""
    parent = model.backbone
    hidden = cfg.hidden_size
    backbone = DynaBertBackbone.from_config_object(cfg, name=parent.name)
    _copy_narrowed(backbone.embeddings, parent.embeddings, hidden)
    for layer, i in zip(backbone.transformer_layers, kept):
        source = parent.transformer_layers[i]
        weight_layout.assign_all(layer.attention, weight_layout.narrowed(
            source.attention, layer.attention.num_heads, hidden))
        weight_layout.assign_all(layer.feedforward, weight_layout.narrowed(
            source.feedforward, layer.feedforward.intermediate_size, hidden))
    _copy_narrowed(backbone.pooler, parent.pooler, hidden, weight_layout.POOLER_HIDDEN_AXES)
    # Unbuilt (built at `hidden`), under the global dtype policy as the backbone is, not the
    # parent's (an export extracts float32 cells from a model trained mixed).
    head = type(model.head).from_config({**model.head.get_config(), "dtype": None})
    cell = DynaBertTaskModel(backbone, head, name=model.name)
    _copy_narrowed(cell.head, model.head, hidden, weight_layout.HEAD_HIDDEN_AXES)
    return cell
