"""Whether the files of an export are the ones its manifest.json describes, without TensorFlow.

Every reader of an export checks this before trusting an entry (`mobile.litert` before timing,
`mobile.selection` for the cell it picks, the run-time when it opens an export, and a
re-export for the entries it keeps): the file exists, has the entry's `bytes`, and its sha256
is the entry's `sha256`. A file that another run replaced, truncated, or dropped in under an
entry's name is caught here instead of being timed or served as the cell the manifest names.
"""

import os

from dynabert_tf.core import files
from dynabert_tf.core.layout import MANIFEST


def file_problem(directory, entry, digests=None):
    """None when `directory`/entry["file"] is the file the entry describes, else one line
    naming the file and what differs.

    Args:
      entry: a manifest entry with "file", "bytes" and "sha256".
      digests: optional {path: sha256} cache, so files shared by entries (an elastic export's
        one file) are hashed once.
    """
    path = os.path.join(directory, entry["file"])
    if not os.path.isfile(path):
        return f"{path} is missing (listed in {MANIFEST}); re-export it"
    recorded_bytes, recorded_sha256 = entry.get("bytes"), entry.get("sha256")
    if not isinstance(recorded_bytes, int) or not isinstance(recorded_sha256, str):
        return (f"{MANIFEST} records no bytes and sha256 for {path} (written by another tool?); "
                f"re-export it")
    size = os.path.getsize(path)
    if size != recorded_bytes:
        return (f"{path} does not match {MANIFEST} ({size} bytes, {MANIFEST} says "
                f"{recorded_bytes}); re-export it")
    digests = {} if digests is None else digests
    if path not in digests:
        digests[path] = files.sha256_of(path)
    if digests[path] != recorded_sha256:
        return (f"{path} does not match {MANIFEST} (sha256 {digests[path][:12]}..., {MANIFEST} "
                f"says {recorded_sha256[:12]}...); re-export it")
    return None


def check_files(directory, entries, error=ValueError):
    """Raises `error` (the reader's error type) with the first entry's `file_problem`."""
    digests = {}
    for entry in entries:
        problem = file_problem(directory, entry, digests)
        if problem:
            raise error(problem)
