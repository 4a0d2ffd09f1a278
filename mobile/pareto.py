"""OUT/pareto.png: dev metric vs latency and vs file size for every cell (the paper's Fig. 3).

Without dev metrics (an untrained or unevaluated model) the panels show latency vs FLOPs and
size vs parameters instead, which is what the cost side of the trade-off looks like.

`searched` adds other sub-networks (`mobile.search`'s per-layer configurations), entries of
the same form as the manifest's, drawn as black stars labelled by their `label`; `budgets_ms`
draws each latency budget as a dotted line.
"""

from mobile import selection


def default_threads(entries):
    """The thread count an app would use: among those every timed cell has (an export
    benchmarked at 2 threads after 1 may lack some cells at 2), the one of the lowest total
    latency; 1 when nothing is timed."""
    timed = sorted({int(t) for e in entries for t in (e.get("latency_ms") or {})})
    timed_entries = [e for e in entries if e.get("latency_ms")]
    complete = [t for t in timed
                if all(selection.latency_of(e, t) is not None for e in timed_entries)]
    total = lambda t: sum(selection.latency_of(e, t) or 0.0 for e in entries)
    return min(complete or timed, key=total) if timed else 1


def plot_pareto(manifest, path, threads=None, searched=(), budgets_ms=(), metric_label=None):
    """Writes the figure to `path`; `threads` picks the latency column (default: the thread
    count with the lowest total latency, i.e. the setting an app would use).
    `metric_label`: the metric axis' label (default "dev {metric}")."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = manifest.get("cells", [])
    searched = list(searched)
    if threads is None:
        threads = default_threads(entries)
    metric = selection.primary_metric(manifest)
    have_metric = metric and any(selection.metric_of(e, metric) is not None for e in entries)

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for entry in [*entries, *searched]:
        latency = selection.latency_of(entry, threads)
        size_mb = entry["bytes"] / 1e6
        if have_metric:
            y = selection.metric_of(entry, metric)
            if y is None:
                continue
            points = ((left, latency, y), (right, size_mb, y))
        else:
            points = ((left, latency, entry["flops"] / 1e9),
                      (right, size_mb, entry["params"] / 1e6))
        for axis, x, y in points:
            if x is None:
                continue
            if "width_mult" in entry:
                axis.scatter(x, y, color=f"C{int(round(4 * (1 - entry['width_mult'])))}",
                             marker={1.0: "o", 0.75: "s", 0.5: "^"}.get(entry["depth_mult"],
                                                                         "x"))
            else:
                axis.scatter(x, y, color="black", marker="*", s=90, zorder=3)
            axis.annotate(entry.get("label", entry["cell"]), (x, y), fontsize=7, xytext=(3, 3),
                          textcoords="offset points")
    for budget in budgets_ms:
        left.axvline(budget, color="gray", linestyle=":", linewidth=1)
    from matplotlib.lines import Line2D
    widths = sorted({e["width_mult"] for e in entries}, reverse=True)
    depths = sorted({e["depth_mult"] for e in entries}, reverse=True)
    handles = [Line2D([], [], color=f"C{int(round(4 * (1 - w)))}", marker="o", linestyle="",
                      label=f"m_w {w:.2f}") for w in widths]
    handles += [Line2D([], [], color="gray", linestyle="",
                       marker={1.0: "o", 0.75: "s", 0.5: "^"}.get(d, "x"), label=f"m_d {d:.2f}")
                for d in depths]
    if searched:
        handles.append(Line2D([], [], color="black", marker="*", linestyle="",
                              label="searched"))
    right.legend(handles=handles, fontsize=7, loc="best")
    label = metric_label or f"dev {metric}"
    ylabel_left = label if have_metric else "GFLOPs"
    ylabel_right = label if have_metric else "parameters (M)"
    left.set(xlabel=f"median latency (ms), {threads} thread(s)", ylabel=ylabel_left)
    right.set(xlabel=f"{manifest.get('quantization', '')} .tflite size (MB)", ylabel=ylabel_right)
    for axis in (left, right):
        axis.grid(alpha=0.3)
    task = manifest.get("task") or "model"
    what = "cells and searched sub-networks" if searched else "cells"
    fig.suptitle(f"DynaBERT {what} on LiteRT: {task}, seq {manifest.get('seq_len')}"
                 + ("" if have_metric else " (no dev metrics: cost only)"))
    fig.tight_layout()
    from dynabert_tf import plots

    plots.save_figure(fig, path, dpi=120)
    return path
