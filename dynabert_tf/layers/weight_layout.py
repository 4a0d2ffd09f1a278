"""The width and hidden axes of a sliceable layer's weights, and the three things done along
them.

A sliceable layer declares, next to its weights, which axis of each weight holds its heads or
FFN neurons (`width_axes`) and which axes run over the hidden units of the residual stream
(`hidden_axes`, weight name -> tuple of axes; LayerNorm `gamma` / `beta` included). This
project stores the width axis first and keeps leading blocks, so that

  * slicing (call-time width / hidden size) keeps a leading block: a view, no copy per call;
  * permuting (rewiring) reorders an axis: heads / neurons per layer, hidden units everywhere;
  * copying out (extraction of a standalone cell) keeps the leading blocks.

All three read the same two tables, so a layout change is written once.
"""

import numpy as np
from keras import ops

# Hidden axes of a `keras.layers.Dense` on the residual stream: the pooler (hidden in, hidden
# out) and a task head (hidden in).
POOLER_HIDDEN_AXES = {"kernel": (0, 1), "bias": (0,)}
HEAD_HIDDEN_AXES = {"kernel": (0,)}


def _weight_name(variable):
    return variable.path.split("/")[-1]


def sliced(layer, name, count, hidden=None, hidden_axes=None):
    """Weight `name` of `layer` keeping its first `count` heads / neurons (None: all) along
    the axis `layer.width_axes` names (axis 0 in this project's layout: a view, no copy) and,
    when `hidden` is given, its first `hidden` units along each of its hidden axes
    (`hidden_axes`, default `layer.hidden_axes`). Nothing cut: the weight itself, so that
    its gradient is not padded back to full size."""
    variable = getattr(layer, name)
    index = [slice(None)] * len(variable.shape)
    axis = getattr(layer, "width_axes", {}).get(name)
    if axis is not None and count is not None and count < variable.shape[axis]:
        index[axis] = slice(0, count)
    if hidden_axes is None:
        hidden_axes = getattr(layer, "hidden_axes", {})
    for axis in hidden_axes.get(name, ()) if hidden is not None else ():
        if hidden < variable.shape[axis]:
            index[axis] = slice(0, hidden)
    if all(i == slice(None) for i in index):
        return ops.convert_to_tensor(variable)
    last = max(i for i, s in enumerate(index) if s != slice(None))
    return variable[tuple(index[:last + 1])]


def permute(layer, order):
    """Reorders the width axis of every weight in `layer.width_axes` by `order` (in place)."""
    for name, axis in layer.width_axes.items():
        variable = getattr(layer, name)
        variable.assign(np.take(np.asarray(variable), order, axis=axis))


def permute_hidden(layer, order, hidden_axes=None):
    """Reorders every hidden axis of `layer`'s weights (`hidden_axes`, default
    `layer.hidden_axes`; sub-layers' weights such as a LayerNorm's included) by `order`."""
    hidden_axes = layer.hidden_axes if hidden_axes is None else hidden_axes
    for variable in layer.weights:
        value = np.asarray(variable)
        for axis in hidden_axes.get(_weight_name(variable), ()):
            value = np.take(value, order, axis=axis)
        variable.assign(value)


def narrowed(layer, count=None, hidden=None, hidden_axes=None):
    """{weight name: numpy array} of `layer` keeping the first `count` heads or neurons (None:
    all) and the first `hidden` hidden units along its hidden axes (`hidden_axes`, default
    `layer.hidden_axes`; None: all); the other axes are returned whole."""
    width_axes = getattr(layer, "width_axes", {})
    if hidden_axes is None:
        hidden_axes = getattr(layer, "hidden_axes", {})
    values = {}
    for variable in layer.weights:
        name = _weight_name(variable)
        value = np.asarray(variable)
        if count is not None and name in width_axes:
            value = np.take(value, np.arange(count), axis=width_axes[name])
        for axis in hidden_axes.get(name, ()) if hidden is not None else ():
            value = np.take(value, np.arange(hidden), axis=axis)
        values[name] = value
    return values


def assign_all(layer, values):
    """Assigns `values` ({weight name: array}, as `narrowed` returns) to `layer`'s weights."""
    for variable in layer.weights:
        name = _weight_name(variable)
        value = values[name]
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(f"{variable.path}: got shape {value.shape}, expected "
                             f"{tuple(variable.shape)}")
        variable.assign(value)
