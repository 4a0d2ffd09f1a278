"""Figures people would rather look at than read: the grid heat-map, attention maps."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dynabert_tf.core import files  # noqa: E402
from dynabert_tf.core import grid as grid_lib  # noqa: E402


def grid_heatmap(grid, metric, path, key="metrics", title=None):
    """Heat-map of one metric over width (rows) x depth (columns), annotated; writes `path`."""
    cells = grid["cells"]
    widths = sorted({c["width_mult"] for c in cells.values()}, reverse=True)
    depths = sorted({c["depth_mult"] for c in cells.values()}, reverse=True)
    values = np.full((len(widths), len(depths)), np.nan)
    for i, w in enumerate(widths):
        for j, d in enumerate(depths):
            cell = cells.get(grid_lib.cell_name(w, d))
            if cell and key in cell:
                values[i, j] = 100 * cell[key][metric]
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(depths), 1.2 + 0.8 * len(widths)))
    image = ax.imshow(values, cmap="viridis", aspect="auto")
    for i in range(len(widths)):
        for j in range(len(depths)):
            if not np.isnan(values[i, j]):
                ax.text(j, i, f"{values[i, j]:.1f}", ha="center", va="center", color="white")
    ax.set_xticks(range(len(depths)), [f"{d:g}" for d in depths])
    ax.set_yticks(range(len(widths)), [f"{w:g}" for w in widths])
    ax.set_xlabel("depth multiplier m_d")
    ax.set_ylabel("width multiplier m_w")
    ax.set_title(title or f"{grid.get('task', '')} {metric} ({key.replace('_', ' ')})")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    return path


def attention_pairs(panels, tokens, path, title=None):
    """Teacher beside student for each panel (`attention_maps.Panel`): one row per panel,
    token labels on both axes, one colour scale per row (0 to the row's largest
    probability). A panel without a student matrix shows its note instead. Writes `path`.

    Returns:
      [(teacher matrix, student matrix or None)] as drawn, one per row.
    """
    size = len(tokens)
    side = min(9.0, 1.5 + 0.22 * size)
    font = max(4, min(9, int(160 / max(size, 1))))
    # A fixed layout: constrained/tight layout would measure every token label (seconds).
    fig, axes = plt.subplots(len(panels), 2, figsize=(2 * side + 1.5, side * len(panels) + 0.6),
                             squeeze=False, gridspec_kw=dict(left=0.12, right=0.9, bottom=0.08,
                                                             top=0.92, wspace=0.5, hspace=0.5))
    drawn = []
    for row, panel in zip(axes, panels):
        top = max(float(np.max(panel.teacher)),
                  float(np.max(panel.student)) if panel.student is not None else 0.0)
        images = []
        for ax, who, matrix in ((row[0], "teacher", panel.teacher),
                                (row[1], "student", panel.student)):
            ax.set_title(f"{who}: layer {panel.layer}, head {panel.head}", fontsize=9)
            if matrix is None:
                ax.text(0.5, 0.5, panel.note, ha="center", va="center", wrap=True,
                        fontsize=8, transform=ax.transAxes)
                ax.set_axis_off()
                images.append(None)
                continue
            image = ax.imshow(matrix, cmap="viridis", vmin=0.0, vmax=top)
            ax.set_xticks(range(size), tokens, rotation=90, fontsize=font)
            ax.set_yticks(range(size), tokens, fontsize=font)
            ax.set_xlabel("attended token", fontsize=8)
            ax.set_ylabel("attending token", fontsize=8)
            images.append(np.asarray(image.get_array()))
        fig.colorbar(image, ax=list(row), shrink=0.8, pad=0.02)
        drawn.append(tuple(images))
    if title:
        fig.suptitle(title)
    save_figure(fig, path, dpi=80)
    return drawn


def save_figure(fig, path, dpi):
    """Writes `fig` to `path` atomically (its format from the extension) and closes it."""
    with files.atomic_open(path) as f:
        fig.savefig(f, dpi=dpi, format=os.path.splitext(path)[1][1:] or "png")
    plt.close(fig)
