"""Figures people would rather look at than read: the grid heat-map."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dynabert_tf.elastic import grid as grid_lib  # noqa: E402


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
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
