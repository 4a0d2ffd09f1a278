"""A standalone, static-shape model for one (width_mult, depth_mult) cell.

The dynamic model runs a cell by slicing its weights on every call. For deployment we copy
those slices out once: the extracted classifier holds only the kept layers
(`config.kept_layers`), the leading `config.num_kept` heads and FFN neurons of each, and the
untouched embeddings, pooler and head. It is an ordinary `DynaBertClassifier` whose config has

    num_layers = len(kept_layers), num_heads = kept heads, intermediate_size = kept neurons,
    attention_head_dim = the parent's head width (hidden / parent heads)

so calling it at width 1.0, depth 1.0 reproduces the parent at the cell:

    cell = extract_subnetwork(classifier, width_mult=0.5, depth_mult=0.75)
    cell(inputs)  ==  classifier(inputs, width_mult=0.5, depth_mult=0.75)   # up to float error
    save_subnetwork_hf(cell, "out/w0.50_d0.75", vocab_path="vocab.txt")
"""

import numpy as np

from dynabert_tf import checkpoint
from dynabert_tf import config as config_lib
from dynabert_tf import cost
from dynabert_tf.model import DynaBertBackbone, DynaBertClassifier


def cell_config(bert_config, width_mult, depth_mult):
    """The BertConfig of the standalone (width_mult, depth_mult) cell of `bert_config`."""
    layers, heads, neurons = cost.cell_dims(bert_config, width_mult, depth_mult)
    return config_lib.BertConfig(**{
        **bert_config.to_dict(), "num_layers": layers, "num_heads": heads,
        "intermediate_size": neurons, "attention_head_dim": bert_config.head_dim})


def _copy_prefix(target_layer, source_layer):
    """Assigns each weight of `target_layer` the leading slice of its twin in `source_layer`.

    Every weight of a narrowed layer is a prefix of the parent's along each axis (heads on
    axis 1 of the q/k/v kernels, axis 0 of the output kernel; neurons on the FFN axes), so
    one rule copies them all; the names are checked pairwise.
    """
    targets, sources = target_layer.weights, source_layer.weights
    if len(targets) != len(sources):
        raise ValueError(f"{target_layer.name}: {len(targets)} weights vs {len(sources)}")
    for target, source in zip(targets, sources):
        if target.path.split("/")[-2:] != source.path.split("/")[-2:]:
            raise ValueError(f"weight order differs: {target.path} vs {source.path}")
        value = np.asarray(source)
        if any(t > s for t, s in zip(target.shape, value.shape)):
            raise ValueError(f"{target.path}: {target.shape} is not a slice of {value.shape}")
        target.assign(value[tuple(slice(0, n) for n in target.shape)])


def extract_subnetwork(classifier, width_mult, depth_mult):
    """A standalone `DynaBertClassifier` equal to `classifier` run at (width_mult, depth_mult).

    The weights are copied (not shared), so the result can be exported or saved on its own.
    Its dropout rates are the parent's; call it with `training=False` (the default).
    """
    width_mult = config_lib.check_multiplier("width_mult", width_mult)
    depth_mult = config_lib.check_multiplier("depth_mult", depth_mult)
    parent = classifier.backbone
    cfg = cell_config(parent.bert_config, width_mult, depth_mult)
    backbone = DynaBertBackbone.from_config_object(cfg, name=parent.name)
    _copy_prefix(backbone.embeddings, parent.embeddings)
    kept = config_lib.kept_layers(parent.bert_config.num_layers, depth_mult)
    for layer, i in zip(backbone.transformer_layers, kept):
        _copy_prefix(layer, parent.transformer_layers[i])
    _copy_prefix(backbone.pooler, parent.pooler)
    cell = DynaBertClassifier(backbone, classifier.num_classes, dropout=classifier.dropout_rate,
                              name=classifier.name)
    _copy_prefix(cell.classifier, classifier.classifier)
    return cell


def save_subnetwork_hf(classifier_cell, path, vocab_path=None, extra_config=None):
    """Writes an extracted cell as a Hugging Face BERT directory (see checkpoint.save_classifier).

    config.json carries the cell's `num_hidden_layers`, `intermediate_size`,
    `num_attention_heads` and, when the heads are narrower than hidden / heads,
    `attention_head_size`; `checkpoint.load_classifier(path)` reads it back.
    """
    if not isinstance(classifier_cell, DynaBertClassifier):
        raise TypeError(f"expected a DynaBertClassifier, got {type(classifier_cell).__name__}")
    return checkpoint.save_classifier(classifier_cell, path, vocab_path=vocab_path,
                                      extra_config=extra_config)
