"""keras-hub RoBERTa presets -> our backbone (Hugging Face RoBERTa dirs need no table of their
own: their names are BERT's under `roberta.`, `models/bert/convert.py`).

keras-hub's RoBERTa drops the two position rows Hugging Face reserves for its padding index
(position i is keras-hub row i, HF row i + 2) and has no segment embedding and no pooler; we
keep HF's layout (`position_offset` 2, one all-zero segment row) so a model loaded from
either source saves as a Hugging Face RoBERTa dir. The pooler stays freshly initialised (the
classification head reads it; a keras-hub preset has none).
"""

import numpy as np

from dynabert_tf.models.bert import convert as bert_convert

POSITION_OFFSET = 2  # Hugging Face RoBERTa: padding_idx (1) + 1


def keras_hub_config(reference_config):
    """Our BertConfig fields from a keras-hub `RobertaBackbone.get_config()`."""
    ref = reference_config
    return dict(vocab_size=ref["vocabulary_size"], hidden_size=ref["hidden_dim"],
                num_layers=ref["num_layers"], num_heads=ref["num_heads"],
                intermediate_size=ref["intermediate_dim"],
                max_position_embeddings=ref["max_sequence_length"] + POSITION_OFFSET,
                type_vocab_size=1, hidden_dropout=ref["dropout"],
                attention_dropout=ref["dropout"], layer_norm_epsilon=1e-5, hidden_act="gelu",
                model_type="roberta", position_offset=POSITION_OFFSET)


def keras_hub_table(backbone):
    """[(variable, keras-hub weight path, keras-hub->ours)] for the weights keras-hub has."""
    emb = backbone.embeddings
    reserve_rows = lambda x: np.concatenate([np.zeros((POSITION_OFFSET, x.shape[1]), x.dtype), x])
    return [(emb.token_embeddings, "embeddings/token_embedding/embeddings", lambda x: x),
            (emb.position_embeddings, "embeddings/position_embedding/embeddings", reserve_rows),
            (emb.layer_norm.gamma, "embeddings_layer_norm/gamma", lambda x: x),
            (emb.layer_norm.beta, "embeddings_layer_norm/beta", lambda x: x),
            *bert_convert.keras_hub_layer_table(backbone)]
