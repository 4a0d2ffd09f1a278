"""Network rewiring (stage "rewire"): score heads and FFN neurons, put the important ones first.

Width slicing keeps the LEADING heads / neurons (`layers/weight_layout.py`), so after `rewire` every
sub-network keeps the most important ones (Hou et al. 2020, section 3.1).

    importance = compute_importance(teacher, dataset)        # dataset: (features, labels)
    permutations = rewire(teacher, importance)                # in place; logits unchanged
    save_importance(path, importance)

Importance is first-order Taylor on the task loss, full width and depth, dropout off:
  head h of layer l:  |dL/dm_{l,h}| with a head mask m of ones;
  FFN neuron j:       |sum_i w_i dL/dw_i| over its weights: intermediate kernel row j,
                      intermediate bias j and output kernel row j (one absolute value over
                      all three; the official code takes |kernel+bias part| + |output part|).
  hidden unit j (optional, for hidden-size elasticity): the residual stream is shared by all
                      layers, so one score per unit: the sum over every LayerNorm (the
                      embeddings' and each layer's two) of |sum over tokens of y_j dL/dy_j|,
                      y the LayerNorm's output. y_j = gamma_j x_hat_j + beta_j, so that is
                      |gamma_j dL/dgamma_j + beta_j dL/dbeta_j|: a Taylor score from the
                      LayerNorm weights' gradients, no mask in the model.
Absolute values are summed over batches, each batch with its own fresh gradient.
"""

import keras
import numpy as np
import tensorflow as tf

from dynabert_tf.core import files
from dynabert_tf.layers import weight_layout
from dynabert_tf.layers.common import at_least_float32

def _backbone(model):
    return getattr(model, "backbone", model)


def _ffn_weights(backbone):
    """Per layer (intermediate kernel [ff, hidden], intermediate bias [ff], output [ff, hidden])."""
    return [(layer.feedforward.intermediate_kernel, layer.feedforward.intermediate_bias,
             layer.feedforward.output_kernel) for layer in backbone.transformer_layers]


def _layer_norms(backbone):
    """Every LayerNorm on the residual stream: the embeddings', then each layer's two."""
    norms = [backbone.embeddings.layer_norm]
    for layer in backbone.transformer_layers:
        norms += [layer.attention.layer_norm, layer.feedforward.layer_norm]
    return norms


def _batch_importance_fn(model, hidden=False):
    """A tf.function: (features, labels) -> (head [layers, heads], neuron [layers, ff]) scores
    of ONE batch, plus hidden [hidden_size] with `hidden`; each call records its own tape, so
    nothing carries over between batches."""
    cfg = model.bert_config
    ffn = _ffn_weights(model.backbone)
    ffn_variables = [w for triple in ffn for w in triple]
    norm_variables = [w for norm in _layer_norms(model.backbone) if hidden
                      for w in (norm.gamma, norm.beta)]

    @tf.function(reduce_retracing=True)
    def batch_importance(features, labels):
        # At least float32 (mixed precision: the head scores are its gradient; the attention
        # casts it to the compute dtype), as the weights and their gradients are.
        head_mask = at_least_float32(tf.ones((cfg.num_layers, cfg.num_heads),
                                             model.compute_dtype))
        with tf.GradientTape() as tape:
            tape.watch(head_mask)
            outputs = model(features, head_mask=head_mask, training=False, return_dict=True)
            loss = model.head.importance_loss(outputs, labels)
        head_grad, *grads = tape.gradient(loss, [head_mask, *ffn_variables, *norm_variables])
        ffn_grads, norm_grads = grads[:len(ffn_variables)], grads[len(ffn_variables):]
        neuron_scores = []
        for layer, (w_in, b_in, w_out) in enumerate(ffn):
            g_in, g_bias, g_out = ffn_grads[3 * layer:3 * layer + 3]
            taylor = (tf.reduce_sum(w_in * g_in, axis=1) + b_in * g_bias
                      + tf.reduce_sum(w_out * g_out, axis=1))
            neuron_scores.append(tf.abs(taylor))
        scores = (tf.abs(head_grad), tf.stack(neuron_scores))
        if not hidden:
            return scores
        hidden_score = tf.add_n([
            tf.abs(norm_variables[k] * norm_grads[k] + norm_variables[k + 1] * norm_grads[k + 1])
            for k in range(0, len(norm_variables), 2)])
        return (*scores, hidden_score)

    return batch_importance


