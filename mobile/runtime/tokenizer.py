"""BERT WordPiece inputs without TensorFlow, from the vocabulary inside the model file.

    encoder = WordPieceEncoder(vocab_lines, max_seq_length=128)
    packed = encoder.encode("a gripping film", text_b=None)
    packed.token_ids, packed.segment_ids, packed.padding_mask   # lists of max_seq_length ints
    packed.length                                                # real tokens, [CLS]/[SEP] included

The same ids as the training side's `BertInputEncoder` (keras-hub's `BertTokenizer` on
tensorflow-text), with WordPiece from Hugging Face's Rust `tokenizers` (installed with
`transformers`): greedy longest match, "##" continuations, [UNK] for a word it cannot cover or
of more than 100 UTF-8 bytes (tensorflow-text's FastWordpiece limit).

First, NUL, U+FFFD and the other control (Unicode Cc) and format (Cf) characters but tab,
newline and carriage return are removed, the rest of the text kept, as Hugging Face's
BertTokenizer does and the training side does too (`dynabert_tf.core.control_chars`):
"a char\x00ming film" is "a charming film".

Then, before WordPiece, keras-hub's rules: CJK ideographs are words of their own; accents are
stripped (NFD, then the combining marks, category Mn, removed); the text is split on ASCII
whitespace, and every punctuation character (non-alphanumeric ASCII, Unicode P*) is a word
of its own; each word is then case-folded as tensorflow-text's `case_fold_utf8` (ICU
NFKC_Casefold: "½" -> "1⁄2", "ß" -> "ss", "…" -> "..."). ASCII text (most of it) goes through
`tokenizers` in one call (`BertNormalizer` + `BertPreTokenizer` split ASCII exactly so); other
text is split here, character by character, by those rules, as keras-hub's regular
expressions do (a no-break space, for one, is not a split point there, and the word
around it becomes [UNK]).

Packing is BERT's: [CLS] a [SEP] (b [SEP]), truncated longest-first (drop the last token of
the longer segment, of b on ties: keras-hub's round-robin trimmer keeps the same tokens).
"""

import dataclasses
import unicodedata

from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordPiece

from dynabert_tf.core import control_chars

MAX_BYTES_PER_WORD = 100  # tensorflow-text FastWordpieceTokenizer: longer words are [UNK]


@dataclasses.dataclass(frozen=True)
class Packed:
    """One packed example: int lists of `max_seq_length`; `length` real tokens."""
    token_ids: list
    segment_ids: list
    padding_mask: list
    length: int

    def truncated(self, seq_len):
        """The same example at a shorter (bucket) length, `length <= seq_len`."""
        if self.length > seq_len:
            raise ValueError(f"{self.length} tokens do not fit in {seq_len}")
        return Packed(self.token_ids[:seq_len], self.segment_ids[:seq_len],
                      self.padding_mask[:seq_len], self.length)


_ASCII_SPACES_MAP = {ord(c): " " for c in "\t\n\r"}  # left by control_chars.remove
_ASCII_SPACES = frozenset(" \t\n\r\f")
_CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def _is_punctuation(char, category):
    code = ord(char)
    return (33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126
            or category.startswith("P"))


def _is_cjk(char):
    code = ord(char)
    return any(low <= code <= high for low, high in _CJK)


def _split(text):
    """keras-hub's split: whitespace and Cc / Cf characters end a word (dropped), punctuation
    and CJK characters are words of their own."""
    words, word = [], []
    for char in text:
        category = unicodedata.category(char)
        if char in _ASCII_SPACES or category in ("Cc", "Cf"):
            if word:
                words.append("".join(word))
                word = []
        elif _is_punctuation(char, category) or _is_cjk(char):
            if word:
                words.append("".join(word))
                word = []
            words.append(char)
        else:
            word.append(char)
    if word:
        words.append("".join(word))
    return words


def _strip_accents(text):
    return "".join(c for c in unicodedata.normalize("NFD", text)
                   if unicodedata.category(c) != "Mn")


def client_text(text):
    r"""`text` as an app gives it to a TFLite Metadata client (MediaPipe's TextClassifier,
    the Task Library's BertNLClassifier): accents stripped as this encoder strips them (NFD,
    then the combining marks, Unicode Mn, dropped), "Café naïve" -> "Cafe naive". The
    clients' BertTokenizer lowercases but keeps accents, so "café" would be [UNK] there (an
    uncased vocabulary has no "é"); on the normalized text its ids are this encoder's on the
    original text, except for characters whose case folding is not lowercasing ("…" is
    "..." here, "ß" is "ss"). In an app: Kotlin/Java
    `Normalizer.normalize(s, Normalizer.Form.NFD).replace(Regex("\\p{Mn}+"), "")`, Swift
    `s.decomposedStringWithCanonicalMapping` without its `\p{Mn}` scalars, JavaScript
    `s.normalize("NFD").replace(/\p{Mn}/gu, "")`."""
    return _strip_accents(text)


