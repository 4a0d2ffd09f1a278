"""The run-time's cell policy on synthetic latency traces: the most accurate cell that fits,
backing off under load and coming back when it goes, hysteresis, the cap, determinism."""

import math

import pytest

from mobile.runtime.policy import (AdaptivePolicy, FixedPolicy, Option, SlowdownEstimator)

# Three cells: accuracy rises with cost. Idle latencies (ms) at two sequence buckets.
CELLS = [Option("small", 0.80, {32: 1.0, 128: 2.0}, cost=1.0),
         Option("medium", 0.85, {32: 2.0, 128: 4.0}, cost=2.0),
         Option("large", 0.90, {32: 4.0, 128: 8.0}, cost=4.0)]


class FakeClock:
    def __init__(self, t=0.0):
        self.t = t

    def __call__(self):
        return self.t


def make(cap=None, **kwargs):
    clock = FakeClock()
    return AdaptivePolicy(CELLS, clock=clock, cap=cap, **kwargs), clock


def test_most_accurate_cell_that_fits():
    policy, _ = make()
    # Margin 15%: large needs 8 * 1.15 = 9.2 ms at 128 tokens, 4.6 ms at 32.
    assert policy.choose(10.0, 128).cell == "large"
    policy, _ = make()
    assert policy.choose(9.0, 128).cell == "medium"
    policy, _ = make()
    assert policy.choose(5.0, 32).cell == "large"  # the short bucket's latency counts
    policy, _ = make()
    decision = policy.choose(1.0, 128)  # nothing fits: the fastest, and it says so
    assert (decision.cell, decision.fits) == ("small", False)
    assert decision.predicted_ms == pytest.approx(2.0)


def test_ranking_by_metric_not_by_cost():
    options = [Option("wide", 0.70, {128: 3.0}, cost=3.0), Option("deep", 0.88, {128: 2.0},
                                                                  cost=2.0)]
    policy = AdaptivePolicy(options, clock=FakeClock())
    assert [o.name for o in policy.ranking] == ["deep", "wide"]
    assert policy.choose(100.0, 128).cell == "deep"  # more accurate and faster


def test_group_fits_every_deadline_in_order():
    policy, _ = make()
    # Alone, 10 ms of slack takes large (9.2 ms); a second request due 12 ms from now needs
    # both done back to back: large 18.4 > 12, medium 9.2 <= 12.
    assert policy.choose_group([(10.0, 128), (12.0, 128)]).cell == "medium"
    policy, _ = make()
    assert policy.choose_group([(10.0, 128), (50.0, 128)]).cell == "large"


def run_trace(policy, clock, slowdowns, slack_ms=10.0, length=128, step_s=0.01):
    """Serves one request per step; the device's true slowdown at step i is slowdowns[i]."""
    chosen = []
    for true_slowdown in slowdowns:
        decision = policy.choose(slack_ms, length)
        idle = policy.options[decision.cell].idle_at(length)
        clock.t += step_s
        policy.observe(decision.cell, length, idle * true_slowdown)
        chosen.append(decision.cell)
    return chosen


def test_backs_off_under_load_and_returns_when_it_goes():
    policy, clock = make()
    trace = [1.0] * 10 + [3.0] * 30 + [1.0] * 150
    chosen = run_trace(policy, clock, trace)
    assert chosen[:10] == ["large"] * 10
    # Under 3x load large (24 ms) and medium (12 ms) miss 10 ms; small (6 ms) fits.
    assert chosen[10] == "large"  # the first loaded request is still predicted idle
    assert set(chosen[20:40]) == {"small"}
    backed_off = chosen.index("small")
    assert backed_off <= 14  # within a few requests
    assert chosen[-10:] == ["large"] * 10  # the load went away: back to the best cell
    assert policy.slowdown() < 1.1


def switches(chosen):
    return sum(a != b for a, b in zip(chosen, chosen[1:]))


