"""One writer per output directory: `DIRECTORY/.lock`, held with `fcntl.flock` (exclusive,
non-blocking) while a tool writes the directory. Needs no TensorFlow.

    with locks.output_lock(out_dir, "mobile.export", "--output_dir"):
        ...   # a second writer gets one line: "another mobile.export is writing OUT (pid N) ..."

The lock file stays empty (the holder's process id in the message comes from /proc/locks
where there is one); the kernel releases the lock when the holder exits, however it exits (a
SIGKILL included), so a lock is never stale.
Temporaries a killed writer left in the directory (`files.is_temporary`) are removed once the
lock is held: no one else can be writing them.
"""

import contextlib
import errno
import fcntl
import os

from dynabert_tf.core import files, layout

_BUSY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)


@contextlib.contextmanager
def output_lock(directory, what, flag="--output_dir"):
    """Creates `directory` if needed and holds its lock for the block. `what` names the writer
    ("mobile.export", "run"), `flag` the option that chose the directory. RuntimeError with
    one line if another process holds it (or it cannot be locked at all)."""
    lock = acquire(directory, what, flag)
    try:
        yield
    finally:
        lock.close()  # closing the file releases the lock


def acquire(directory, what, flag="--output_dir"):
    """The open, locked lock file of `directory` (close it to release); see `output_lock`."""
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise RuntimeError(f"{flag} {directory} cannot be made: {e.strerror}") from None
    path = os.path.join(directory, layout.LOCK)
    try:
        lock = open(path, "a")
    except OSError as e:
        raise RuntimeError(f"cannot lock {path}: {e.strerror}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        holder = _holder(lock)
        lock.close()
        if e.errno in _BUSY:
            raise RuntimeError(f"another {what} is writing {directory} ({holder}holds {path}); "
                               f"wait for it to finish or use another {flag}") from None
        raise RuntimeError(f"cannot lock {path}: {e.strerror}") from None
    files.remove_temporaries(directory)
    return lock


def holder(directory):
    """The process id holding `directory`'s lock, or None (free, or no /proc/locks to ask);
    asks without taking the lock."""
    try:
        with open(os.path.join(directory, layout.LOCK)) as lock:
            found = _holder(lock)
    except OSError:
        return None
    return int(found.split()[1]) if found else None


def _holder(lock):
    """'pid N ' of the process holding `lock`'s flock (from /proc/locks), or ''."""
    try:
        status = os.fstat(lock.fileno())
        with open("/proc/locks") as f:
            table = f.read()
    except OSError:
        return ""
    device = f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino}"
    for line in table.splitlines():  # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:2146728 0 EOF"
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == device:
            return f"pid {fields[4]} "
    return ""
