"""Atomic file and directory writes (an interrupted or out-of-space run never leaves a
half-written file or directory under the real name), JSON reading with errors naming the
file, and the one sha256 helper.

Every file this project writes goes through here:

    files.write_json(path, value)              # strict JSON: no NaN / Infinity
    with files.atomic_open(path) as f: ...     # temporary name, fsync, rename, fsync the dir
    with files.atomic_directory(path) as tmp:  # a whole directory, swapped in by rename
        files.copy_tree(source, tmp)

Temporaries (and `scratch_directory`'s work space, e.g. an export's SavedModel) are hidden
siblings of what they become (`.NAME.XXXX.partial`, `is_temporary`), never in the system temp
dir; a writer that holds its directory's lock (core/locks.py) removes the ones a killed writer
left (`remove_temporaries`), and a SIGTERM'd tool removes its own (core/errors.py,
`remove_active_temporaries`). A write that fails (a full disk) raises an OSError whose
message is one line naming the file (`write_error`): "no space left on device writing
OUT/model.safetensors".
"""

import contextlib
import errno
import hashlib
import json
import math
import os
import re
import shutil
import tempfile

from dynabert_tf.core import text_files

_SUFFIX = ".partial"
_PREVIOUS = ".previous" + _SUFFIX  # the old directory while a new one is swapped in
_ACTIVE = set()  # this process's temporaries now being written (`remove_active_temporaries`)


def is_temporary(name):
    """Whether a file name is one of this module's temporaries."""
    return name.startswith(".") and name.endswith(_SUFFIX)


# TensorFlow's op text around a message: "{{function_node __wrapped__SaveV2_...}} " and
# " [Op:SaveV2]".
_OP_NOISE = re.compile(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\]")
_NO_SPACE = os.strerror(errno.ENOSPC)  # "No space left on device"


def write_error(error, what):
    """`error`, raised while writing `what` (a path, or words such as "a checkpoint in DIR"),
    as an OSError of one line naming it: "no space left on device writing OUT/x.tflite".
    Takes OSErrors and TensorFlow's errors (their `message`, op text removed); the errno of
    an OSError is kept, a full disk's is ENOSPC."""
    if isinstance(error, OSError) and error.strerror:
        reason, code = error.strerror, error.errno
    else:
        text = _OP_NOISE.sub("", str(getattr(error, "message", None) or error)).strip()
        reason = text.splitlines()[0] if text else type(error).__name__
        code = getattr(error, "errno", None)
        if _NO_SPACE in text:
            reason, code = _NO_SPACE, errno.ENOSPC
        elif not isinstance(error, OSError):
            return OSError(f"cannot write {what}: {reason}")
    converted = OSError(f"{reason[:1].lower()}{reason[1:]} writing {what}")
    converted.errno = code
    return converted


@contextlib.contextmanager
def scratch_directory(beside):
    """A hidden scratch directory next to the path `beside` (not in the system temp dir),
    removed when the block exits; one a killed writer left is removed by the directory's next
    writer (`remove_temporaries`)."""
    with _hidden_sibling(beside, os.path.dirname(os.path.abspath(beside))) as tmp:
        yield tmp


