"""The width axis of a sliceable layer's weights, and the three things done along it.

A sliceable layer declares, next to its weights, which axis of each weight holds its heads or
FFN neurons (`width_axes`). This project stores those axes first, so that

  * slicing (call-time width) keeps a leading block: a view, no copy per call;
  * permuting (rewiring) reorders that axis;
  * copying out (extraction of a standalone cell) keeps the leading block.

All three read the same table, so a layout change is written once.
"""

import numpy as np
from keras import ops


def sliced(layer, name, count):
    """Weight `name` of `layer` keeping its first `count` heads / neurons along the axis
    `layer.width_axes` names (axis 0 in this project's layout: a view, no copy). All of them:
    the weight itself, so that its gradient is not padded back to full size."""
    axis = layer.width_axes[name]
    variable = getattr(layer, name)
    if count == variable.shape[axis]:
        return ops.convert_to_tensor(variable)
    return variable[(slice(None),) * axis + (slice(0, count),)]


def permute(layer, order):
    """Reorders the width axis of every weight in `layer.width_axes` by `order` (in place)."""
    for name, axis in layer.width_axes.items():
        variable = getattr(layer, name)
        variable.assign(np.take(np.asarray(variable), order, axis=axis))


def narrowed(layer, count):
    """{weight name: numpy array} of `layer` keeping the first `count` heads or neurons; the
    weights outside `width_axes` are returned whole."""
    values = {}
    for variable in layer.weights:
        name = variable.path.split("/")[-1]
        value = np.asarray(variable)
        axis = layer.width_axes.get(name)
        values[name] = value if axis is None else np.take(value, np.arange(count), axis=axis)
    return values


def assign_all(layer, values):
    """Assigns `values` ({weight name: array}, as `narrowed` returns) to `layer`'s weights."""
    for variable in layer.weights:
        name = variable.path.split("/")[-1]
        value = values[name]
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(f"{variable.path}: got shape {value.shape}, expected "
                             f"{tuple(variable.shape)}")
        variable.assign(value)