def test_hysteresis_keeps_the_choice_steady_near_a_boundary():
    # A load that spikes every third request keeps the estimate hovering around the large
    # cell's limit (10 ms / 9.2 ms = 1.087): without the band the choice flips all the time.
    trace = ([1.2] + [1.0] * 2) * 67
    flappy, clock = make(hysteresis=0.0)
    assert switches(run_trace(flappy, clock, trace)) > 30
    steady, clock = make()
    assert switches(run_trace(steady, clock, trace)) <= 2
    # Noise on both sides of the limit: at most a few switches in 200 requests.
    steady, clock = make()
    assert switches(run_trace(steady, clock, [1.08 if i % 2 else 1.10
                                              for i in range(200)])) <= 2


def test_respects_the_cap():
    policy, clock = make(cap="medium")
    assert policy.choose(1000.0, 128).cell == "medium"
    assert set(run_trace(policy, clock, [1.0] * 20, slack_ms=1000.0)) == {"medium"}
    policy.set_cap(None)
    assert policy.choose(1000.0, 128).cell == "large"
    policy.set_cap("small")
    assert policy.choose(1000.0, 128).cell == "small"
    with pytest.raises(ValueError, match="cap 'huge' is not a cell"):
        policy.set_cap("huge")
    fixed = FixedPolicy(CELLS, "large", clock=FakeClock(), cap="medium")
    assert fixed.choose(1000.0, 128).cell == "medium"


def test_deterministic():
    trace = [1.0 + 2.5 * (math.sin(i / 7.0) > 0) + 0.1 * ((i * 37) % 5) for i in range(300)]
    runs = []
    for _ in range(2):
        policy, clock = make()
        runs.append((run_trace(policy, clock, trace), policy.slowdown()))
    assert runs[0] == runs[1]
    assert len(set(runs[0][0])) >= 2  # the trace does move the choice


def test_slowdown_estimate_rises_fast_falls_slower_and_decays_when_idle():
    clock = FakeClock()
    estimator = SlowdownEstimator(clock, idle_half_life_s=2.0)
    for _ in range(5):
        estimator.observe(30.0, 10.0)
    rising = estimator.value()
    assert 2.0 < rising < 3.0  # 3^(1 - 0.7^5) = 2.5
    one_outlier = SlowdownEstimator(FakeClock())
    assert one_outlier.observe(100.0, 10.0) == pytest.approx(10 ** 0.3)  # not 10x
    for _ in range(5):
        estimator.observe(10.0, 10.0)
    assert 1.0 < estimator.value() < rising
    clock.t += 2.0  # one half-life without requests: log s halves
    assert math.log(estimator.value()) == pytest.approx(
        math.log(estimator.value(clock.t - 2.0)) / 2)
    clock.t += 60.0
    assert estimator.value() == pytest.approx(1.0, abs=1e-6)


def test_recovers_without_traffic():
    policy, clock = make()
    run_trace(policy, clock, [4.0] * 20)
    assert policy.choose(10.0, 128).cell == "small"
    clock.t += 30.0  # quiet: the load estimate decays back to the idle machine
    assert policy.choose(10.0, 128).cell == "large"


def test_fixed_policy_and_admission_bound():
    policy = FixedPolicy(CELLS, "medium", clock=FakeClock())
    decision = policy.choose(1.0, 128)
    assert (decision.cell, decision.fits) == ("medium", False)
    assert policy.choose(100.0, 32).cell == "medium"
    policy.observe("medium", 128, 8.0)  # 2x
    assert policy.slowdown() > 1.0
    assert policy.min_service_ms([128]) == pytest.approx(4.0 * policy.slowdown())
    adaptive, _ = make()
    assert adaptive.min_service_ms([128, 32, 32]) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="no cell 'tiny'"):
        FixedPolicy(CELLS, "tiny", clock=FakeClock())
    with pytest.raises(ValueError, match="at least one cell"):
        AdaptivePolicy([], clock=FakeClock())


def test_bucket_lookup():
    option = CELLS[0]
    assert option.idle_at(20) == 1.0 and option.idle_at(32) == 1.0
    assert option.idle_at(33) == 2.0 and option.idle_at(500) == 2.0
