"""Analytic size and compute of a (width_mult, depth_mult[, hidden_mult]) cell or a
per-layer sub-network.

FLOPs count 2 x the multiply-accumulates of every matmul for one sequence (attention
scores and context included); embeddings lookups, softmax, LayerNorm and GELU are not
counted (under 1% for BERT shapes). Parameters count what the standalone cell holds:
embeddings, the kept layers at the kept width, pooler and head.

A per-layer sub-network (`elastic.layerwise.LayerwiseConfig`) is counted layer by layer
(`count_params_layerwise`, `count_flops_layerwise`, or `subnetwork=` of the cell functions).

`hidden_mult` (default 1) cuts every hidden dimension h to `kept_hidden` =
`grid.num_kept(hidden_size, hidden_mult)`; the attention's inner width (kept heads x head_dim)
does not depend on it.
"""

from dynabert_tf.core import grid as grid_lib
from dynabert_tf.elastic import layerwise


def cell_dims(bert_config, width_mult, depth_mult):
    """(kept layer count, kept heads, kept FFN neurons)."""
    return (len(grid_lib.kept_layers(bert_config.num_layers, depth_mult)),
            grid_lib.num_kept(bert_config.num_heads, width_mult),
            grid_lib.num_kept(bert_config.intermediate_size, width_mult))


def _cell_layer_dims(cfg, width_mult, depth_mult):
    """[(heads, FFN neurons)] of each kept layer of the cell; in a model whose layers differ
    (`BertConfig.layer_num_heads`), the width keeps its share of each layer's own."""
    heads, neurons = cfg.heads_per_layer, cfg.intermediate_sizes_per_layer
    return [(grid_lib.num_kept(heads[i], width_mult), grid_lib.num_kept(neurons[i], width_mult))
            for i in grid_lib.kept_layers(cfg.num_layers, depth_mult)]


def kept_hidden(bert_config, hidden_mult=1.0):
    """Hidden units kept at `hidden_mult`."""
    return grid_lib.num_kept(bert_config.hidden_size, hidden_mult)


def _layer_params(cfg, heads, neurons, h=None):
    h, inner = h or cfg.hidden_size, heads * cfg.head_dim
    attention = 3 * (h * inner + inner) + inner * h + h + 2 * h
    feedforward = h * neurons + neurons + neurons * h + h + 2 * h
    return attention + feedforward


def _outside_layers_params(cfg, num_classes, h=None):
    """Embeddings, pooler and classifier (at h hidden units, default all)."""
    h = h or cfg.hidden_size
    embeddings = (cfg.vocab_size + cfg.max_position_embeddings + cfg.type_vocab_size) * h + 2 * h
    return embeddings + h * h + h + h * num_classes + num_classes


def _layer_flops(cfg, heads, neurons, seq_len, h=None):
    h, inner, s = h or cfg.hidden_size, heads * cfg.head_dim, seq_len
    return 2 * (s * h * 3 * inner      # query, key, value
                + 2 * s * s * inner    # scores and context
                + s * inner * h        # attention output
                + 2 * s * h * neurons)  # feed-forward in and out


def _outside_layers_flops(cfg, num_classes, h=None):
    """Pooler and classifier (at h hidden units, default all)."""
    h = h or cfg.hidden_size
    return 2 * (h * h + h * num_classes)


def _check_subnetwork_alone(width_mult, depth_mult, hidden_mult=1.0):
    if (width_mult, depth_mult, hidden_mult) != (1.0, 1.0, 1.0):
        raise ValueError("give either subnetwork or width_mult/depth_mult/hidden_mult, not both")


def count_params(bert_config, width_mult=1.0, depth_mult=1.0, num_classes=2, subnetwork=None,
                 hidden_mult=1.0):
    if subnetwork is not None:
        _check_subnetwork_alone(width_mult, depth_mult, hidden_mult)
        return count_params_layerwise(bert_config, subnetwork, num_classes)
    h = kept_hidden(bert_config, hidden_mult)
    return (_outside_layers_params(bert_config, num_classes, h)
            + sum(_layer_params(bert_config, heads, neurons, h)
                  for heads, neurons in _cell_layer_dims(bert_config, width_mult, depth_mult)))


def count_flops(bert_config, width_mult=1.0, depth_mult=1.0, seq_len=128, num_classes=2,
                subnetwork=None, hidden_mult=1.0):
    if subnetwork is not None:
        _check_subnetwork_alone(width_mult, depth_mult, hidden_mult)
        return count_flops_layerwise(bert_config, subnetwork, seq_len, num_classes)
    h = kept_hidden(bert_config, hidden_mult)
    return (sum(_layer_flops(bert_config, heads, neurons, seq_len, h)
                for heads, neurons in _cell_layer_dims(bert_config, width_mult, depth_mult))
            + _outside_layers_flops(bert_config, num_classes, h))


def count_params_layerwise(bert_config, config, num_classes=2):
    """Parameters of the standalone per-layer sub-network `config` (a LayerwiseConfig)."""
    layerwise.check(config, bert_config)
    return (_outside_layers_params(bert_config, num_classes)
            + sum(_layer_params(bert_config, heads, neurons)
                  for heads, neurons in zip(config.heads, config.neurons)))


def count_flops_layerwise(bert_config, config, seq_len=128, num_classes=2):
    """FLOPs of the per-layer sub-network `config` on one sequence of `seq_len` tokens."""
    layerwise.check(config, bert_config)
    return (sum(_layer_flops(bert_config, heads, neurons, seq_len)
                for heads, neurons in zip(config.heads, config.neurons))
            + _outside_layers_flops(bert_config, num_classes))