def compute_importance(model, dataset, max_batches=None, progress=True, hidden=False):
    """Taylor importance of every head and FFN neuron of the full-size `model`.

    Args:
      model: DynaBertTaskModel (the fine-tuned teacher), run with training=False; its head's
        `importance_loss` is differentiated.
      dataset: iterable of (features dict of int [batch, seq], labels as the head takes them).
      max_batches: stop after this many batches (None: the whole dataset).
      progress: show a keras Progbar.
      hidden: also score the hidden units (hidden-size elasticity).
    Returns:
      {"head": float64 [num_layers, num_heads], "neuron": float64 [num_layers, intermediate]},
      and with `hidden` "hidden": float64 [hidden_size].
    """
    cfg = model.bert_config
    batch_importance = _batch_importance_fn(model, hidden)
    head = np.zeros((cfg.num_layers, cfg.num_heads))
    neuron = np.zeros((cfg.num_layers, cfg.intermediate_size))
    hidden_total = np.zeros((cfg.hidden_size,))
    target = max_batches
    if target is None and hasattr(dataset, "cardinality"):
        cardinality = int(dataset.cardinality())
        target = cardinality if cardinality > 0 else None
    bar = keras.utils.Progbar(target, unit_name="batch") if progress else None
    seen = 0
    for features, labels in dataset:
        if max_batches is not None and seen >= max_batches:
            break
        head_scores, neuron_scores, *hidden_scores = batch_importance(features, labels)
        head += head_scores.numpy()
        neuron += neuron_scores.numpy()
        if hidden:
            hidden_total += hidden_scores[0].numpy()
        seen += 1
        if bar is not None:
            bar.update(seen)
    if seen == 0:
        raise ValueError("compute_importance got an empty dataset")
    result = {"head": head, "neuron": neuron}
    if hidden:
        result["hidden"] = hidden_total
    return result


def _keys(importance):
    return ("head", "neuron", *(("hidden",) if "hidden" in importance else ()))


def importance_order(importance):
    """Descending-importance permutations (stable: ties keep their order).

    Returns:
      {"head": int [num_layers, num_heads], "neuron": int [num_layers, intermediate]} per
      layer, and "hidden": int [hidden_size] when `importance` scores the hidden units.
    """
    order = lambda row: np.argsort(-np.asarray(row), kind="stable")
    result = {key: np.stack([order(row) for row in importance[key]])
              for key in ("head", "neuron")}
    if "hidden" in importance:
        result["hidden"] = order(importance["hidden"])
    return result


def permute_hidden(model, order):
    """Reorders the hidden units of every weight on the residual stream by `order`
    ([hidden_size]; new unit k is old unit order[k]): embeddings, each layer's kernels,
    biases and LayerNorms, the pooler (in and out) and a task model's head input. Every
    LayerNorm is permutation-equivariant, so the model's outputs are unchanged."""
    backbone = _backbone(model)
    weight_layout.permute_hidden(backbone.embeddings, order)
    for layer in backbone.transformer_layers:
        weight_layout.permute_hidden(layer.attention, order)
        weight_layout.permute_hidden(layer.feedforward, order)
    weight_layout.permute_hidden(backbone.pooler, order, weight_layout.POOLER_HIDDEN_AXES)
    if hasattr(model, "head"):
        weight_layout.permute_hidden(model.head, order, weight_layout.HEAD_HIDDEN_AXES)


def rewire(model, importance):
    """Permutes heads and FFN neurons in place, most important first, and the hidden units
    too when `importance` scores them; outputs are unchanged.

    Args:
      model: DynaBertTaskModel or DynaBertBackbone.
      importance: `compute_importance` output ("head" [layers, heads],
        "neuron" [layers, intermediate], optional "hidden" [hidden_size]).
    Returns:
      `importance_order(importance)`: new position k of layer l holds old head/neuron perm[l, k]
      (new hidden unit k: old unit perm[k]).
    """
    backbone = _backbone(model)
    cfg = backbone.bert_config
    expected = {"head": (cfg.num_layers, cfg.num_heads),
                "neuron": (cfg.num_layers, cfg.intermediate_size),
                "hidden": (cfg.hidden_size,)}
    for key in _keys(importance):
        shape = expected[key]
        if key not in importance or np.shape(importance[key]) != shape:
            raise ValueError(f"importance[{key!r}] must have shape {shape}, got "
                             f"{np.shape(importance.get(key))}")
    order = importance_order(importance)
    for l, layer in enumerate(backbone.transformer_layers):
        weight_layout.permute(layer.attention, order["head"][l])
        weight_layout.permute(layer.feedforward, order["neuron"][l])
    if "hidden" in order:
        permute_hidden(model, order["hidden"])
    return order


def save_importance(path, importance):
    """Writes `importance` and its `importance_order` permutations to an `.npz` file."""
    order = importance_order(importance)
    with files.atomic_open(path) as f:  # a file object: numpy then keeps `path` as given
        np.savez(f, **{key: importance[key] for key in _keys(importance)},
                 **{f"{key}_order": order[key] for key in _keys(importance)})


def load_importance(path):
    """Reads `save_importance`'s file -> {"head", "neuron", "head_order", "neuron_order"},
    plus "hidden", "hidden_order" when the hidden units were scored."""
    with np.load(path) as data:
        return {key: data[key] for key in data.files}
