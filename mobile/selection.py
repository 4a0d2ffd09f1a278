"""Pick the deployable cell: best dev metric under a latency / size budget.

Dependency-free (no TensorFlow), for an app's build script:

    import json
    from mobile.selection import select_cell
    manifest = json.load(open("OUT/manifest.json"))
    entry = select_cell(manifest, max_latency_ms=15, max_bytes=20_000_000, threads=2,
                        directory="OUT")
    tflite_file = entry["file"]            # relative to the manifest's directory
    signature = entry.get("signature")     # elastic export: the signature to run in that file

Latencies come from `python -m mobile.benchmark` (entry["latency_ms"][str(threads)]["median"]);
metrics from the training run's eval_grid.json (entry["metrics"][manifest["primary_metric"]]).

A manifest with a non-finite or negative size, latency or FLOPs, or a non-finite metric, is
refused (`check_manifest`, one line naming the cell and the field): a NaN never wins. With
`directory`, the chosen cell's file is checked against its entry (`mobile.manifest_check`:
present, same size and sha256) and a mismatch is refused rather than skipped, since a
manifest that lies about one file cannot be trusted to rank the others.
"""

import math

from mobile import manifest_check


class SelectionError(ValueError):
    """No cell fits, or the manifest lacks what the budget needs; the message says which."""


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite(value):
    return _is_number(value) and math.isfinite(value)


def _check_value(where, field, value, non_negative=False):
    """SelectionError unless `value` is finite (and >= 0 for sizes, FLOPs and latencies)."""
    if not _is_finite(value):
        raise SelectionError(f"{where}: {field} is {value!r}, not a finite number")
    if non_negative and value < 0:
        raise SelectionError(f"{where}: {field} is {value!r}, below zero")


def check_manifest(manifest):
    """SelectionError naming the first field of the wrong type, or a non-finite or negative
    number, in a manifest's cells."""
    if not isinstance(manifest, dict):
        raise SelectionError(f"the manifest is a JSON {type(manifest).__name__}, not an object")
    if not isinstance(manifest.get("primary_metric"), (str, type(None))):
        raise SelectionError("primary_metric must be text")
    cells = manifest.get("cells")
    if not isinstance(cells, (list, type(None))):
        raise SelectionError(f"'cells' must be a list, got {type(cells).__name__}")
    for i, entry in enumerate(cells or []):
        where = f"cells[{i}]"
        if not isinstance(entry, dict):
            raise SelectionError(f"{where} must be an object")
        for key in ("cell", "file"):
            if not isinstance(entry.get(key), str):
                raise SelectionError(f"{where} needs a text {key!r}")
        if not isinstance(entry.get("signature"), (str, type(None))):
            raise SelectionError(f"{where} ({entry['cell']}): 'signature' must be text")
        named = f"{where} ({entry['cell']})"
        if not _is_number(entry.get("bytes")):
            raise SelectionError(f"{named} needs a byte count 'bytes'")
        _check_value(named, "'bytes'", entry["bytes"], non_negative=True)
        if not (entry.get("flops") is None or _is_number(entry["flops"])):
            raise SelectionError(f"{named}: 'flops' must be a number")
        if entry.get("flops") is not None:
            _check_value(named, "'flops'", entry["flops"], non_negative=True)
        metrics = entry.get("metrics") or {}
        if not isinstance(metrics, dict) or not all(
                value is None or _is_number(value) for value in metrics.values()):
            raise SelectionError(f"{named}: 'metrics' must map names to numbers")
        for name, value in metrics.items():
            if value is not None:  # negative is fine (Pearson, MCC); NaN or inf is not
                _check_value(named, f"metrics[{name!r}]", value)
        latency = entry.get("latency_ms") or {}
        if not isinstance(latency, dict) or not all(
                isinstance(timing, dict) and _is_number(timing.get("median"))
                for timing in latency.values()):
            raise SelectionError(f"{named}: 'latency_ms' must map thread counts to timings "
                                 f"with a numeric 'median'")
        for threads, timing in latency.items():
            _check_value(named, f"latency_ms[{threads!r}]['median']", timing["median"],
                         non_negative=True)


