"""Examples -> tf.data batches of model inputs and labels.

    dataset = make_dataset(examples, encoder, batch_size=32, shuffle=True, pad_to="longest")
"""

import numpy as np
import tensorflow as tf

def make_dataset(examples, encoder, batch_size, shuffle=False, seed=0, pad_to="max",
                 drop_remainder=False, bucket_boundaries=None):
    """A tf.data pipeline of (features, labels) batches (features only if unlabelled).

    Tokenization runs once (in chunks, inside the graph) and is cached unpadded in memory;
    each epoch then shuffles (seeded, reshuffled per epoch) and pads per batch.

    Args:
      examples: list of `Example`; all with or all without `text_b`, all labelled or none.
      encoder: a `tokenization.BertInputEncoder`.
      pad_to: "max" pads to encoder.max_seq_length; "longest" pads each batch to its longest
        sequence (movie-review sentences average ~27 tokens, so far less compute than 128).
      bucket_boundaries: with pad_to="longest", optional increasing lengths: batches are then
        drawn from length buckets (`tf.data.Dataset.bucket_by_sequence_length`).
    Returns:
      tf.data.Dataset of (dict of int32 [batch, seq] `token_ids`, `segment_ids`,
      `padding_mask`; labels [batch], int32 class indices or float32 targets).
    """
    if pad_to not in ("max", "longest"):
        raise ValueError(f"pad_to must be 'max' or 'longest', got {pad_to!r}")
    if bucket_boundaries and pad_to != "longest":
        raise ValueError("bucket_boundaries needs pad_to='longest'")
    if not examples:
        raise ValueError("make_dataset got no examples")
    pairs = {example.text_b is not None for example in examples}
    labelled = {example.label is not None for example in examples}
    if len(pairs) > 1 or len(labelled) > 1:
        raise ValueError("examples mix single sentences and pairs, or labelled and unlabelled")
    texts = {"text_a": [example.text_a for example in examples]}
    if pairs.pop():
        texts["text_b"] = [example.text_b for example in examples]
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(1024).map(
        lambda batch: encoder.encode_unpadded(batch["text_a"], batch.get("text_b")),
        num_parallel_calls=tf.data.AUTOTUNE).unbatch()
    # Unbatched ragged rows have a RaggedTensorSpec of ragged_rank 0, which padded_batch
    # refuses; inside a map they are plain tensors, so an identity map fixes the spec.
    dataset = dataset.map(dict)
    padding_values = {"token_ids": encoder.pad_id, "segment_ids": 0, "padding_mask": 0}
    length = encoder.max_seq_length if pad_to == "max" else None
    padded_shapes = {name: [length] for name in padding_values}
    if labelled.pop():
        labels = [example.label for example in examples]
        regression = any(isinstance(label, float) for label in labels)
        labels = np.asarray(labels, np.float32 if regression else np.int32)
        dataset = tf.data.Dataset.zip(dataset, tf.data.Dataset.from_tensor_slices(labels))
        padding_values = (padding_values, tf.constant(0, labels.dtype))
        padded_shapes = (padded_shapes, [])
    dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(len(examples), seed=seed, reshuffle_each_iteration=True)
    if bucket_boundaries:
        dataset = dataset.bucket_by_sequence_length(
            lambda features, *_: tf.shape(features["token_ids"])[0], list(bucket_boundaries),
            [batch_size] * (len(bucket_boundaries) + 1), padding_values=padding_values,
            drop_remainder=drop_remainder)
    else:
        dataset = dataset.padded_batch(batch_size, padded_shapes=padded_shapes,
                                       padding_values=padding_values,
                                       drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)
