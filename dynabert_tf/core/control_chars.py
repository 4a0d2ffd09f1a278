r"""What the WordPiece tokenizers do with control characters: Hugging Face's `BertTokenizer`
rule (`BasicTokenizer._clean_text`), shared by the training side's `BertInputEncoder` (in the
TF graph, `REMOVED_RE2`) and the run-time's TF-free `WordPieceEncoder` (`remove`). No
TensorFlow.

NUL (U+0000), the replacement character U+FFFD and every other control (Unicode Cc) or format
(Cf) character are removed and the rest of the text kept: "a char\x00ming film" is "a
charming film", "zero\u200bwidth" is "zerowidth". Tab, newline and carriage return are
whitespace, as spaces are. (Without this, tensorflow-text ends a string at its first NUL.)
"""

import unicodedata

WHITESPACE_CONTROLS = "\t\n\r"
REMOVED_RE2 = r"[\x{0}-\x{8}\x{b}\x{c}\x{e}-\x{1f}\x{7f}-\x{9f}\x{fffd}\p{Cf}]"
_ASCII_REMOVED = dict.fromkeys([*range(0, 9), 11, 12, *range(14, 32), 127])


def is_removed(char):
    """True for a character the tokenizers drop (module doc)."""
    return char == "\ufffd" or (char not in WHITESPACE_CONTROLS
                                and unicodedata.category(char) in ("Cc", "Cf"))


def remove(text):
    """`text` without the characters the tokenizers drop."""
    if text.isascii():
        return text.translate(_ASCII_REMOVED)
    return "".join(char for char in text if not is_removed(char))


def remove_with_offsets(text):
    """(`remove(text)`, list of each kept character's index in `text`)."""
    kept = [i for i, char in enumerate(text) if not is_removed(char)]
    return "".join(text[i] for i in kept), kept
