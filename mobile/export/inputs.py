"""Encoded model inputs, int32 [count, seq_len] per name: random tokens, or a task split's
examples (int8 calibration in `mobile.export`, timing and parity in `mobile.litert`)."""

import numpy as np


def random_token_inputs(count, seq_len, vocab_size, seed=0):
    """`count` random single-segment examples, int32 [count, seq_len], variable length."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(1000 if vocab_size > 2000 else 1, vocab_size,
                             size=(count, seq_len)).astype("int32")
    padding_mask = np.ones((count, seq_len), "int32")
    for row, length in enumerate(rng.integers(min(8, seq_len), seq_len + 1, size=count)):
        padding_mask[row, length:] = 0
        token_ids[row, length:] = 0
    return {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
            "padding_mask": padding_mask}


def task_or_random_inputs(task, split, vocab_path, seq_len, count, vocab_size, data_dir=None,
                          seed=0):
    """(inputs, None): `count` encoded examples of the task split (`task_inputs`); or
    (`random_token_inputs`, the reason in one line) when its data is not available."""
    try:
        inputs, _ = task_inputs(task, split, vocab_path, seq_len, count, data_dir)
        return inputs, None
    except Exception as e:  # no data module, unknown task, no files: the caller says so
        reason = f"{type(e).__name__}: {e}".splitlines()[0]
        return random_token_inputs(count, seq_len, vocab_size, seed), reason


def task_inputs(task, split, vocab_path, seq_len, limit, data_dir=None):
    """Encoded examples of a task split: (dict of int32 [n, seq_len], labels [n]).

    `split` "dev" means the task's first dev split (MNLI: dev_matched).

    Raises an exception (ImportError, ValueError, FileNotFoundError, ...) when the task's data
    is not available; callers fall back to random tokens and say so.
    """
    import tensorflow as tf
    from dynabert_tf import data
    from dynabert_tf.models.bert import tokenizer as tokenization

    task = data.get_task(task)
    if split == "dev":
        split = task.dev_splits[0]
    examples = data.load_examples(task, split, data_dir=data_dir)[:limit]
    if not examples:
        raise ValueError(f"task {task!r} has no {split} examples")
    encoder = tokenization.BertInputEncoder(vocab_path, seq_len)
    text_a = tf.constant([e.text_a for e in examples])
    if any(e.text_b is not None for e in examples):
        features = encoder(text_a, tf.constant([e.text_b or "" for e in examples]))
    else:
        features = encoder(text_a)
    return ({k: np.asarray(v, "int32") for k, v in features.items()},
            np.asarray([e.label for e in examples]))
