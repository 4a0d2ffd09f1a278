"""SQuAD v1.1 / v2.0: examples from the official JSON or tensorflow-datasets, and features.

    examples = load_squad_examples("v1.1", "train", data_dir="squad")  # squad/train-v1.1.json
    features = make_features(examples, encoder, max_seq_length=384, doc_stride=128)
    dataset = make_dataset(features, batch_size=32, shuffle=True)

Features follow google-research/bert's `run_squad.py`: `[CLS] question [SEP] window [SEP]`,
the question cut to `max_query_length` tokens and the context cut into windows that start
`doc_stride` tokens apart; a context token is scored in the window where it has the most
context on both sides (`token_is_max_context`). Training labels are the token indices of the
first gold answer in the window, or 0/0 (the [CLS] position) when the question is
unanswerable or the answer is not wholly inside the window.

Context tokens carry their character span in the original context, so an answer is read back
as `context[token_start_char[s]:token_end_char[e]]`. Tokens are the encoder's own: the text is
split with keras-hub's `BertTokenizer` patterns, each word accent-stripped and case-folded as
it does, then WordPiece'd by tensorflow-text with offsets; the split is done on the original
text, which gives the same words (NFD and accent stripping never create or remove a space or a
punctuation mark). A sub-word's span is exact when normalising kept its word's length in
characters (always for ASCII and precomposed accents, "Café" -> "cafe"); otherwise (case
folding "ß" -> "ss", decomposed accents) every piece of that word spans the whole word.
"""

import collections
import dataclasses

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text
from keras_hub.src.tokenizers import word_piece_tokenizer

from dynabert_tf.core import control_chars
from dynabert_tf.data import tfds_source
# The official JSON files are read without TensorFlow (the training CLI checks them first).
from dynabert_tf.data.squad_json import (SquadExample, check_unique_ids,  # noqa: F401
                                         example_from_qa, json_path, read_squad_json)

VERSIONS = ("v1.1", "v2.0")
SPLITS = ("train", "dev")
_TFDS_SPLITS = {"train": "train", "dev": "validation"}
_DOWNLOAD_URL = "https://rajpurkar.github.io/SQuAD-explorer/dataset/"


def load_squad_examples(version, split, data_dir=None, data_source="json"):
    """Examples of SQuAD `version` ("v1.1" or "v2.0") and `split` ("train" or "dev").

    data_source "json" reads the official file `<data_dir>/<split>-<version>.json`; "tfds"
    reads tensorflow-datasets `squad/<version>`, `data_dir` being the tfds data dir, and needs
    network access unless already prepared there.
    """
    if version not in VERSIONS:
        raise ValueError(f"unknown SQuAD version {version!r}; expected one of {VERSIONS}")
    if split not in SPLITS:
        raise ValueError(f"SQuAD has no split {split!r}; expected one of {SPLITS}")
    if data_source == "tfds":
        return _tfds_examples(version, split, data_dir)
    if data_source != "json":
        raise ValueError(f"unknown data_source {data_source!r}; expected 'json' or 'tfds'")
    if data_dir is None:
        raise ValueError(f"SQuAD from JSON needs data_dir (the folder holding "
                         f"{split}-{version}.json), or data_source='tfds'")
    return read_squad_json(json_path(version, split, data_dir))


def _tfds_examples(version, split, data_dir):
    import tensorflow_datasets as tfds  # imported here: only this path needs it

    name = f"squad/{version}"
    builder = tfds_source.prepared_builder(
        name, data_dir,
        f"use --data_dir=<folder holding {split}-{version}.json> (the default --data_source)",
        default_url=_DOWNLOAD_URL)
    examples = []
    for record in tfds.as_numpy(builder.as_dataset(split=_TFDS_SPLITS[split])):
        decoded = {key: record[key].decode("utf-8")
                   for key in ("id", "title", "context", "question")}
        answers = record["answers"]
        decoded["answers"] = [{"text": text.decode("utf-8"), "answer_start": start}
                              for text, start in zip(answers["text"], answers["answer_start"])]
        decoded["is_impossible"] = bool(record.get("is_impossible", False))
        examples.append(example_from_qa(decoded, decoded["context"], decoded["title"],
                                        f"{name} {split} question {decoded['id']!r}"))
    check_unique_ids(examples, f"{name} {split}")
    return examples


