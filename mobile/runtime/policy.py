"""Which cell serves the next request (or group of requests): pure Python, deterministic for a
given clock and history, no numpy.

The adaptive policy (SuperServe's SlackFit in spirit: the slack of the tightest request picks
the sub-network, re-decided for every group):

  predicted(c, L)  = s(now) * idle(c, L)        idle: the signature's idle latency, ms
  fits(c)          : for the group in deadline order, request j (bucket L_j, slack_j ms left)
                     finishes in time:  (1 + margin) * up(c) * sum_{i<=j} predicted(c, L_i)
                     <= slack_j, where up(c) = 1 + band(now) when c ranks above the cell
                     chosen last (an upgrade must clear a wider margin), else 1;
                     band(now) = hysteresis * 0.5 ** ((now - last switch) / band_half_life_s):
                     right after a switch an upgrade needs 15% more room, a band that fades
                     (half-life 1 s) so that a cell fitting with less room is reached again
                     once the load has been steady; a downgrade is never delayed
  choice           = the first cell that fits in the ranking (dev metric, highest first;
                     ties: the faster), among the cells allowed by the cap; if none fits,
                     the fastest allowed cell (`Decision.fits` False).

The slowdown s is the current load's factor on every signature's idle latency, estimated on
line from each served request's measured / idle latency ratio r:

  log s <- log s + a * (log r - log s),   a = alpha_up (0.3) if r > s else alpha_down (0.15)

(an exponentially weighted mean in the log domain: one 10x outlier moves s by 10^0.3 = 2x, not
3.7x; load is noticed within a few requests, and the policy comes back up more cautiously), r
clipped to [min_slowdown, max_slowdown]. Without requests, log s decays toward 0 (s toward 1,
the idle machine) with a half-life of `idle_half_life_s`, so a quiet device recovers.

Defaults: margin 0.15, hysteresis 0.15 (band half-life 1 s), idle half-life 2 s. `FixedPolicy`
serves one cell whatever the load (the baseline a benchmark compares with), with the same
interface and the same estimate.
"""

import dataclasses
import math
import time

MARGIN = 0.15
HYSTERESIS = 0.15
BAND_HALF_LIFE_S = 1.0
ALPHA_UP = 0.3
ALPHA_DOWN = 0.15
IDLE_HALF_LIFE_S = 2.0
MIN_SLOWDOWN = 0.25
MAX_SLOWDOWN = 100.0


@dataclasses.dataclass(frozen=True)
class Option:
    """A cell as the policy sees it.

    Args:
      name: the cell's name.
      metric: its dev metric, higher is better (None: unknown, ranked by `cost`).
      idle_ms: {input length: idle latency in ms} of its signatures.
      cost: its size for the cap (FLOPs; else its idle latency at the longest length).
    """
    name: str
    metric: float
    idle_ms: dict
    cost: float = None

    def idle_at(self, length):
        """Idle latency of the signature that takes `length` tokens (the smallest that holds
        them; the longest if none does)."""
        lengths = sorted(self.idle_ms)
        for candidate in lengths:
            if candidate >= length:
                return self.idle_ms[candidate]
        return self.idle_ms[lengths[-1]]

    @property
    def size(self):
        return self.cost if self.cost else self.idle_ms[max(self.idle_ms)]


@dataclasses.dataclass(frozen=True)
class Decision:
    """The cell for a group; `predicted_ms`: the group's predicted service time (no margin);
    `fits`: False when no allowed cell fits and the fastest was taken."""
    cell: str
    predicted_ms: float
    slowdown: float
    fits: bool


class SlowdownEstimator:
    """The current slowdown s (see the module doc); `clock()` returns seconds."""

    def __init__(self, clock=time.monotonic, alpha_up=ALPHA_UP, alpha_down=ALPHA_DOWN,
                 idle_half_life_s=IDLE_HALF_LIFE_S, min_slowdown=MIN_SLOWDOWN,
                 max_slowdown=MAX_SLOWDOWN):
        self.clock = clock
        self.alpha_up, self.alpha_down = alpha_up, alpha_down
        self.idle_half_life_s = idle_half_life_s
        self.min_slowdown, self.max_slowdown = min_slowdown, max_slowdown
        self._log_s, self._since = 0.0, None

    def _decayed(self, now):
        if self._since is None or not self.idle_half_life_s:
            return self._log_s
        quiet = max(0.0, now - self._since)
        return self._log_s * 0.5 ** (quiet / self.idle_half_life_s)

    def value(self, now=None):
        return math.exp(self._decayed(self.clock() if now is None else now))

    def observe(self, measured_ms, predicted_idle_ms, now=None):
        """One served request: its measured latency against its idle prediction."""
        if predicted_idle_ms <= 0 or measured_ms <= 0:
            return self.value(now)
        now = self.clock() if now is None else now
        ratio = min(max(measured_ms / predicted_idle_ms, self.min_slowdown), self.max_slowdown)
        log_s, log_r = self._decayed(now), math.log(ratio)
        alpha = self.alpha_up if log_r > log_s else self.alpha_down
        self._log_s, self._since = log_s + alpha * (log_r - log_s), now
        return math.exp(self._log_s)

    def reset(self):
        self._log_s, self._since = 0.0, None


