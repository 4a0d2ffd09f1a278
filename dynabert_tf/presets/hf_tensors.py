"""Hugging Face tensor names and layouts: the backbone, the task heads, the masked-LM head.

Our weights are stored heads / neurons first (`layers/attention.py`, `layers/feedforward.py`):
q/k/v kernels [heads, head_dim, hidden] are the Hugging Face `nn.Linear` weight [out, in]
reshaped, the intermediate kernel [intermediate, hidden] is the HF weight as is. RoBERTa uses
BERT's names under `roberta.` instead of `bert.`.

    tensors = backbone_tensors(backbone)            # {"bert.embeddings...": array}
    unused = assign_backbone(backbone, tensors)     # names it did not use
    head_tensors(head); assign_head(head, tensors); assign_masked_lm(mlm_head, tensors, emb)
"""

import numpy as np

from dynabert_tf.presets.errors import CheckpointError

_PREFIXES = ("bert.", "roberta.")
IGNORED = ("embeddings.position_ids",)  # a buffer, not a weight
# Name of each task head's dense layer (kind -> prefix of `.weight` / `.bias`).
HEAD_PREFIXES = {"classification": "classifier", "regression": "classifier",
                 "span": "qa_outputs"}
MASKED_LM_PREFIX = "cls.predictions."  # BertForMaskedLM / BertForPreTraining's head
PRETRAINING_PREFIX = "cls."


def transpose(x):
    """[a, b] -> a contiguous [b, a] (Hugging Face `nn.Linear` [out, in] <-> Keras [in, out])."""
    return np.ascontiguousarray(np.asarray(x).T)


def identity(x):
    return x


def normalise_name(name):
    """Strips the `bert.` / `roberta.` prefix; maps TF-era LayerNorm gamma/beta to weight/bias."""
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
    if ".LayerNorm." in name:
        name = name.replace(".LayerNorm.gamma", ".LayerNorm.weight").replace(
            ".LayerNorm.beta", ".LayerNorm.bias")
    return name


def normalise(tensors):
    """`tensors` with every name normalised (`normalise_name`)."""
    return {normalise_name(k): v for k, v in tensors.items()}


def backbone_table(backbone):
    """[(variable, Hugging Face name, hf->ours, ours->hf)] for every backbone weight."""
    cfg = backbone.bert_config
    head_dim, hidden = cfg.head_dim, cfg.hidden_size
    emb = backbone.embeddings
    table = [
        (emb.token_embeddings, "embeddings.word_embeddings.weight", identity, identity),
        (emb.position_embeddings, "embeddings.position_embeddings.weight", identity, identity),
        (emb.segment_embeddings, "embeddings.token_type_embeddings.weight", identity,
         identity),
        (emb.layer_norm.gamma, "embeddings.LayerNorm.weight", identity, identity),
        (emb.layer_norm.beta, "embeddings.LayerNorm.bias", identity, identity),
        (backbone.pooler.kernel, "pooler.dense.weight", transpose, transpose),
        (backbone.pooler.bias, "pooler.dense.bias", identity, identity),
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
             lambda w, split=split_heads: split(transpose(w)),
             lambda k: transpose(merge_heads(k))),
            (att.output_bias, f"{p}attention.output.dense.bias", identity, identity),
            (att.layer_norm.gamma, f"{p}attention.output.LayerNorm.weight", identity, identity),
            (att.layer_norm.beta, f"{p}attention.output.LayerNorm.bias", identity, identity),
            (ffn.intermediate_kernel, f"{p}intermediate.dense.weight", identity, identity),
            (ffn.intermediate_bias, f"{p}intermediate.dense.bias", identity, identity),
            (ffn.output_kernel, f"{p}output.dense.weight", transpose, transpose),
            (ffn.output_bias, f"{p}output.dense.bias", identity, identity),
            (ffn.layer_norm.gamma, f"{p}output.LayerNorm.weight", identity, identity),
            (ffn.layer_norm.beta, f"{p}output.LayerNorm.bias", identity, identity),
        ]
    return table