@dataclasses.dataclass
class SquadFeatures:
    """Model inputs and labels, one row per (question, context window) feature.

    Attributes:
      token_ids, segment_ids, padding_mask: int32 [n, seq], the model inputs.
      start_positions, end_positions: int32 [n], the answer's first and last token index in
        the feature, 0 (the [CLS] position) when it has none.
      example_index: int32 [n], the feature's example in the list given to `make_features`.
      token_start_char, token_end_char: int32 [n, seq], each context token's character span
        in its example's context (end exclusive); -1 for question, special and pad positions.
      token_is_max_context: bool [n, seq], true where this window gives the token the most
        context of all windows holding it (never for non-context positions).
    """
    token_ids: np.ndarray
    segment_ids: np.ndarray
    padding_mask: np.ndarray
    start_positions: np.ndarray
    end_positions: np.ndarray
    example_index: np.ndarray
    token_start_char: np.ndarray
    token_end_char: np.ndarray
    token_is_max_context: np.ndarray

    def __len__(self):
        return len(self.token_ids)


@dataclasses.dataclass
class ContextTokens:
    """WordPiece ids of one context and each token's [start, end) character span in it."""
    ids: np.ndarray
    start_char: np.ndarray
    end_char: np.ndarray


def _char_index_of_byte(text):
    """int [utf8_length + 1]: the character index at each byte offset (char boundaries)."""
    data = np.frombuffer(text.encode("utf-8"), np.uint8)
    return np.concatenate([[0], np.cumsum((data & 0xC0) != 0x80)])  # count of lead bytes


def _ragged_parts(ragged):
    return ragged.flat_values.numpy(), ragged.row_splits.numpy()


def tokenize_contexts(texts, encoder):
    """Tokenizes `texts` as `encoder.tokenize` does, keeping character spans (one TF call).

    Args:
      texts: list of strings.
      encoder: a `BertInputEncoder`.
    Returns:
      list of `ContextTokens`, one per text.
    """
    tokenizer = encoder.tokenizer
    if tokenizer.split_on_cjk:
        delimiters = word_piece_tokenizer.WHITESPACE_PUNCTUATION_AND_CJK_REGEX
        kept = word_piece_tokenizer.PUNCTUATION_AND_CJK_REGEX
    else:
        delimiters = word_piece_tokenizer.WHITESPACE_AND_PUNCTUATION_REGEX
        kept = word_piece_tokenizer.PUNCTUATION_REGEX
    # Control characters go first, as `encoder.tokenize` drops them; spans are found in the
    # cleaned text and mapped back to the original's characters at the end.
    cleaned = [control_chars.remove_with_offsets(text) for text in texts]
    words, word_start, word_end = tf_text.regex_split_with_offsets(
        tf.constant([text for text, _ in cleaned], tf.string), delimiters,
        kept)  # [texts, (words)], byte offsets
    normalized = words.flat_values
    if tokenizer.strip_accents:
        normalized = tf_text.normalize_utf8(normalized, "NFD")
        normalized = tf.strings.regex_replace(normalized, r"\p{Mn}", "")
    if tokenizer.lowercase:
        normalized = tf_text.case_fold_utf8(normalized)
    wordpiece = tf_text.FastWordpieceTokenizer(
        vocab=tokenizer.vocabulary, suffix_indicator=tokenizer.suffix_indicator,
        unknown_token=tokenizer.oov_token, token_out_type=tf.int32, no_pretokenization=True)
    ids, piece_start, piece_end = wordpiece.tokenize_with_offsets(normalized)  # [words, (pieces)]
    # Piece offsets are bytes of the normalized word; count the characters before them.
    word_of_piece = ids.value_rowids()
    piece_word = tf.gather(normalized, word_of_piece)

    def chars_before(byte_offsets):
        prefixes = tf.strings.substr(piece_word, tf.zeros_like(byte_offsets), byte_offsets)
        return tf.strings.length(prefixes, unit="UTF8_CHAR").numpy()

    piece_start = chars_before(piece_start.flat_values)
    piece_end = chars_before(piece_end.flat_values)
    same_length = (tf.strings.length(words.flat_values, unit="UTF8_CHAR")
                   == tf.strings.length(normalized, unit="UTF8_CHAR")).numpy()
    word_of_piece = word_of_piece.numpy()
    piece_ids, piece_splits = _ragged_parts(ids)
    word_start, word_splits = _ragged_parts(word_start)
    word_end = word_end.flat_values.numpy()

    results = []
    for i, (text, original_index) in enumerate(cleaned):
        char_of_byte = _char_index_of_byte(text)
        first_word, end_word = word_splits[i], word_splits[i + 1]
        pieces = slice(piece_splits[first_word], piece_splits[end_word])
        word = word_of_piece[pieces]
        first_char = char_of_byte[word_start[word]]
        exact = same_length[word]
        start = np.where(exact, first_char + piece_start[pieces], first_char)
        end = np.where(exact, first_char + piece_end[pieces], char_of_byte[word_end[word]])
        original_index = np.asarray(original_index, np.int64)  # cleaned char -> texts[i]'s
        results.append(ContextTokens(piece_ids[pieces],
                                     original_index[start].astype(np.int32),
                                     (original_index[end - 1] + 1).astype(np.int32)))
    return results


