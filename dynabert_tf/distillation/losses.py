"""Distillation and label losses of DynaBERT (Hou et al. 2020, eq. 2-4).

A student sub-network at (width_mult, depth_mult) learns from a teacher run at full depth:

    L = lambda_logits * head.distillation_loss(student outputs, teacher outputs)
        + lambda_hidden * (MSE(embeddings) + sum_l MSE(student layer l, teacher layer l))

The output term belongs to the task head (`tasks/heads.py`): soft cross-entropy of logits
for classification and of start/end logits for spans, MSE for regression.
The student's l-th kept layer is matched to the teacher's SAME layer (`grid.kept_layers`),
as the paper's depth-adaptive distillation does.

`objective` chooses the intermediate term (the output term is always kept: this is task
distillation, and MiniLM's own logit-free recipe is for task-agnostic pre-training):
  "dynabert"  lambda_hidden * hidden-state MSE, as above;
  "minilm"    lambda_relation * MiniLM relation KL of the LAST layers (the student's last kept
              layer against the teacher's last layer; `relations.py`), replacing the MSE;
  "both"      the DynaBERT loss + lambda_relation * the relation KL.
"""

import math

import tensorflow as tf

from dynabert_tf.distillation import relations as relations_lib
from dynabert_tf.core import grid as grid_lib
from dynabert_tf.core.choices import DISTILL_OBJECTIVES as OBJECTIVES
from dynabert_tf.layers.common import at_least_float32



def mean_squared_error(student, teacher):
    """mean((student - teacher)^2) over all elements, as 2 * l2_loss / size: one fused
    reduction forward and one multiply backward (differentiating mean(square(.)) costs three
    full-size ops more per hidden state). In float32 whatever the inputs' dtype (mixed
    precision)."""
    student, teacher = at_least_float32(student), at_least_float32(teacher)
    size = tf.cast(tf.size(student), student.dtype)
    return 2.0 * tf.nn.l2_loss(student - teacher) / size


def hidden_mse(student_states, teacher_states, cache=None):
    """Sum over paired tensors of their mean squared error.

    Args:
      student_states, teacher_states: equally long sequences of [batch, seq, hidden].
      cache: optional dict shared by several calls: a (student, teacher) pair of the very
        same tensor objects is computed once (grid cells sharing a layer's output).
      A student state of fewer hidden units than its teacher's (hidden-size elasticity) is
      matched to the teacher's same leading units.
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
            kept = s.shape[-1]
            target = t if kept == t.shape[-1] else t[..., :kept]
            cache[key] = (s, t, mean_squared_error(s, target))
        total = total + cache[key][2]
    return total


def teacher_layer_indices(num_layers, depth_mult):
    """Indices into the full-depth teacher's `hidden_states` matched to a student at depth_mult.

    [0] (embeddings) + [i + 1 for each kept layer i]; e.g. 6 layers, depth 0.5 -> [0, 1, 3, 5].
    """
    return [0] + [i + 1 for i in grid_lib.kept_layers(num_layers, depth_mult)]


def check_lambdas(lambda_logits, lambda_hidden, objective="dynabert", lambda_relation=1.0):
    """Raises ValueError unless `objective` is one of OBJECTIVES, every weight is a finite
    number >= 0 and the weights the objective uses are not all 0."""
    if objective not in OBJECTIVES:
        raise ValueError(f"distill_objective must be one of {', '.join(OBJECTIVES)}, "
                         f"got {objective!r}")
    weights = {"lambda_logits": lambda_logits, "lambda_hidden": lambda_hidden,
               "lambda_relation": lambda_relation}
    for name, value in weights.items():
        if not isinstance(value, (int, float)) or not 0.0 <= float(value) < math.inf:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    used = {"dynabert": ("lambda_logits", "lambda_hidden"),
            "minilm": ("lambda_logits", "lambda_relation"),
            "both": tuple(weights)}[objective]
    if not any(weights[name] for name in used):
        raise ValueError(f"{' and '.join(used)} are {'both' if len(used) == 2 else 'all'} 0: "
                         f"nothing to distil")


def distillation_loss(head, student_out, teacher_out, depth_mult, num_layers, lambda_logits,
                      lambda_hidden, return_parts=False, mse_cache=None, objective="dynabert",
                      lambda_relation=1.0, relation_heads=None,
                      relations=relations_lib.MINILM_V2):
    """The distillation loss of one grid cell (DynaBERT's, or with MiniLM relations).

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
      return_parts: also return the unweighted terms: {"logits", "hidden"} ("dynabert"),
        {"logits", "relation"} ("minilm"), all three ("both").
      mse_cache: optional dict shared across cells: `hidden_mse`'s cache, and the teacher's
        relations (`relations.relation_loss`'s cache).
      objective: one of OBJECTIVES (module doc).
      lambda_relation: weight of the relation term ("minilm", "both").
      relation_heads: R of `relations.relation_loss` (needed by "minilm" and "both").
      relations: relation names (`relations.RELATIONS`); default MiniLMv2's Q-Q, K-K, V-V.
    For "minilm" and "both" both outputs need `last_layer_qkv` (`return_qkv=True`).
    Returns:
      scalar loss (and the parts dict when return_parts).
    """
    check_lambdas(lambda_logits, lambda_hidden, objective, lambda_relation)
    if objective != "dynabert" and relation_heads is None:
        raise ValueError(f'distill_objective "{objective}" needs relation_heads')
    teacher_states = teacher_out["hidden_states"]
    if len(teacher_states) != num_layers + 1:
        raise ValueError(f"teacher must run at full depth: expected {num_layers + 1} hidden "
                         f"states, got {len(teacher_states)}")
    indices = teacher_layer_indices(num_layers, depth_mult)
    if len(student_out["hidden_states"]) != len(indices):
        raise ValueError(f"student at depth_mult={depth_mult} should have {len(indices)} "
                         f"hidden states, got {len(student_out['hidden_states'])}")
    parts = {"logits": head.distillation_loss(student_out, teacher_out)}
    loss = lambda_logits * parts["logits"]
    if objective != "minilm":
        parts["hidden"] = hidden_mse(student_out["hidden_states"],
                                     [teacher_states[i] for i in indices], cache=mse_cache)
        loss = loss + lambda_hidden * parts["hidden"]
    if objective != "dynabert":
        parts["relation"] = relations_lib.relation_loss(
            student_out["last_layer_qkv"], teacher_out["last_layer_qkv"], relation_heads,
            relations, cache=mse_cache)
        loss = loss + lambda_relation * parts["relation"]
    return (loss, parts) if return_parts else loss
