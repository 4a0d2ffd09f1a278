"""Distillation and label losses of DynaBERT (Hou et al. 2020, eq. 2-4).

A student sub-network at (width_mult, depth_mult) learns from a teacher run at full depth:

    L = lambda_logits * head.distillation_loss(student outputs, teacher outputs)
        + lambda_hidden * (MSE(embeddings) + sum_l MSE(student layer l, teacher layer l))

The output term belongs to the task head (`tasks/heads.py`): soft cross-entropy of logits
for classification and of start/end logits for spans, MSE for regression.
The student's l-th kept layer is matched to the teacher's SAME layer (`grid.kept_layers`),
as the paper's depth-adaptive distillation does.
"""

import tensorflow as tf

from dynabert_tf.elastic import grid as grid_lib


def mean_squared_error(student, teacher):
    """mean((student - teacher)^2) over all elements, as 2 * l2_loss / size: one fused
    reduction forward and one multiply backward (differentiating mean(square(.)) costs three
    full-size ops more per hidden state)."""
    size = tf.cast(tf.size(student), student.dtype)
    return 2.0 * tf.nn.l2_loss(student - teacher) / size


def hidden_mse(student_states, teacher_states, cache=None):
    """Sum over paired tensors of their mean squared error.

    Args:
      student_states, teacher_states: equally long sequences of [batch, seq, hidden].
      cache: optional dict shared by several calls: a (student, teacher) pair of the very
        same tensor objects is computed once (grid cells sharing a layer's output).
    Returns:
      scalar. Each pair's MSE averages over ALL batch * seq * hidden positions, padding
      included, exactly as the official DynaBERT code (`nn.MSELoss()`).
    """
    if len(student_states) != len(teacher_states):
        raise ValueError(f"hidden_mse got {len(student_states)} student states but "
                         f"{len(teacher_states)} teacher states")
    if cache is None:
        cache = {}
    total = 0.0
    for s, t in zip(student_states, teacher_states):
        key = (id(s), id(t))
        if key not in cache:  # the tensors are kept with the value so their ids stay unique
            cache[key] = (s, t, mean_squared_error(s, t))
        total = total + cache[key][2]
    return total


def teacher_layer_indices(num_layers, depth_mult):
    """Indices into the full-depth teacher's `hidden_states` matched to a student at depth_mult.

    [0] (embeddings) + [i + 1 for each kept layer i]; e.g. 6 layers, depth 0.5 -> [0, 1, 3, 5].
    """
    return [0] + [i + 1 for i in grid_lib.kept_layers(num_layers, depth_mult)]


def check_lambdas(lambda_logits, lambda_hidden):
    """Raises ValueError unless both weights are finite numbers >= 0 and not both 0."""
    for name, value in (("lambda_logits", lambda_logits), ("lambda_hidden", lambda_hidden)):
        if not isinstance(value, (int, float)) or not 0.0 <= float(value) < float("inf"):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if lambda_logits == 0 and lambda_hidden == 0:
        raise ValueError("lambda_logits and lambda_hidden are both 0: nothing to distil")


def distillation_loss(head, student_out, teacher_out, depth_mult, num_layers, lambda_logits,
                      lambda_hidden, return_parts=False, mse_cache=None):
    """DynaBERT's distillation loss of one grid cell.

    Args:
      head: the student's `tasks.heads.TaskHead`; its `distillation_loss` is the output term
        (soft cross-entropy of logits; MSE of regression scores; span start/end logits).
      student_out: the student's `return_dict=True` outputs at depth_mult: the head's outputs
        and `hidden_states` (embeddings + each kept layer, [batch, seq, hidden]).
      teacher_out: the teacher's outputs at full depth (num_layers + 1 hidden states).
      depth_mult: the student's depth multiplier (selects the teacher layers to match).
      num_layers: layers of the full network.
      lambda_logits: weight of the output term.
      lambda_hidden: weight of the embedding + hidden-state MSE term.
      return_parts: also return {"logits": ..., "hidden": ...}, the unweighted terms.
      mse_cache: optional dict shared across cells (`hidden_mse`'s cache).
    Returns:
      scalar loss (and the parts dict when return_parts).
    """
    check_lambdas(lambda_logits, lambda_hidden)
    teacher_states = teacher_out["hidden_states"]
    if len(teacher_states) != num_layers + 1:
        raise ValueError(f"teacher must run at full depth: expected {num_layers + 1} hidden "
                         f"states, got {len(teacher_states)}")
    indices = teacher_layer_indices(num_layers, depth_mult)
    if len(student_out["hidden_states"]) != len(indices):
        raise ValueError(f"student at depth_mult={depth_mult} should have {len(indices)} "
                         f"hidden states, got {len(student_out['hidden_states'])}")
    logit_term = head.distillation_loss(student_out, teacher_out)
    hidden_term = hidden_mse(student_out["hidden_states"], [teacher_states[i] for i in indices],
                             cache=mse_cache)
    loss = lambda_logits * logit_term + lambda_hidden * hidden_term
    if return_parts:
        return loss, {"logits": logit_term, "hidden": hidden_term}
    return loss
