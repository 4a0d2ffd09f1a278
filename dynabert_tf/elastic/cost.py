"""Analytic size and compute of a (width_mult, depth_mult) cell.

FLOPs count 2 x the multiply-accumulates of every matmul for one sequence (attention
scores and context included); embeddings lookups, softmax, LayerNorm and GELU are not
counted (under 1% for BERT shapes). Parameters count what the standalone cell holds:
embeddings, the kept layers at the kept width, pooler and head.
"""

from dynabert_tf.elastic import grid as grid_lib


def cell_dims(bert_config, width_mult, depth_mult):
    """(kept layer count, kept heads, kept FFN neurons)."""
    return (len(grid_lib.kept_layers(bert_config.num_layers, depth_mult)),
            grid_lib.num_kept(bert_config.num_heads, width_mult),
            grid_lib.num_kept(bert_config.intermediate_size, width_mult))


def count_params(bert_config, width_mult=1.0, depth_mult=1.0, num_classes=2):
    cfg = bert_config
    layers, heads, neurons = cell_dims(cfg, width_mult, depth_mult)
    h, inner = cfg.hidden_size, heads * cfg.head_dim
    embeddings = (cfg.vocab_size + cfg.max_position_embeddings + cfg.type_vocab_size) * h + 2 * h
    attention = 3 * (h * inner + inner) + inner * h + h + 2 * h
    feedforward = h * neurons + neurons + neurons * h + h + 2 * h
    head = h * h + h + h * num_classes + num_classes
    return embeddings + layers * (attention + feedforward) + head


def count_flops(bert_config, width_mult=1.0, depth_mult=1.0, seq_len=128, num_classes=2):
    cfg = bert_config
    layers, heads, neurons = cell_dims(cfg, width_mult, depth_mult)
    h, inner, s = cfg.hidden_size, heads * cfg.head_dim, seq_len
    per_layer = 2 * (s * h * 3 * inner      # query, key, value
                     + 2 * s * s * inner    # scores and context
                     + s * inner * h        # attention output
                     + 2 * s * h * neurons)  # feed-forward in and out
    return layers * per_layer + 2 * (h * h + h * num_classes)