class _Policy:
    """What both policies share: the options, the cap, the estimate, predictions."""

    def __init__(self, options, clock=time.monotonic, estimator=None, cap=None):
        options = list(options)
        if not options:
            raise ValueError("the policy needs at least one cell")
        for option in options:
            if not option.idle_ms or min(option.idle_ms.values()) <= 0:
                raise ValueError(f"cell {option.name} has no positive idle latency")
        self.options = {o.name: o for o in options}
        # Most accurate first; unknown metrics rank by size; ties: the faster first.
        self.ranking = sorted(options, key=lambda o: (
            -(o.metric if o.metric is not None else -math.inf), -o.size * (o.metric is None),
            o.idle_at(0), o.name))
        self.rank = {o.name: i for i, o in enumerate(self.ranking)}
        self.clock = clock
        self.estimator = estimator or SlowdownEstimator(clock)
        self.cap, self._allowed = None, self.ranking
        self.set_cap(cap)

    def set_cap(self, cell):
        """Never serve above `cell` (by size): e.g. a battery saver. None lifts the cap."""
        if cell is not None and cell not in self.options:
            raise ValueError(f"cap {cell!r} is not a cell; cells: {', '.join(self.options)}")
        self.cap = cell
        limit = self.options[cell].size if cell is not None else math.inf
        self._allowed = [o for o in self.ranking if o.size <= limit]

    def allowed(self):
        """The cells the cap allows, in ranking order."""
        return self._allowed

    def fastest(self, lengths=(0,)):
        return min(self.allowed(), key=lambda o: (sum(o.idle_at(n) for n in lengths), o.name))

    def slowdown(self, now=None):
        return self.estimator.value(now)

    def predict_ms(self, cell, lengths, now=None):
        """Predicted service time of requests of `lengths` on `cell` at the current load."""
        option = self.options[cell]
        return self.slowdown(now) * sum(option.idle_at(n) for n in lengths)

    def min_service_ms(self, lengths, now=None):
        """A lower bound on the service time of requests of `lengths` at the current load: the
        fastest allowed signature for each (admission control)."""
        allowed = self.allowed()
        return self.slowdown(now) * sum(min(o.idle_at(n) for o in allowed) for n in lengths)

    def observe(self, cell, length, measured_ms, now=None):
        """A served request: `cell`, its input length and its measured latency (ms)."""
        return self.estimator.observe(measured_ms, self.options[cell].idle_at(length), now)

    def choose(self, slack_ms, length, now=None):
        """The cell for one request with `slack_ms` left before its deadline."""
        return self.choose_group([(slack_ms, length)], now)


class AdaptivePolicy(_Policy):
    """The most accurate cell whose predicted latency fits the slack (module doc)."""

    def __init__(self, options, margin=MARGIN, hysteresis=HYSTERESIS, clock=time.monotonic,
                 estimator=None, cap=None, band_half_life_s=BAND_HALF_LIFE_S):
        super().__init__(options, clock, estimator, cap)
        self.margin, self.hysteresis = margin, hysteresis
        self.band_half_life_s = band_half_life_s
        self.current, self.switched_at = None, None  # the cell chosen last, and since when

    def band(self, now):
        """The extra room an upgrade needs now (module doc)."""
        if self.switched_at is None or not self.band_half_life_s:
            return self.hysteresis
        return self.hysteresis * 0.5 ** (max(0.0, now - self.switched_at) / self.band_half_life_s)

    def _switch(self, cell, now):
        if cell != self.current:
            self.current, self.switched_at = cell, now

    def choose_group(self, items, now=None):
        """The cell for a group served back to back; `items`: [(slack_ms, length)] in the
        order they will be served (earliest deadline first)."""
        now = self.clock() if now is None else now
        s = self.slowdown(now)
        allowed = self._allowed
        rank = self.rank
        current_rank = rank.get(self.current, -1)  # none yet: no upgrade band
        band = self.band(now)
        for option in allowed:
            factor = (1 + self.margin) * s
            if rank[option.name] < current_rank:
                factor *= 1 + band
            finish, ok = 0.0, True
            for slack, length in items:
                finish += option.idle_at(length)
                if factor * finish > slack:
                    ok = False
                    break
            if ok:
                self._switch(option.name, now)
                return Decision(option.name, s * finish, s, True)
        lengths = [n for _, n in items]
        option = self.fastest(lengths)
        self._switch(option.name, now)
        return Decision(option.name, s * sum(option.idle_at(n) for n in lengths), s, False)


class FixedPolicy(_Policy):
    """Always `cell` (or the cap, if the cap is below it); reports the estimate all the same."""

    def __init__(self, options, cell, clock=time.monotonic, estimator=None, cap=None):
        super().__init__(options, clock, estimator, cap)
        if cell not in self.options:
            raise ValueError(f"no cell {cell!r}; cells: {', '.join(self.options)}")
        self.cell = cell

    def _cell(self):
        if self.cap is not None and self.options[self.cell].size > self.options[self.cap].size:
            return self.cap
        return self.cell

    def min_service_ms(self, lengths, now=None):
        """The fixed cell's predicted service time (admission control)."""
        return self.predict_ms(self._cell(), lengths, now)

    def choose_group(self, items, now=None):
        s = self.slowdown(now)
        cell = self._cell()
        option = self.options[cell]
        finish, fits = 0.0, True
        for slack, length in items:
            finish += option.idle_at(length)
            fits = fits and s * finish <= slack
        return Decision(cell, s * finish, s, fits)
