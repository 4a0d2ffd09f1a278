"""How the command-line tools report a failure: one line naming the problem, the traceback
only with --verbose. Needs no TensorFlow.

    with errors.one_line_errors(verbose=flags.verbose):
        main()

Inside the block a SIGTERM removes the temporaries the tool is writing
(`files.remove_active_temporaries`: partial files, scratch SavedModels) and ends it with one
line and status 143 (128 + SIGTERM); files already finished stay, locks go with the process.
The handler raises nothing: an exception thrown into TensorFlow's C++ callbacks comes out as
another error. A tool that handles SIGTERM itself (a server's drain) installs its own
handler inside the block.
"""

import contextlib
import os
import re
import signal
import sys
import threading

from dynabert_tf.core import files

# Errors whose message is written for the user: shown as they are. Any other type is named in
# front of its message (ZeroDivisionError: division by zero), as it points at a bug.
_USER_ERRORS = (ValueError, OSError, RuntimeError)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Keras reports an error raised inside a layer's call() as "Exception encountered when
# calling X.call()." followed by the original message and the call's arguments.
_KERAS_PREFIX = "Exception encountered when calling"


def one_line(error):
    """`error` as one line: its message's first informative line (and its type, for a type
    that is not a user error)."""
    lines = [line.strip() for line in _ANSI.sub("", str(error)).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith(_KERAS_PREFIX):
        lines = lines[1:]
    message = lines[0] if lines else ""
    if not message or not isinstance(error, _USER_ERRORS):
        message = (f"{type(error).__name__}: {message or 'no message'} (--verbose shows the "
                   f"traceback)")
    return message


TERMINATED_STATUS = 128 + signal.SIGTERM
TERMINATED = ("stopped by SIGTERM; the files it had finished stay, its partial ones are "
              "removed, a re-run finishes the rest")


def _terminate(signum, frame):
    files.remove_active_temporaries()
    sys.stdout.flush()
    print(f"error: {TERMINATED}", file=sys.stderr, flush=True)
    os._exit(TERMINATED_STATUS)


def fail(message, code=1):
    """`error: message` on stderr, then exit with `code`."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


@contextlib.contextmanager
def one_line_errors(verbose=False):
    """Turns any exception of the block into `error: <one line>` and exit status 1 (a SIGTERM:
    status 143); with `verbose` the exception propagates with its traceback."""
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        yield
    except Exception as error:  # noqa: BLE001 - every failure gets one line
        if verbose:
            raise
        fail(one_line(error))
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
