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
Absolute values are summed over batches, each batch with its own fresh gradient.
"""

import keras
import numpy as np
import tensorflow as tf

from dynabert_tf.layers import weight_layout

def _backbone(model):
    return getattr(model, "backbone", model)


def _ffn_weights(backbone):
    """Per layer (intermediate kernel [ff, hidden], intermediate bias [ff], output [ff, hidden])."""
    return [(layer.feedforward.intermediate_kernel, layer.feedforward.intermediate_bias,
             layer.feedforward.output_kernel) for layer in backbone.transformer_layers]


def _batch_importance_fn(model):
    """A tf.function: (features, labels) -> (head [layers, heads], neuron [layers, ff]) scores
    of ONE batch; each call records its own tape, so nothing carries over between batches."""
    cfg = model.bert_config
    ffn = _ffn_weights(model.backbone)
    ffn_variables = [w for triple in ffn for w in triple]

    @tf.function(reduce_retracing=True)
    def batch_importance(features, labels):
        head_mask = tf.ones((cfg.num_layers, cfg.num_heads), model.compute_dtype)
        with tf.GradientTape() as tape:
            tape.watch(head_mask)
            outputs = model(features, head_mask=head_mask, training=False, return_dict=True)
            loss = model.head.importance_loss(outputs, labels)
        head_grad, *ffn_grads = tape.gradient(loss, [head_mask, *ffn_variables])
        neuron_scores = []
        for layer, (w_in, b_in, w_out) in enumerate(ffn):
            g_in, g_bias, g_out = ffn_grads[3 * layer:3 * layer + 3]
            taylor = (tf.reduce_sum(w_in * g_in, axis=1) + b_in * g_bias
                      + tf.reduce_sum(w_out * g_out, axis=1))
            neuron_scores.append(tf.abs(taylor))
        return tf.abs(head_grad), tf.stack(neuron_scores)

    return batch_importance


def compute_importance(model, dataset, max_batches=None, progress=True):
    """Taylor importance of every head and FFN neuron of the full-size `model`.

    Args:
      model: DynaBertTaskModel (the fine-tuned teacher), run with training=False; its head's
        `importance_loss` is differentiated.
      dataset: iterable of (features dict of int [batch, seq], labels as the head takes them).
      max_batches: stop after this many batches (None: the whole dataset).
      progress: show a keras Progbar.
    Returns:
      {"head": float64 [num_layers, num_heads], "neuron": float64 [num_layers, intermediate]}.
    """
    cfg = model.bert_config
    batch_importance = _batch_importance_fn(model)
    head = np.zeros((cfg.num_layers, cfg.num_heads))
    neuron = np.zeros((cfg.num_layers, cfg.intermediate_size))
    target = max_batches
    if target is None and hasattr(dataset, "cardinality"):
        cardinality = int(dataset.cardinality())
        target = cardinality if cardinality > 0 else None
    bar = keras.utils.Progbar(target, unit_name="batch") if progress else None
    seen = 0
    for features, labels in dataset:
        if max_batches is not None and seen >= max_batches:
            break
        head_scores, neuron_scores = batch_importance(features, labels)
        head += head_scores.numpy()
        neuron += neuron_scores.numpy()
        seen += 1
        if bar is not None:
            bar.update(seen)
    if seen == 0:
        raise ValueError("compute_importance got an empty dataset")
    return {"head": head, "neuron": neuron}


def importance_order(importance):
    """Descending-importance permutations per layer (stable: ties keep their order).

    Returns:
      {"head": int [num_layers, num_heads], "neuron": int [num_layers, intermediate]}.
    """
    return {key: np.stack([np.argsort(-np.asarray(row), kind="stable")
                           for row in importance[key]]) for key in ("head", "neuron")}


def rewire(model, importance):
    """Permutes heads and FFN neurons in place, most important first; outputs are unchanged.

    Args:
      model: DynaBertTaskModel or DynaBertBackbone.
      importance: `compute_importance` output ("head" [layers, heads],
        "neuron" [layers, intermediate]).
    Returns:
      `importance_order(importance)`: new position k of layer l holds old head/neuron perm[l, k].
    """
    backbone = _backbone(model)
    cfg = backbone.bert_config
    expected = {"head": (cfg.num_layers, cfg.num_heads),
                "neuron": (cfg.num_layers, cfg.intermediate_size)}
    for key, shape in expected.items():
        if key not in importance or np.shape(importance[key]) != shape:
            raise ValueError(f"importance[{key!r}] must have shape {shape}, got "
                             f"{np.shape(importance.get(key))}")
    order = importance_order(importance)
    for l, layer in enumerate(backbone.transformer_layers):
        weight_layout.permute(layer.attention, order["head"][l])
        weight_layout.permute(layer.feedforward, order["neuron"][l])
    return order


def save_importance(path, importance):
    """Writes `importance` and its `importance_order` permutations to an `.npz` file."""
    order = importance_order(importance)
    with open(path, "wb") as f:  # a file object: numpy then keeps `path` as given
        np.savez(f, head=importance["head"], neuron=importance["neuron"],
                 head_order=order["head"], neuron_order=order["neuron"])


def load_importance(path):
    """Reads `save_importance`'s file -> {"head", "neuron", "head_order", "neuron_order"}."""
    with np.load(path) as data:
        return {key: data[key] for key in ("head", "neuron", "head_order", "neuron_order")}
