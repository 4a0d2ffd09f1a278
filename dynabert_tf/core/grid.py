"""The width x depth grid rules, written once (no TensorFlow import).

* width: `num_kept(total, width_mult)` heads / FFN neurons are kept, the leading ones;
* depth: `kept_layers(num_layers, depth_mult)` lists the layer indices that run;
* hidden size (optional third axis, off by default): `num_kept(hidden_size, hidden_mult)`
  leading units of the residual stream are kept.

A cell is a tuple (width_mult, depth_mult), or (width_mult, depth_mult, hidden_mult) when
hidden_mult != 1 (`cell_key`): with the hidden axis off every cell, name and file is the
two-multiplier one. `cell_mults` reads either form as three multipliers.
"""

import math
import numbers

WIDTH_MULTS = (1.0, 0.75, 0.5, 0.25)
DEPTH_MULTS = (1.0, 0.75, 0.5)
HIDDEN_MULTS = (1.0,)


def check_multiplier(name, value):
    """`value` as a Python float; ValueError unless it is a number (a Python or NumPy scalar)
    with 0 < value <= 1. A tensor or variable is refused for its type: a multiplier picks
    how many heads, neurons and layers run, which is fixed when the graph is built."""
    if not isinstance(value, numbers.Real):
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            raise ValueError(f"{name} must be a Python float (got {_type_name(value)}); width "
                             f"and depth are chosen when the graph is built")
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")
    if not 0.0 < float(value) <= 1.0:
        shown = value if type(value) in (int, float, bool) else float(value)
        raise ValueError(f"{name} must be in (0, 1], got {shown!r}")
    return float(value)


def _type_name(value):
    """'a tf.Tensor', 'a tf.Variable', 'a numpy.ndarray', ...: what a tensor-like value is."""
    kind = type(value)
    package = kind.__module__.split(".")[0]
    if package == "tensorflow":
        return "a tf.Variable" if "Variable" in kind.__name__ else "a tf.Tensor"
    return f"a {package}.{kind.__name__}"


def num_kept(total, width_mult):
    """Heads or FFN neurons kept at `width_mult`: round(m_w * total), halves up, at least 1."""
    width_mult = check_multiplier("width_mult", width_mult)
    return max(1, min(total, int(math.floor(width_mult * total + 0.5))))


def kept_layers(num_layers, depth_mult):
    """Indices of the layers that run at `depth_mult` ("every other" layer drop).

    The kept count is D = round(m_d * L) (Python rounding, halves to even, at least 1) and
    the kept layers are floor(i / m_d) for i < D, the rule of the DynaBERT paper's code.
    For 12 layers: 0.75 -> 0,1,2,4,5,6,8,9,10 and 0.5 -> 0,2,4,6,8,10.
    For 6 layers:  0.75 -> 0,1,2,4 (round(4.5) = 4) and 0.5 -> 0,2,4.
    """
    depth_mult = check_multiplier("depth_mult", depth_mult)
    depth = max(1, round(depth_mult * num_layers))
    return tuple(min(num_layers - 1, int(math.floor(i / depth_mult + 1e-9)))
                 for i in range(depth))


def cell_key(width_mult, depth_mult, hidden_mult=1.0):
    """The cell tuple: (width_mult, depth_mult), with hidden_mult appended when it is not 1."""
    if hidden_mult == 1.0:
        return (width_mult, depth_mult)
    return (width_mult, depth_mult, hidden_mult)


def cell_mults(cell):
    """(width_mult, depth_mult, hidden_mult) of a cell tuple of two or three multipliers."""
    if len(cell) not in (2, 3):
        raise ValueError(f"a cell is (width_mult, depth_mult[, hidden_mult]), got {cell!r}")
    return (*cell, 1.0) if len(cell) == 2 else tuple(cell)


def cell_name(width_mult, depth_mult, hidden_mult=1.0):
    """File/json name of a grid cell, e.g. `w0.50_d0.75`; `w0.50_d0.75_h0.75` when the
    hidden size is cut too."""
    name = f"w{width_mult:.2f}_d{depth_mult:.2f}"
    return name if hidden_mult == 1.0 else f"{name}_h{hidden_mult:.2f}"


def parse_cell_name(name):
    """Inverse of `cell_name`: 'w0.50_d0.75' -> (0.5, 0.75); 'w0.50_d0.75_h0.75' ->
    (0.5, 0.75, 0.75)."""
    try:
        parts = name.split("_")
        if len(parts) not in (2, 3) or [p[:1] for p in parts] != ["w", "d", "h"][:len(parts)]:
            raise ValueError
        mults = [float(part[1:]) for part in parts]
    except (ValueError, AttributeError):
        raise ValueError(f"bad cell name {name!r}; expected like 'w0.50_d0.75' or "
                         f"'w0.50_d0.75_h0.75'") from None
    return cell_key(*(check_multiplier(f"{axis}_mult", value) for axis, value in
                      zip(("width", "depth", "hidden"), mults)))


def grid(width_mults=WIDTH_MULTS, depth_mults=DEPTH_MULTS, hidden_mults=HIDDEN_MULTS):
    """All cells (`cell_key`), largest first: hidden-major, then depth, then width."""
    for value in (*width_mults, *depth_mults, *hidden_mults):
        check_multiplier("multiplier", value)
    return [cell_key(w, d, h) for h in sorted(hidden_mults, reverse=True)
            for d in sorted(depth_mults, reverse=True)
            for w in sorted(width_mults, reverse=True)]


def check_relation_heads(relation_heads, num_heads, head_dim, width_mults):
    """Raises ValueError unless `relation_heads` (MiniLM relation heads, R) divides the
    query/key/value columns, num_kept(num_heads, m_w) * head_dim, of every width."""
    if not isinstance(relation_heads, int) or isinstance(relation_heads, bool) \
            or relation_heads < 1:
        raise ValueError(f"relation_heads must be a positive integer, got {relation_heads!r}")
    for width_mult in width_mults:
        columns = num_kept(num_heads, width_mult) * head_dim
        if columns % relation_heads:
            raise ValueError(
                f"relation_heads {relation_heads} does not divide the {columns} query/key/value "
                f"columns at width {width_mult:g} ({num_kept(num_heads, width_mult)} heads of "
                f"{head_dim}); choose a divisor of every width's columns")
    return relation_heads
