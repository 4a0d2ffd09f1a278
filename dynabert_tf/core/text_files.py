"""UTF-8 text files whose decoding errors name the file, the line and the byte, and strict
JSON. No TensorFlow.

    text = read_utf8(path, "vocab.txt")                        # the whole file, one str
    for line_number, row in tsv_rows(path, "SST-2/dev.tsv"):  # tab-separated rows, streamed
    value = strict_json(read_utf8(path, path), path)           # NaN / Infinity refused

A byte that is not UTF-8 raises ValueError "SST-2/dev.tsv line 7: byte 0xe9 at byte offset 12
of the line is not valid UTF-8" (offsets count from 0, as Python's decoder counts them).
"""

import csv
import json
import re

_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes kept by errors="surrogateescape"


def _not_utf8(where, line_number, byte, offset):
    return ValueError(f"{where} line {line_number}: byte 0x{byte:02x} at byte offset {offset} "
                      f"of the line is not valid UTF-8")


def decode_utf8(data, where):
    """`data` (bytes) decoded as UTF-8 (a leading BOM dropped); ValueError naming the line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line_start = data.rfind(b"\n", 0, e.start) + 1
        raise _not_utf8(where, data.count(b"\n", 0, e.start) + 1, data[e.start],
                        e.start - line_start) from None


def read_utf8(path, where):
    """The text of the file at `path`; `where` names it in errors."""
    with open(path, "rb") as f:
        return decode_utf8(f.read(), where)


def tsv_rows(path, where):
    """Yields (line number, list of fields) of a tab-separated file read without quoting (a
    leading BOM dropped, empty lines skipped); ValueError naming the line at a byte that is
    not UTF-8. Streams the file: GLUE's training files are large."""
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        for row in reader:
            line = "\t".join(row)  # the line itself: no quoting, no escape character
            bad = _UNDECODED.search(line)
            if bad:
                offset = len(line[:bad.start()].encode("utf-8", "surrogateescape"))
                raise _not_utf8(where, reader.line_num, ord(bad.group()) - 0xDC00, offset)
            if row:
                yield reader.line_num, row


def _not_a_number(name):
    raise ValueError(f"{name} is not a JSON number; strict JSON has finite numbers only")


def strict_json(text, where):
    """`json.loads(text)`, refusing NaN, Infinity and -Infinity (Python's json writes and
    reads them; strict parsers do not); ValueError "<where> is not valid JSON: ..."."""
    try:
        return json.loads(text, parse_constant=_not_a_number)
    except ValueError as e:  # JSONDecodeError, or a constant `_not_a_number` refused
        raise ValueError(f"{where} is not valid JSON: {e}") from None
