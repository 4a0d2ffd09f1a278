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
"""

import keras

from dynabert_tf.elastic import cost
from dynabert_tf.elastic import grid as grid_lib
from dynabert_tf.layers import weight_layout
from dynabert_tf.models import config as model_config
from dynabert_tf.models.backbone import DynaBertBackbone
from dynabert_tf.models.task_model import DynaBertTaskModel


def cell_config(bert_config, width_mult, depth_mult):
    """The BertConfig of the standalone (width_mult, depth_mult) cell of `bert_config`."""
    layers, heads, neurons = cost.cell_dims(bert_config, width_mult, depth_mult)
    return model_config.BertConfig(**{
        **bert_config.to_dict(), "num_layers": layers, "num_heads": heads,
        "intermediate_size": neurons, "attention_head_dim": bert_config.head_dim})


def _copy_whole(target, source):
    for t, s in zip(target.weights, source.weights):
        t.assign(s)


def extract_subnetwork(model, width_mult, depth_mult):
    """A standalone `DynaBertTaskModel` equal to `model` run at (width_mult, depth_mult).

    The weights are copied (not shared), so the result can be exported or saved on its own.
    Its dropout rates are the parent's; call it with `training=False` (the default).
    """
    width_mult = grid_lib.check_multiplier("width_mult", width_mult)
    depth_mult = grid_lib.check_multiplier("depth_mult", depth_mult)
    parent = model.backbone
    cfg = cell_config(parent.bert_config, width_mult, depth_mult)
    backbone = DynaBertBackbone.from_config_object(cfg, name=parent.name)
    _copy_whole(backbone.embeddings, parent.embeddings)
    kept = grid_lib.kept_layers(parent.bert_config.num_layers, depth_mult)
    for layer, i in zip(backbone.transformer_layers, kept):
        source = parent.transformer_layers[i]
        weight_layout.assign_all(layer.attention, weight_layout.narrowed(
            source.attention, cfg.num_heads))
        weight_layout.assign_all(layer.feedforward, weight_layout.narrowed(
            source.feedforward, cfg.intermediate_size))
    _copy_whole(backbone.pooler, parent.pooler)
    head = keras.layers.deserialize(keras.layers.serialize(model.head))
    cell = DynaBertTaskModel(backbone, head, name=model.name)
    _copy_whole(cell.head, model.head)
    return cell
