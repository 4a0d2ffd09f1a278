"""Examples -> tf.data batches of model inputs and labels.

    dataset = make_dataset(examples, encoder, batch_size=32, shuffle=True, pad_to="longest")

or, to tokenize a split once and batch it again every epoch:

    encoded = encode(examples, encoder)
    dataset = batches(encoded, batch_size=32, shuffle=True, seed=epoch)
"""

import dataclasses

import numpy as np
import tensorflow as tf

from dynabert_tf.models import input_encoder

_ENCODE_CHUNK = 4096  # texts per tokenizer call


@dataclasses.dataclass(frozen=True)
class Encoded:
    """A tokenized split: unpadded int32 features, labels (or None), what padding needs.

    features: {"token_ids", "segment_ids", "padding_mask"}: tf.RaggedTensor [n, (length)].
    labels: numpy [n] (int32 class ids or float32 targets), or None (unlabelled).
    """

    features: dict
    labels: np.ndarray | None
    pad_id: int
    max_seq_length: int


def encode(examples, encoder):
    """Tokenizes `examples` once (`encoder.encode_unpadded`, in chunks) -> `Encoded`.

    Args:
      examples: list of `Example`; all with or all without `text_b`, all labelled or none.
      encoder: a `models.input_encoder.InputEncoder` (BERT WordPiece or RoBERTa BPE).
    """
    if not examples:
        raise ValueError("make_dataset got no examples")
    pairs = {example.text_b is not None for example in examples}
    labelled = {example.label is not None for example in examples}
    if len(pairs) > 1 or len(labelled) > 1:
        raise ValueError("examples mix single sentences and pairs, or labelled and unlabelled")
    labels = None
    if labelled.pop():
        labels = [example.label for example in examples]
        regression = any(isinstance(label, float) for label in labels)
        labels = np.asarray(labels, np.float32 if regression else np.int32)
        not_finite = np.flatnonzero(~np.isfinite(labels))
        if not_finite.size:  # the readers refuse these; examples built by hand may hold them
            raise ValueError(f"example {not_finite[0]}: label {labels[not_finite[0]]} is not a "
                             f"finite number")
    texts = {"text_a": [example.text_a for example in examples]}
    if pairs.pop():
        texts["text_b"] = [example.text_b for example in examples]
    # The encoder traces its own calls; eager mode is off here too, or under --run_eagerly tf.data
    # warns that the eager option does not apply to its map function.
    with input_encoder.traced_functions():
        chunks = list(tf.data.Dataset.from_tensor_slices(texts).batch(_ENCODE_CHUNK).map(
            lambda batch: encoder.encode_unpadded(batch["text_a"], batch.get("text_b"))))
    features = {name: tf.concat([chunk[name] for chunk in chunks], axis=0)
                for name in chunks[0]}
    return Encoded(features, labels, encoder.pad_id, encoder.max_seq_length)


def batches(encoded, batch_size, shuffle=False, seed=0, pad_to="max", drop_remainder=False,
            bucket_boundaries=None):
    """A tf.data pipeline of (features, labels) batches (features only if unlabelled) of an
    `Encoded` split; shuffled by `seed` when asked, padded per batch.

    Args:
      pad_to: "max" pads to the encoder's max_seq_length; "longest" pads each batch to its
        longest sequence (movie-review sentences average ~27 tokens, so far less compute
        than 128).
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
    # Rows of a ragged tensor come out of from_tensor_slices with a RaggedTensorSpec of
    # ragged_rank 0, which padded_batch refuses; inside a map they are plain tensors.
    dataset = tf.data.Dataset.from_tensor_slices(encoded.features).map(dict)
    padding_values = {"token_ids": encoded.pad_id, "segment_ids": 0, "padding_mask": 0}
    length = encoded.max_seq_length if pad_to == "max" else None
    padded_shapes = {name: [length] for name in padding_values}
    if encoded.labels is not None:
        dataset = tf.data.Dataset.zip(dataset,
                                      tf.data.Dataset.from_tensor_slices(encoded.labels))
        padding_values = (padding_values, tf.constant(0, encoded.labels.dtype))
        padded_shapes = (padded_shapes, [])
    if shuffle:
        dataset = dataset.shuffle(int(encoded.features["token_ids"].nrows()), seed=seed,
                                  reshuffle_each_iteration=True)
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


def make_dataset(examples, encoder, batch_size, shuffle=False, seed=0, pad_to="max",
                 drop_remainder=False, bucket_boundaries=None):
    """`batches(encode(examples, encoder), ...)`: tokenize and batch in one call."""
    if pad_to not in ("max", "longest"):  # checked before tokenizing anything
        raise ValueError(f"pad_to must be 'max' or 'longest', got {pad_to!r}")
    return batches(encode(examples, encoder), batch_size, shuffle, seed, pad_to,
                   drop_remainder, bucket_boundaries)