def primary_metric(manifest):
    """The manifest's primary metric, else the only metric every entry has, else None."""
    if manifest.get("primary_metric"):
        return manifest["primary_metric"]
    names = None
    for entry in manifest.get("cells", []):
        keys = set(entry.get("metrics") or {})
        names = keys if names is None else names & keys
    return next(iter(names)) if names and len(names) == 1 else None


def latency_of(entry, threads):
    """Median latency in ms at `threads` threads, or None if not benchmarked."""
    timing = (entry.get("latency_ms") or {}).get(str(threads)) or {}
    return timing.get("median")


def metric_of(entry, metric):
    value = (entry.get("metrics") or {}).get(metric) if metric else None
    return None if value is None else float(value)


def select_cell(manifest, max_latency_ms=None, max_bytes=None, threads=1, metric=None,
                rank_by_flops_without_metrics=False, directory=None):
    """The entry with the best `metric` among cells within the budget.

    Args:
      manifest: the dict of OUT/manifest.json.
      max_latency_ms: budget on the median latency at `threads` threads (None: no budget).
      max_bytes: budget on the file size (None: no budget).
      threads: which benchmarked thread count the latency budget refers to.
      metric: defaults to the manifest's primary metric (higher is better).
      rank_by_flops_without_metrics: when no cell has the metric, rank by FLOPs (the larger
        cell is usually the more accurate) instead of raising.
      directory: the manifest's directory: the chosen cell's file must be there and be the
        file its entry describes (size and sha256), else SelectionError (None: not checked).
    Ties go to the lower latency, then the smaller file.
    Raises:
      SelectionError: a malformed manifest (`check_manifest`), no entries, latencies missing
        for `threads`, metrics missing, no cell fits (the message names the fastest /
        smallest cell), or the chosen cell's file missing or not the one described.
    """
    check_manifest(manifest)
    entries = list(manifest.get("cells") or [])
    if not entries:
        raise SelectionError("the manifest lists no cells")
    metric = metric or primary_metric(manifest)
    have_metric = [e for e in entries if metric_of(e, metric) is not None]
    if not have_metric and not rank_by_flops_without_metrics:
        raise SelectionError(f"no dev metric{f' {metric!r}' if metric else ''} in the "
                             "manifest (export from a workdir with eval_grid.json)")
    if max_latency_ms is not None:
        timed = [e for e in entries if latency_of(e, threads) is not None]
        if not timed:
            raise SelectionError(f"the manifest has no latencies for {threads} thread(s); run "
                                 f"python -m mobile.benchmark --threads={threads} first")
        fits = [e for e in timed if latency_of(e, threads) <= max_latency_ms]
        if not fits:
            fastest = min(timed, key=lambda e: latency_of(e, threads))
            raise SelectionError(
                f"no cell runs within {max_latency_ms:g} ms at {threads} thread(s); the "
                f"fastest is {fastest['cell']} at {latency_of(fastest, threads):.2f} ms")
    else:
        fits = entries
    if max_bytes is not None:
        small = [e for e in fits if e["bytes"] <= max_bytes]
        if not small:
            smallest = min(fits, key=lambda e: e["bytes"])
            scope = " within the latency budget" if max_latency_ms is not None else ""
            raise SelectionError(f"no cell{scope} fits in {max_bytes:,} bytes; the smallest is "
                                 f"{smallest['cell']} at {smallest['bytes']:,} bytes")
        fits = small
    if have_metric:
        ranked = [e for e in fits if metric_of(e, metric) is not None]
        if not ranked:
            raise SelectionError(f"no cell within the budget has a {metric!r} value")
        score = lambda e: metric_of(e, metric)
    else:
        ranked, score = fits, lambda e: float(e.get("flops") or 0)
    def latency(e):
        value = latency_of(e, threads)
        return float("inf") if value is None else value

    chosen = min(ranked, key=lambda e: (-score(e), latency(e), e["bytes"]))
    if directory is not None:
        manifest_check.check_files(directory, [chosen], SelectionError)
    return chosen
