"""Name and layout tables between our backbone and BERT checkpoints (Hugging Face, keras-hub).

Our weights are stored heads / neurons first (`layers/attention.py`, `layers/feedforward.py`):
q/k/v kernels [heads, head_dim, hidden] are the Hugging Face `nn.Linear` weight [out, in]
reshaped, the intermediate kernel [intermediate, hidden] is the HF weight as is. RoBERTa uses
the same names under `roberta.` (`models/roberta/convert.py`).
"""

import numpy as np


def _transpose(x):
    return np.ascontiguousarray(np.asarray(x).T)


def _identity(x):
    return x


def hf_table(backbone):
    """[(variable, Hugging Face name, hf->ours, ours->hf)] for every backbone weight."""
    cfg = backbone.bert_config
    head_dim, hidden = cfg.head_dim, cfg.hidden_size
    emb = backbone.embeddings
    table = [
        (emb.token_embeddings, "embeddings.word_embeddings.weight", _identity, _identity),
        (emb.position_embeddings, "embeddings.position_embeddings.weight", _identity, _identity),
        (emb.segment_embeddings, "embeddings.token_type_embeddings.weight", _identity,
         _identity),
        (emb.layer_norm.gamma, "embeddings.LayerNorm.weight", _identity, _identity),
        (emb.layer_norm.beta, "embeddings.LayerNorm.bias", _identity, _identity),
        (backbone.pooler.kernel, "pooler.dense.weight", _transpose, _transpose),
        (backbone.pooler.bias, "pooler.dense.bias", _identity, _identity),
    ]
    merge_heads = lambda k: np.reshape(k, (-1, hidden))                 # ours -> [h*d, hidden]
    merge_bias = lambda b: np.reshape(b, (-1,))
    for i, layer in enumerate(backbone.transformer_layers):
        att, ffn = layer.attention, layer.feedforward
        # Each layer's own head count (layers of a per-layer sub-network differ).
        split_heads = lambda w, n=att.num_heads: np.reshape(w, (n, head_dim, hidden))
        split_bias = lambda b, n=att.num_heads: np.reshape(b, (n, head_dim))
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            table += [
                (getattr(att, f"{name}_kernel"), f"{p}attention.self.{name}.weight",
                 split_heads, merge_heads),
                (getattr(att, f"{name}_bias"), f"{p}attention.self.{name}.bias",
                 split_bias, merge_bias),
            ]
        table += [
            (att.output_kernel, f"{p}attention.output.dense.weight",
             lambda w, split=split_heads: split(_transpose(w)),
             lambda k: _transpose(merge_heads(k))),
            (att.output_bias, f"{p}attention.output.dense.bias", _identity, _identity),
            (att.layer_norm.gamma, f"{p}attention.output.LayerNorm.weight", _identity, _identity),
            (att.layer_norm.beta, f"{p}attention.output.LayerNorm.bias", _identity, _identity),
            (ffn.intermediate_kernel, f"{p}intermediate.dense.weight", _identity, _identity),
            (ffn.intermediate_bias, f"{p}intermediate.dense.bias", _identity, _identity),
            (ffn.output_kernel, f"{p}output.dense.weight", _transpose, _transpose),
            (ffn.output_bias, f"{p}output.dense.bias", _identity, _identity),
            (ffn.layer_norm.gamma, f"{p}output.LayerNorm.weight", _identity, _identity),
            (ffn.layer_norm.beta, f"{p}output.LayerNorm.bias", _identity, _identity),
        ]
    return table


def keras_hub_config(reference_config):
    """Our BertConfig fields from a keras-hub `BertBackbone.get_config()` (tanh GELU)."""
    ref = reference_config
    return dict(vocab_size=ref["vocabulary_size"], hidden_size=ref["hidden_dim"],
                num_layers=ref["num_layers"], num_heads=ref["num_heads"],
                intermediate_size=ref["intermediate_dim"],
                max_position_embeddings=ref["max_sequence_length"],
                type_vocab_size=ref["num_segments"], hidden_dropout=ref["dropout"],
                attention_dropout=ref["dropout"], hidden_act="gelu_approximate")


def keras_hub_layer_table(backbone):
    """[(variable, keras-hub weight path, keras-hub->ours)] of the transformer layers (the same
    in keras-hub's BERT and RoBERTa)."""
    heads_first = lambda k: np.transpose(k, (1, 2, 0))  # [hidden, heads, dim] -> ours
    table = []
    for i, layer in enumerate(backbone.transformer_layers):
        att, ffn, p = layer.attention, layer.feedforward, f"transformer_layer_{i}/"
        for name in ("query", "key", "value"):
            table += [(getattr(att, f"{name}_kernel"), f"{p}self_attention_layer/{name}/kernel",
                       heads_first),
                      (getattr(att, f"{name}_bias"), f"{p}self_attention_layer/{name}/bias",
                       _identity)]
        table += [(att.output_kernel, f"{p}self_attention_layer/attention_output/kernel",
                   _identity),
                  (att.output_bias, f"{p}self_attention_layer/attention_output/bias", _identity),
                  (att.layer_norm.gamma, f"{p}self_attention_layer_norm/gamma", _identity),
                  (att.layer_norm.beta, f"{p}self_attention_layer_norm/beta", _identity),
                  (ffn.intermediate_kernel, f"{p}feedforward_intermediate_dense/kernel",
                   _transpose),
                  (ffn.intermediate_bias, f"{p}feedforward_intermediate_dense/bias", _identity),
                  (ffn.output_kernel, f"{p}feedforward_output_dense/kernel", _identity),
                  (ffn.output_bias, f"{p}feedforward_output_dense/bias", _identity),
                  (ffn.layer_norm.gamma, f"{p}feedforward_layer_norm/gamma", _identity),
                  (ffn.layer_norm.beta, f"{p}feedforward_layer_norm/beta", _identity)]
    return table


def keras_hub_table(backbone):
    """[(variable, keras-hub weight path, keras-hub->ours)] for every backbone weight."""
    emb = backbone.embeddings
    return [(emb.token_embeddings, "token_embedding/embeddings", _identity),
            (emb.position_embeddings, "position_embedding/embeddings", _identity),
            (emb.segment_embeddings, "segment_embedding/embeddings", _identity),
            (emb.layer_norm.gamma, "embeddings_layer_norm/gamma", _identity),
            (emb.layer_norm.beta, "embeddings_layer_norm/beta", _identity),
            (backbone.pooler.kernel, "pooled_dense/kernel", _identity),
            (backbone.pooler.bias, "pooled_dense/bias", _identity),
            *keras_hub_layer_table(backbone)]
