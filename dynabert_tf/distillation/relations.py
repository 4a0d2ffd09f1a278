"""MiniLM self-attention relation distillation (Wang et al. 2020, MiniLM; 2021, MiniLMv2).

For one layer's queries, keys or values A (and B) the relation of relation head r is

    R_r = softmax(A_r B_r^T / sqrt(d_r))            [batch, seq, seq] per relation head

where A_r are the columns r * d_r .. (r + 1) * d_r - 1 of the heads' vectors concatenated
([batch, seq, heads_kept * head_dim]) and re-split into R relation heads of d_r = columns / R.
The loss is KL(teacher relation || student relation), summed over the relations asked for
(MiniLMv2: query-query, key-key, value-value; MiniLM v1: query-key, i.e. the attention
distributions, and value-value).

Why relation heads. A student at width m_w keeps round(m_w * heads) heads, so its attention
maps cannot be paired head by head with a wider teacher's. Relation matrices are seq x seq
whatever d_r is, so with the same R for teacher and student every width is comparable: the
teacher's d_r is its columns / R and the student's its own columns / R (MiniLMv2 distils a
384-wide student from a 1024-wide teacher this way). The default R is the model's number of
attention heads (12 for BERT-base and MiniLM-L6, the R MiniLMv2 uses for base-size
teachers): at full width a relation head is then exactly an attention head, and the query-key
relation of a full-width model is its attention distribution. R must divide every width's
column count; with the paper's grid (1, .75, .5, .25) and 12 heads that holds whenever
head_dim * 3 is divisible by 12, i.e. head_dim % 4 == 0 (`grid.check_relation_heads`).

Padding. Padded keys are left out of every softmax (their probability is exactly 0 on both
sides). Padded query rows are left out of the average: the loss is the sum of the per-row KL
over real (example, relation head, query position) triples divided by their number, so it
does not depend on how much padding a batch carries (dynamic padding changes that per batch).
"""

import tensorflow as tf

from dynabert_tf.core.choices import MINILM_RELATIONS as RELATIONS  # name -> (A, B)
from dynabert_tf.layers.common import at_least_float32

MINILM_V2 = ("qq", "kk", "vv")
MINILM_V1 = ("qk", "vv")
_MASKED = -1e9  # added to padded keys' scores: exp underflows to exactly 0 in float32


def check_relations(relations):
    """Raises ValueError unless `relations` is a non-empty sequence of distinct names of
    RELATIONS; returns it as a tuple."""
    relations = tuple(relations)
    unknown = [name for name in relations if name not in RELATIONS]
    if not relations or unknown or len(set(relations)) != len(relations):
        raise ValueError(f"relations must be distinct names among {', '.join(RELATIONS)}, "
                         f"got {','.join(map(str, relations)) or 'none'}")
    return relations


def split_relation_heads(vectors, num_relation_heads):
    """Per-head vectors re-split into relation heads.

    Args:
      vectors: [batch, heads, seq, head_dim] (an attention layer's query, key or value).
      num_relation_heads: R, a Python int dividing heads * head_dim.
    Returns:
      [batch, R, seq, heads * head_dim / R]: the heads' vectors concatenated per token, in
      head order, then cut into R equal slices.
    """
    heads, head_dim = vectors.shape[1], vectors.shape[3]
    columns = heads * head_dim
    if columns % num_relation_heads:
        raise ValueError(f"relation_heads {num_relation_heads} does not divide the "
                         f"{columns} columns of {heads} heads of {head_dim}")
    shape = tf.shape(vectors)
    concatenated = tf.transpose(vectors, (0, 2, 1, 3))  # [batch, seq, heads, head_dim]
    split = tf.reshape(concatenated, tf.stack(
        [shape[0], shape[2], num_relation_heads, columns // num_relation_heads]))
    return tf.transpose(split, (0, 2, 1, 3))


def relation_log_probs(vectors_a, vectors_b, padding_mask, num_relation_heads):
    """log softmax(A_r B_r^T / sqrt(d_r)) over keys, padded keys left out.

    Args:
      vectors_a, vectors_b: [batch, heads, seq, head_dim].
      padding_mask: [batch, seq], 1 for tokens, 0 for padding.
      num_relation_heads: R.
    Returns:
      float32 [batch, R, seq (queries), seq (keys)] log-probabilities (computed in float32
      whatever the vectors' dtype); padded keys get ~-1e9.
    """
    a = split_relation_heads(at_least_float32(vectors_a), num_relation_heads)
    b = a if vectors_b is vectors_a else split_relation_heads(at_least_float32(vectors_b),
                                                              num_relation_heads)
    scale = float(a.shape[-1]) ** -0.5
    scores = tf.matmul(a * scale, b, transpose_b=True)
    key_mask = tf.cast(padding_mask, scores.dtype)[:, None, None, :]
    return tf.nn.log_softmax(scores + (1.0 - key_mask) * _MASKED, axis=-1)


def relation_kl(student_log_probs, teacher_log_probs, padding_mask):
    """KL(teacher || student) per query row, averaged over real rows.

    Args:
      student_log_probs, teacher_log_probs: [batch, R, seq, seq] (`relation_log_probs`).
      padding_mask: [batch, seq], 1 for tokens, 0 for padding.
    Returns:
      scalar: sum over real (example, relation head, query) rows of
      sum_k p_teacher * (log p_teacher - log p_student), divided by their number.
    """
    teacher_probs = tf.exp(teacher_log_probs)
    per_row = tf.reduce_sum(teacher_probs * (teacher_log_probs - student_log_probs), axis=-1)
    query_mask = tf.cast(padding_mask, per_row.dtype)[:, None, :]  # [batch, 1, seq]
    rows = tf.reduce_sum(query_mask) * tf.cast(tf.shape(per_row)[1], per_row.dtype)
    return tf.reduce_sum(per_row * query_mask) / tf.maximum(rows, 1.0)


def relation_loss(student_qkv, teacher_qkv, num_relation_heads, relations=MINILM_V2,
                  cache=None, return_parts=False):
    """Sum over `relations` of KL(teacher relation || student relation), one layer each.

    Args:
      student_qkv, teacher_qkv: a backbone's `last_layer_qkv`: {"query", "key", "value"}
        [batch, heads_kept, seq, head_dim] (heads_kept and head_dim may differ between
        the two) and "padding_mask" [batch, seq]; the student's mask is used for both.
      num_relation_heads: R, the same for both sides (see the module doc).
      relations: names among RELATIONS.
      cache: optional dict shared by calls with the same teacher tensors (grid cells
        taught by one teacher): the teacher's log-probabilities are computed once.
      return_parts: also return {relation name: its KL}.
    Returns:
      scalar (and the parts dict when return_parts).
    """
    cache = {} if cache is None else cache
    mask = student_qkv["padding_mask"]
    parts = {}
    for name in check_relations(relations):
        first, second = RELATIONS[name]
        key = ("relation", name, num_relation_heads, id(teacher_qkv[first]),
               id(teacher_qkv[second]))
        if key not in cache:  # the tensors are kept with the value so their ids stay unique
            cache[key] = (teacher_qkv[first], teacher_qkv[second], relation_log_probs(
                teacher_qkv[first], teacher_qkv[second], mask, num_relation_heads))
        student = relation_log_probs(student_qkv[first], student_qkv[second], mask,
                                     num_relation_heads)
        parts[name] = relation_kl(student, cache[key][2], mask)
    total = tf.add_n(list(parts.values()))
    return (total, parts) if return_parts else total