def _casefold(word):
    """ICU's NFKC_Casefold, as tensorflow-text's `case_fold_utf8`, closely enough for text."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", word).casefold())


class WordPieceEncoder:
    """Text -> `Packed` BERT inputs.

    Args:
      vocabulary: the WordPiece tokens, line i is id i (a list of str, or the bytes / str of
        a `vocab.txt`).
      max_seq_length: length of the packed sequence, [CLS] and [SEP]s included.
      lowercase: uncased vocabulary (also strips accents, BERT's rule, unless `strip_accents`).
    """

    def __init__(self, vocabulary, max_seq_length, lowercase=True, strip_accents=None):
        if isinstance(vocabulary, bytes):
            vocabulary = vocabulary.decode("utf-8")
        if isinstance(vocabulary, str):
            vocabulary = vocabulary.splitlines()
        self.vocabulary = [token.rstrip("\r\n") for token in vocabulary]
        if max_seq_length < 3:
            raise ValueError(f"max_seq_length must be at least 3, got {max_seq_length}")
        self.max_seq_length = int(max_seq_length)
        ids = {}
        for i, token in enumerate(self.vocabulary):
            ids.setdefault(token, i)
        for token in ("[UNK]", "[CLS]", "[SEP]", "[PAD]"):
            if token not in ids:
                raise ValueError(f"the vocabulary has no {token} token")
        self.unk_id, self.cls_id = ids["[UNK]"], ids["[CLS]"]
        self.sep_id, self.pad_id = ids["[SEP]"], ids["[PAD]"]
        self.lowercase = lowercase
        self.strip_accents = strip = lowercase if strip_accents is None else strip_accents
        self._wordpiece = Tokenizer(WordPiece(ids, unk_token="[UNK]",
                                              max_input_chars_per_word=MAX_BYTES_PER_WORD))
        # ASCII text (most of it) in one call: case folding is lowercasing there, and
        # lowercasing before the split changes no split.
        self._ascii = Tokenizer(WordPiece(ids, unk_token="[UNK]",
                                          max_input_chars_per_word=MAX_BYTES_PER_WORD))
        self._ascii.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=strip,
            lowercase=lowercase)
        self._ascii.pre_tokenizer = pre_tokenizers.BertPreTokenizer()

    def words(self, text):
        """The words WordPiece sees: control characters removed, accents stripped, split,
        case-folded (module doc)."""
        text = control_chars.remove(text)
        if self.strip_accents:
            text = _strip_accents(text)
        words = _split(text)
        if self.lowercase:
            words = [_casefold(word) for word in words]
        return ["[UNK]" if len(word.encode("utf-8")) > MAX_BYTES_PER_WORD else word
                for word in words if word]

    def tokenize(self, text):
        """Token ids of `text`, no special tokens."""
        if text.isascii():
            return self._ascii.encode(control_chars.remove(text).translate(_ASCII_SPACES_MAP),
                                      add_special_tokens=False).ids
        words = self.words(text)
        if not words:
            return []
        return self._wordpiece.encode(words, is_pretokenized=True,
                                      add_special_tokens=False).ids

    def encode(self, text, text_b=None):
        """`Packed` [CLS] a [SEP] (b [SEP]) of `max_seq_length`."""
        a = self.tokenize(text)
        b = self.tokenize(text_b) if text_b is not None else None
        if b is None:
            a = a[:self.max_seq_length - 2]
            tokens = [self.cls_id, *a, self.sep_id]
            segments = [0] * len(tokens)
        else:
            budget = self.max_seq_length - 3
            while len(a) + len(b) > budget:  # BERT's _truncate_seq_pair
                (a if len(a) > len(b) else b).pop()
            tokens = [self.cls_id, *a, self.sep_id, *b, self.sep_id]
            segments = [0] * (len(a) + 2) + [1] * (len(b) + 1)
        length = len(tokens)
        pad = self.max_seq_length - length
        return Packed(tokens + [self.pad_id] * pad, segments + [0] * pad,
                      [1] * length + [0] * pad, length)
