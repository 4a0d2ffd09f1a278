"""Atomic file writes (an interrupted run never leaves a half-written file under the real
name), JSON reading with errors naming the file, and the one sha256 helper.

Every file this project writes goes through here.
"""

import contextlib
import hashlib
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_open(path, mode="wb"):
    """Yields a file that becomes `path` (by rename) only when the block exits cleanly."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".partial",
                               dir=directory)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600 files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_atomic(path, content, mode="wb"):
    """Writes `content` (bytes, or str with mode="w") to `path` atomically."""
    with atomic_open(path, mode) as f:
        f.write(content)


def write_json(path, value):
    """`value` as indented JSON, written atomically."""
    write_atomic(path, json.dumps(value, indent=2) + "\n", mode="w")


def read_json(path, what="file"):
    """Parsed JSON of `path`; FileNotFoundError / ValueError naming the file otherwise."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {what} at {path}")
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from None


def sha256_of(path, chunk_bytes=1 << 20):
    """Hex sha256 of the file at `path`, read in chunks (weights files are large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_bytes), b""):
            digest.update(block)
    return digest.hexdigest()