def assign_backbone(backbone, tensors, source="checkpoint"):
    """Assigns HF-named `tensors` to `backbone`; returns the (normalised) names it did not use.

    Raises CheckpointError naming every missing tensor, or a tensor of the wrong shape.
    """
    tensors = normalise(tensors)
    table = backbone_table(backbone)
    missing = [name for _, name, _, _ in table if name not in tensors]
    if missing:
        raise CheckpointError(f"{source}: missing tensors {', '.join(missing[:8])}"
                              + (f" and {len(missing) - 8} more" if len(missing) > 8 else ""))
    for variable, name, to_ours, from_ours in table:
        value = tensors[name]
        expected = from_ours(np.zeros(variable.shape, "float32")).shape
        if tuple(value.shape) != tuple(expected):
            raise CheckpointError(f"{source}: tensor {name} has shape {tuple(value.shape)}, "
                                  f"the model expects {tuple(expected)}")
        variable.assign(to_ours(value).astype(variable.dtype))
    used = {name for _, name, _, _ in table}
    return sorted(set(tensors) - used - set(IGNORED))


def backbone_tensors(backbone):
    """The backbone's weights as HF-named numpy arrays (the inverse of `assign_backbone`)."""
    prefix = backbone.bert_config.model_type + "."
    return {prefix + name: np.ascontiguousarray(from_ours(np.asarray(variable)))
            for variable, name, _, from_ours in backbone_table(backbone)}


def is_head_tensor(name):
    """True for a (normalised) name of a task head or of the pretraining heads (`cls.*`):
    tensors a backbone leaves unused on purpose."""
    return name.startswith(PRETRAINING_PREFIX) or any(
        name in (f"{prefix}.weight", f"{prefix}.bias") for prefix in HEAD_PREFIXES.values())


def head_tensors(head):
    """The task head's weights under Hugging Face names (`nn.Linear` layout [out, in])."""
    prefix = HEAD_PREFIXES[head.kind]
    return {f"{prefix}.weight": transpose(head.dense.kernel),
            f"{prefix}.bias": np.asarray(head.dense.bias)}


def assign_head(head, tensors):
    """Loads the task head from HF-named `tensors` if they are there and fit; returns whether
    it did (a pretrained backbone has no head: it stays freshly initialised)."""
    prefix = HEAD_PREFIXES[head.kind]
    kernel, bias = tensors.get(f"{prefix}.weight"), tensors.get(f"{prefix}.bias")
    if kernel is None or bias is None or tuple(kernel.shape[::-1]) != tuple(
            head.dense.kernel.shape):
        return False
    head.dense.kernel.assign(transpose(kernel))
    head.dense.bias.assign(bias)
    return True


def has_masked_lm(tensors):
    """True if the (normalised) `tensors` hold a masked-LM head (`cls.predictions.*`)."""
    return any(name.startswith(MASKED_LM_PREFIX) for name in tensors)


def assign_masked_lm(head, tensors, word_embeddings, source="checkpoint"):
    """Assigns `cls.predictions.*` of the (normalised) `tensors` to the
    `models.bert.mlm_head.MaskedLMHead` `head`; the decoder is tied to `word_embeddings`
    [vocab, hidden] unless the checkpoint has its own. Raises CheckpointError naming a
    missing tensor or a wrong shape."""
    table = [(head.transform_kernel, "transform.dense.weight", np.transpose),
             (head.transform_bias, "transform.dense.bias", None),
             (head.layer_norm.gamma, "transform.LayerNorm.weight", None),
             (head.layer_norm.beta, "transform.LayerNorm.bias", None),
             (head.output_bias, "bias", None),
             (head.decoder, "decoder.weight", None)]
    values = dict(tensors)
    values.setdefault(MASKED_LM_PREFIX + "bias", values.get(MASKED_LM_PREFIX + "decoder.bias"))
    values.setdefault(MASKED_LM_PREFIX + "decoder.weight", word_embeddings)
    for variable, name, to_ours in table:
        value = values.get(MASKED_LM_PREFIX + name)
        if value is None:
            raise CheckpointError(f"{source}: missing tensor {MASKED_LM_PREFIX + name} of the "
                                  f"masked-LM head")
        value = to_ours(value) if to_ours else np.asarray(value)
        if tuple(value.shape) != tuple(variable.shape):
            raise CheckpointError(f"{source}: tensor {MASKED_LM_PREFIX + name} has shape "
                                  f"{tuple(value.shape)}, the head expects "
                                  f"{tuple(variable.shape)}")
        variable.assign(value.astype("float32"))