def _doc_spans(num_tokens, window, doc_stride):
    """(start, length) of each window over `num_tokens` context tokens (at least one)."""
    spans, start = [], 0
    while True:
        length = min(num_tokens - start, window)
        spans.append((start, length))
        if start + length >= num_tokens:
            return spans
        start += min(length, doc_stride)


def _max_context_span(spans, num_tokens):
    """int [num_tokens]: for each context token, the span where it has the most context.

    BERT's `_check_is_max_context`: the span maximising min(tokens left, tokens right), the
    first one on ties. (BERT adds 0.01 * span length, which changes nothing here: only the
    last span can be shorter, and it loses ties anyway.)
    """
    starts = np.array([start for start, _ in spans])[:, None]
    ends = np.array([start + length for start, length in spans])[:, None]
    position = np.arange(num_tokens)[None, :]
    left, right = position - starts, ends - 1 - position
    score = np.where((left >= 0) & (right >= 0), np.minimum(left, right), -1)
    return np.argmax(score, axis=0)


def _answer_tokens(example, tokens):
    """Context token indices (first, last) of the example's first answer, or None."""
    if example.is_impossible:
        return None
    text, start = example.answers[0]
    end = start + len(text)
    first = np.searchsorted(tokens.end_char, start, side="right")  # first token ending after
    last = np.searchsorted(tokens.start_char, end, side="left") - 1  # last starting before
    return (first, last) if first <= last else None


# One feature before padding: `length` context tokens from `start` of `tokens` after `query`.
_Window = collections.namedtuple(
    "_Window", "example_index query tokens start length is_max_context labels")