@contextlib.contextmanager
def _hidden_sibling(path, shown):
    """A new hidden temporary directory beside `path` (registered as active, so a SIGTERM
    removes it), removed when the block exits; making it fails with one line naming `shown`."""
    parent, name = os.path.split(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{name}.", suffix=_SUFFIX, dir=parent)
    except OSError as e:
        raise write_error(e, shown) from None
    _ACTIVE.add(tmp)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        _ACTIVE.discard(tmp)


def remove_active_temporaries():
    """Removes the temporaries this process is writing now (atomic files and directories,
    scratch directories): what a tool does when it is stopped (a SIGTERM) mid-write."""
    for path in list(_ACTIVE):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.remove(path)
        _ACTIVE.discard(path)


@contextlib.contextmanager
def atomic_open(path, mode="wb"):
    """Yields a file that becomes `path` (by rename) only when the block exits cleanly; its
    bytes and the directory entry are on disk (fsync) when the block returns."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=_SUFFIX,
                                   dir=directory)
    except OSError as e:
        raise write_error(e, path) from None
    _ACTIVE.add(tmp)
    try:
        try:
            with os.fdopen(fd, mode) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600 files
            os.replace(tmp, path)
            _fsync_directory(directory)
        except OSError as e:
            if e.filename not in (None, tmp, path):
                raise  # about another file (one the block read), not this write
            raise write_error(e, path) from None
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    finally:
        _ACTIVE.discard(tmp)


def write_atomic(path, content, mode="wb"):
    """Writes `content` (bytes, or str with mode="w") to `path` atomically."""
    with atomic_open(path, mode) as f:
        f.write(content)


def write_json(path, value):
    """`value` as indented strict JSON, written atomically. ValueError naming the file and the
    key of a non-finite number (NaN, Infinity: not JSON)."""
    try:
        text = json.dumps(value, indent=2, allow_nan=False)
    except ValueError:
        key = _non_finite_key(value)
        raise ValueError(f"cannot write {path}: {key or 'a value'} is not a finite number "
                         f"(JSON has no NaN or Infinity)") from None
    write_atomic(path, text + "\n", mode="w")


def _non_finite_key(value, key=""):
    """'a.b[2]: nan', the first non-finite float in `value`, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{key or 'the value'} = {value}"
    items = (value.items() if isinstance(value, dict)
             else enumerate(value) if isinstance(value, (list, tuple)) else ())
    for name, item in items:
        found = _non_finite_key(item, f"{key}[{name}]" if isinstance(name, int)
                                else f"{key}.{name}" if key else str(name))
        if found:
            return found
    return None


@contextlib.contextmanager
def atomic_directory(path):
    """Yields an empty temporary sibling directory to fill; when the block exits cleanly it is
    fsynced and swapped in as `path` by rename. A previous `path` stays in place until the new
    one is complete and is removed only after the swap; on an error the temporary is removed
    and `path` is as it was. OSErrors name the file they were writing."""
    parent, name = os.path.split(os.path.abspath(path))
    with _hidden_sibling(path, path) as tmp:
        try:
            yield tmp
        except OSError as e:  # name the file as it will be, not the temporary
            raise _renamed(e, tmp, path) from None
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700 directories
        _fsync_tree(tmp, path)
        previous = os.path.join(parent, f".{name}{_PREVIOUS}")
        shutil.rmtree(previous, ignore_errors=True)
        try:
            if os.path.lexists(path):
                os.rename(path, previous)
            os.rename(tmp, path)
            _fsync_directory(parent)
        except OSError as e:
            if os.path.lexists(previous) and not os.path.lexists(path):
                os.rename(previous, path)
            raise write_error(e, path) from None
        shutil.rmtree(previous, ignore_errors=True)


def _renamed(error, tmp, path):
    """`error` with the temporary directory `tmp` in its message or file name read as `path`."""
    if error.filename and tmp in str(error.filename):
        return write_error(error, str(error.filename).replace(tmp, path))
    if tmp not in str(error):
        return error
    converted = OSError(str(error).replace(tmp, path))
    converted.errno = error.errno
    return converted


def copy_tree(source, destination, ignore=()):
    """Copies the files under `source` into `destination` (created; names in `ignore` are
    skipped at every level). An OSError names the file being written, not a list of them."""
    for root, dirs, names in os.walk(source):
        dirs[:] = sorted(d for d in dirs if d not in ignore)
        target = os.path.normpath(os.path.join(destination, os.path.relpath(root, source)))
        try:
            os.makedirs(target, exist_ok=True)
        except OSError as e:
            raise write_error(e, target) from None
        for name in sorted(n for n in names if n not in ignore):
            source_file = os.path.join(root, name)
            try:
                shutil.copy2(source_file, os.path.join(target, name))
            except OSError as e:
                if e.filename == source_file:
                    raise  # reading, not writing
                raise write_error(e, os.path.join(target, name)) from None


def remove_temporaries(directory):
    """Removes the temporaries (`is_temporary`) a killed writer left under `directory` (at
    any depth); call it only while holding the directory's lock. A directory left half
    swapped (the old one moved aside, the new one not yet in) gets its old one back."""
    for root, dirs, names in os.walk(directory):
        for name in sorted(dirs + names):
            path = os.path.join(root, name)
            if name.endswith(_PREVIOUS):
                original = os.path.join(root, name[1:-len(_PREVIOUS)])
                if not os.path.lexists(original):
                    with contextlib.suppress(OSError):
                        os.rename(path, original)
                    continue
            if not is_temporary(name):
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.remove(path)
        dirs[:] = [d for d in dirs if os.path.isdir(os.path.join(root, d))]


def read_json(path, what="file"):
    """Parsed JSON of `path`, strictly (NaN / Infinity refused, as `write_json` never writes
    them); FileNotFoundError / ValueError naming the file otherwise (invalid UTF-8: its line)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {what} at {path}")
    return text_files.strict_json(text_files.read_utf8(path, path), path)


def sha256_of(path, chunk_bytes=1 << 20):
    """Hex sha256 of the file at `path`, read in chunks (weights files are large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_bytes), b""):
            digest.update(block)
    return digest.hexdigest()


def _umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _fsync_tree(directory, path):
    """fsyncs every file and directory under `directory` (errors name `path`'s file)."""
    for root, _, names in os.walk(directory):
        for name in names:
            file_path = os.path.join(root, name)
            try:
                fd = os.open(file_path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as e:
                raise write_error(e, os.path.join(path, os.path.relpath(file_path,
                                                                        directory))) from None
        _fsync_directory(root)


def _fsync_directory(directory):
    """Puts a rename in `directory` on disk (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the rename itself stands
    finally:
        os.close(fd)
