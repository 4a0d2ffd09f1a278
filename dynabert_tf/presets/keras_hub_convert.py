"""keras-hub BERT and RoBERTa presets -> our backbone: config fields and weight tables.

keras-hub's RoBERTa drops the two position rows Hugging Face reserves for its padding index
(position i is keras-hub row i, HF row i + 2) and has no segment embedding and no pooler; we
keep HF's layout (`position_offset` 2, one all-zero segment row) so a model loaded from
either source saves as a Hugging Face RoBERTa dir. The pooler stays freshly initialised (the
classification head reads it; a keras-hub preset has none).

    convert = CONVERTERS["BertBackbone"]     # keyed by the keras-hub class name
    config = BertConfig(**convert.config(reference.get_config()))
    for ours, keras_hub_path, to_ours in convert.table(backbone): ...
"""

import collections

import numpy as np

from dynabert_tf.presets.hf_tensors import identity, transpose

ROBERTA_POSITION_OFFSET = 2  # Hugging Face RoBERTa: padding_idx (1) + 1

Converter = collections.namedtuple("Converter", "config table")


def _encoder_fields(ref):
    """The BertConfig fields keras-hub's BERT and RoBERTa backbones name alike."""
    return dict(vocab_size=ref["vocabulary_size"], hidden_size=ref["hidden_dim"],
                num_layers=ref["num_layers"], num_heads=ref["num_heads"],
                intermediate_size=ref["intermediate_dim"], hidden_dropout=ref["dropout"],
                attention_dropout=ref["dropout"])


def bert_config(reference_config):
    """Our BertConfig fields from a keras-hub `BertBackbone.get_config()` (tanh GELU)."""
    ref = reference_config
    return dict(_encoder_fields(ref), max_position_embeddings=ref["max_sequence_length"],
                type_vocab_size=ref["num_segments"], hidden_act="gelu_approximate")


def roberta_config(reference_config):
    """Our BertConfig fields from a keras-hub `RobertaBackbone.get_config()`."""
    ref = reference_config
    return dict(_encoder_fields(ref),
                max_position_embeddings=ref["max_sequence_length"] + ROBERTA_POSITION_OFFSET,
                type_vocab_size=1, layer_norm_epsilon=1e-5, hidden_act="gelu",
                model_type="roberta", position_offset=ROBERTA_POSITION_OFFSET)


def layer_table(backbone):
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
                       identity)]
        table += [(att.output_kernel, f"{p}self_attention_layer/attention_output/kernel",
                   identity),
                  (att.output_bias, f"{p}self_attention_layer/attention_output/bias", identity),
                  (att.layer_norm.gamma, f"{p}self_attention_layer_norm/gamma", identity),
                  (att.layer_norm.beta, f"{p}self_attention_layer_norm/beta", identity),
                  (ffn.intermediate_kernel, f"{p}feedforward_intermediate_dense/kernel",
                   transpose),
                  (ffn.intermediate_bias, f"{p}feedforward_intermediate_dense/bias", identity),
                  (ffn.output_kernel, f"{p}feedforward_output_dense/kernel", identity),
                  (ffn.output_bias, f"{p}feedforward_output_dense/bias", identity),
                  (ffn.layer_norm.gamma, f"{p}feedforward_layer_norm/gamma", identity),
                  (ffn.layer_norm.beta, f"{p}feedforward_layer_norm/beta", identity)]
    return table


def bert_table(backbone):
    """[(variable, keras-hub weight path, keras-hub->ours)] for every backbone weight."""
    emb = backbone.embeddings
    return [(emb.token_embeddings, "token_embedding/embeddings", identity),
            (emb.position_embeddings, "position_embedding/embeddings", identity),
            (emb.segment_embeddings, "segment_embedding/embeddings", identity),
            (emb.layer_norm.gamma, "embeddings_layer_norm/gamma", identity),
            (emb.layer_norm.beta, "embeddings_layer_norm/beta", identity),
            (backbone.pooler.kernel, "pooled_dense/kernel", identity),
            (backbone.pooler.bias, "pooled_dense/bias", identity),
            *layer_table(backbone)]


def roberta_table(backbone):
    """[(variable, keras-hub weight path, keras-hub->ours)] for the weights keras-hub has (the
    segment row and the pooler are not among them)."""
    emb = backbone.embeddings
    reserve_rows = lambda x: np.concatenate(
        [np.zeros((ROBERTA_POSITION_OFFSET, x.shape[1]), x.dtype), x])
    return [(emb.token_embeddings, "embeddings/token_embedding/embeddings", identity),
            (emb.position_embeddings, "embeddings/position_embedding/embeddings", reserve_rows),
            (emb.layer_norm.gamma, "embeddings_layer_norm/gamma", identity),
            (emb.layer_norm.beta, "embeddings_layer_norm/beta", identity),
            *layer_table(backbone)]


# keras-hub backbone class name -> its converter.
CONVERTERS = {"BertBackbone": Converter(bert_config, bert_table),
              "RobertaBackbone": Converter(roberta_config, roberta_table)}