def make_features(examples, encoder, max_seq_length=384, doc_stride=128, max_query_length=64):
    """Features of `examples`: one per context window of each question (see module doc).

    Args:
      examples: list of `SquadExample`.
      encoder: a `BertInputEncoder` (only its tokenizer and special ids are used).
      max_seq_length: length of every feature, [CLS] and [SEP]s included.
      doc_stride: tokens between the starts of consecutive windows of one context.
      max_query_length: questions are cut to this many tokens.
    Returns:
      `SquadFeatures`.
    """
    if doc_stride < 1:
        raise ValueError(f"doc_stride must be positive, got {doc_stride}")
    if not examples:
        raise ValueError("make_features got no examples")
    contexts = list(dict.fromkeys(example.context for example in examples))
    context_tokens = dict(zip(contexts, tokenize_contexts(contexts, encoder)))
    questions = encoder.tokenize(tf.constant([example.question for example in examples]))
    question_ids, question_splits = _ragged_parts(questions)

    windows = []
    for index, example in enumerate(examples):
        query = question_ids[question_splits[index]:question_splits[index + 1]]
        query = query[:max_query_length]
        window_length = max_seq_length - len(query) - 3  # context tokens per feature
        if window_length < 1:
            raise ValueError(f"max_seq_length={max_seq_length} leaves no room for the context "
                             f"after question {example.qas_id!r} ({len(query)} tokens)")
        tokens = context_tokens[example.context]
        spans = _doc_spans(len(tokens.ids), window_length, doc_stride)
        best_span = _max_context_span(spans, len(tokens.ids))
        answer = _answer_tokens(example, tokens)
        offset = len(query) + 2  # the window's first position: after [CLS] question [SEP]
        for span_index, (start, length) in enumerate(spans):
            labels = (0, 0)
            if answer is not None and start <= answer[0] and answer[1] < start + length:
                labels = (answer[0] - start + offset, answer[1] - start + offset)
            windows.append(_Window(index, query, tokens, start, length,
                                   best_span[start:start + length] == span_index, labels))

    n = len(windows)
    token_ids = np.full((n, max_seq_length), encoder.pad_id, np.int32)
    segment_ids = np.zeros((n, max_seq_length), np.int32)
    padding_mask = np.zeros((n, max_seq_length), np.int32)
    start_char = np.full((n, max_seq_length), -1, np.int32)
    end_char = np.full((n, max_seq_length), -1, np.int32)
    is_max_context = np.zeros((n, max_seq_length), bool)
    for row, window in enumerate(windows):
        span = slice(window.start, window.start + window.length)
        context = slice(len(window.query) + 2, len(window.query) + 2 + window.length)
        sequence = np.concatenate([[encoder.cls_id], window.query, [encoder.sep_id],
                                   window.tokens.ids[span], [encoder.sep_id]])
        token_ids[row, :len(sequence)] = sequence
        segment_ids[row, context.start:len(sequence)] = 1
        padding_mask[row, :len(sequence)] = 1
        start_char[row, context] = window.tokens.start_char[span]
        end_char[row, context] = window.tokens.end_char[span]
        is_max_context[row, context] = window.is_max_context
    labels = np.array([window.labels for window in windows], np.int32).reshape(n, 2)
    example_index = np.array([window.example_index for window in windows], np.int32)
    return SquadFeatures(
        token_ids, segment_ids, padding_mask, start_positions=labels[:, 0],
        end_positions=labels[:, 1], example_index=example_index, token_start_char=start_char,
        token_end_char=end_char, token_is_max_context=is_max_context)


def make_dataset(features, batch_size, shuffle=False, seed=0):
    """A tf.data pipeline of (inputs, labels) batches of `features`.

    Args:
      features: `SquadFeatures`.
      shuffle: shuffle all features, seeded, reshuffled each epoch.
    Returns:
      tf.data.Dataset of (dict of int32 [batch, seq] `token_ids`, `segment_ids`,
      `padding_mask`; dict of int32 [batch] `start_positions`, `end_positions` and
      `feature_index`, the row in `features`, to gather logits back for `postprocess`).
    """
    inputs = {"token_ids": features.token_ids, "segment_ids": features.segment_ids,
              "padding_mask": features.padding_mask}
    labels = {"start_positions": features.start_positions,
              "end_positions": features.end_positions,
              "feature_index": np.arange(len(features), dtype=np.int32)}
    dataset = tf.data.Dataset.from_tensor_slices((inputs, labels))
    if shuffle:
        dataset = dataset.shuffle(len(features), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
