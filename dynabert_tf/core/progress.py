"""The one progress-bar helper: tqdm on stderr, off when disabled, when tqdm is missing, or
when stderr is not a terminal (tqdm's `disable=None`)."""

import sys


def bar(total, enabled=True, desc="", unit="it"):
    """A tqdm bar of `total` steps, or None. Use `advance(bar)` / `close(bar)` with either."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=None)


def wrap(items, enabled=True, desc="", unit="it"):
    """`items`, iterated under a bar of len(items) steps when a bar can be shown."""
    items = list(items)
    progress = bar(len(items), enabled, desc, unit)
    for item in items:
        yield item
        advance(progress)
    close(progress)


def advance(progress, steps=1):
    if progress is not None:
        progress.update(steps)


def close(progress):
    if progress is not None:
        progress.close()
