"""A linear latency model of per-layer sub-networks, fitted on LiteRT measurements.

A configuration (`elastic.layerwise.LayerwiseConfig`: kept layers, heads and FFN neurons
per kept layer) is described by four features,

    [1, kept layers, sum of kept heads, sum of kept neurons]

and its latency (ms) is predicted as their dot product with four coefficients:

    latency = fixed + per_layer * layers + per_head * sum(heads) + per_neuron * sum(neurons)

a fixed cost (embeddings, pooler, head, interpreter overhead), a per-layer constant
(LayerNorms, residual adds, activation quantization: what does not shrink with width) and
per-layer terms linear in heads and neurons (at a fixed sequence length, a head's projections
and its scores / context cost the same in every layer). The coefficients are fitted by
non-negative least squares (`scipy.optimize.nnls`), so no term can be a negative cost.
Needs numpy and scipy only (no TensorFlow).

    model = latency_model.fit(configs, latencies_ms)
    model.predict(configs)                        # float64 [n], ms
    latency_model.relative_errors(model, held_out, measured)["max"]
    model.save(path); latency_model.load(path)
"""

import dataclasses
import json

import numpy as np

FEATURES = ("fixed", "layers", "heads", "neurons")


def features(configs):
    """float64 [n, 4]: [1, kept layers, sum of heads, sum of neurons] per configuration.

    Args:
      configs: objects with `layers`, `heads` and `neurons` sequences (one entry per kept
        layer), e.g. `LayerwiseConfig`s.
    """
    rows = [[1.0, len(c.layers), float(sum(c.heads)), float(sum(c.neurons))] for c in configs]
    return np.asarray(rows, np.float64).reshape(-1, len(FEATURES))


@dataclasses.dataclass(frozen=True)
class LatencyModel:
    """Predicted latency (ms) = features(config) . coefficients.

    coefficients: ms for (fixed, per kept layer, per kept head, per kept neuron).
    info: what the measurements were (threads, seq_len, quantization, load, ...).
    """

    coefficients: tuple
    info: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        values = tuple(float(c) for c in self.coefficients)
        if len(values) != len(FEATURES) or not all(np.isfinite(values)):
            raise ValueError(f"a latency model needs {len(FEATURES)} finite coefficients "
                             f"({', '.join(FEATURES)}), got {self.coefficients!r}")
        object.__setattr__(self, "coefficients", values)

    def predict(self, configs):
        """float64 [n]: predicted latency (ms) of each configuration."""
        return features(configs) @ np.asarray(self.coefficients)

    def predict_one(self, config):
        return float(self.predict([config])[0])

    def to_dict(self):
        return {"features": list(FEATURES), "coefficients_ms": dict(zip(FEATURES,
                                                                        self.coefficients)),
                "info": dict(self.info)}

    @classmethod
    def from_dict(cls, value):
        try:
            coefficients = value["coefficients_ms"]
            return cls(tuple(coefficients[name] for name in FEATURES), value.get("info") or {})
        except (KeyError, TypeError):
            raise ValueError(f"a latency model needs 'coefficients_ms' with "
                             f"{', '.join(FEATURES)}") from None

    def save(self, path):
        from dynabert_tf.core import files

        files.write_json(path, self.to_dict())

    def describe(self):
        fixed, layer, head, neuron = self.coefficients
        return (f"latency ≈ {fixed:.3f} ms + per kept layer ({layer:.4f} ms + {head:.4f} ms "
                f"× heads + {neuron * 1e3:.4f} µs × neurons)")


def load(path):
    with open(path) as f:
        return LatencyModel.from_dict(json.load(f))


def fit(configs, latencies_ms, nonnegative=True, info=None):
    """The `LatencyModel` fitted to measured latencies.

    Args:
      configs: the measured configurations (see `features`).
      latencies_ms: their latencies, [n] ms.
      nonnegative: non-negative least squares (`scipy.optimize.nnls`); else plain least
        squares (`numpy.linalg.lstsq`).
    Raises:
      ValueError: fewer configurations than coefficients, mismatched lengths, or latencies
        that are not finite and positive.
    """
    x = features(configs)
    y = np.asarray(latencies_ms, np.float64).reshape(-1)
    if len(y) != len(x):
        raise ValueError(f"{len(x)} configurations but {len(y)} latencies")
    if len(y) < len(FEATURES):
        raise ValueError(f"fitting {len(FEATURES)} coefficients needs at least "
                         f"{len(FEATURES)} measured configurations, got {len(y)}")
    if not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise ValueError("latencies must be finite and positive")
    # Relative error is what matters (a 0.9 ms and a 4.6 ms cell alike), so each row is
    # weighted by 1 / latency: the fit minimises the squared relative residuals.
    weights = 1.0 / y
    if nonnegative:
        from scipy.optimize import nnls

        coefficients, _ = nnls(x * weights[:, None], y * weights)
    else:
        coefficients = np.linalg.lstsq(x * weights[:, None], y * weights, rcond=None)[0]
    return LatencyModel(tuple(coefficients), dict(info or {}, fitted_on=len(y)))


def relative_errors(model, configs, latencies_ms):
    """{"mean", "max", "errors"}: |predicted - measured| / measured over `configs`."""
    measured = np.asarray(latencies_ms, np.float64).reshape(-1)
    errors = np.abs(model.predict(configs) - measured) / measured
    return {"mean": float(errors.mean()), "max": float(errors.max()),
            "errors": [float(e) for e in errors]}


def split_held_out(count, held_out_fraction=0.3, seed=0, always_train=()):
    """(train indices, held-out indices) of `count` measurements, a seeded random split;
    the indices in `always_train` (e.g. the grid cells) are never held out."""
    if not 0 < held_out_fraction < 1:
        raise ValueError(f"held_out_fraction must be in (0, 1), got {held_out_fraction}")
    fixed = sorted(set(always_train))
    rest = [i for i in np.random.default_rng(seed).permutation(count) if i not in fixed]
    held = sorted(int(i) for i in rest[:int(round(held_out_fraction * count))])
    return [i for i in range(count) if i not in held], held
