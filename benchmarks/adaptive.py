"""The adaptive run-time against every fixed cell, under changing load (BENCHMARKS.md §10).

    python benchmarks/adaptive.py --model=out/demo_elastic --output_dir=benchmarks/results/adaptive \
        [--scenarios=device,server] [--phase_s=30] [--loads=0,1,2,4,0,1,2,4] \
        [--device_slo_factor=1.5] [--server_slo_factor=3] [--rates=0.35,1.2,0.35] [--server_phase_s=20]

Requests are the real rt_polarity dev sentences (each answer is scored against its label), in
a seeded order, sent to the `mobile.runtime` run-time on an elastic export (1 LiteRT thread).

* device: one closed-loop stream in this process while `--loads` busy CPU processes
  (`stress-ng --cpu N`, or busy Python processes without it) run in the background, one load
  level per phase of `--phase_s` seconds. Requests alternate between the adaptive run-time and
  the 12 fixed cells in turn (a second run-time serving the cell named for each request), so
  every policy meets the same load; the SLO is `--device_slo_factor` x the full cell's idle
  latency (its calibrated median at the file's sequence length).
* server: `python -m mobile.serve` on 127.0.0.1 (adaptive, then `--policy=fixed:<cell>` for
  each cell), fed open-loop Poisson arrivals whose rate changes per phase (`--rates`, as
  multiples of the full cell's idle capacity 1000 / idle ms); the SLO is end to end at the
  client, `--server_slo_factor` x the full cell's idle latency. 503s count as rejected
  (outside the SLO). Every run is bounded in requests and seconds.

Per policy: SLO attainment, p50/p99 latency, served accuracy (of the answered requests, each
scored by the cell that answered it), rejections, the share of each cell; for the adaptive
run-time also the share of the full cell in the idle phases and the controller's overhead.
Each finished run is written to OUTPUT_DIR/runs/<scenario>/<policy>.json at once, and a
re-run reads it instead of measuring again (delete the file to measure again).
OUTPUT_DIR gets adaptive.json, adaptive.md and the plots adaptive_<scenario>_{timeline,
attainment}.png.
"""

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import time

from dynabert_tf.core import files
from dynabert_tf.data import movie_reviews, tasks
from mobile.runtime import Runtime
from mobile.runtime.policy import Decision

SCENARIOS = ("device", "server")
SEED = 0


# ------------------------------------------------------------------------------ requests

def dev_requests(limit=None):
    """[(text, label index)] of rt_polarity dev, in a seeded order."""
    examples = movie_reviews.movie_review_examples(tasks.get_task("rt_polarity"), "dev", None)
    pairs = [(e.text_a, e.label) for e in examples]
    random.Random(SEED).shuffle(pairs)
    return pairs[:limit] if limit else pairs


def is_correct(labels, answer_label, label):
    return answer_label is not None and labels.index(answer_label) == label


# ------------------------------------------------------------------------------ background load

def _busy():
    while True:
        pass


@contextlib.contextmanager
def background_load(processes, seconds):
    """`processes` busy CPU processes for at most `seconds` (stopped on exit)."""
    if processes <= 0:
        yield "none"
        return
    if shutil.which("stress-ng"):
        proc = subprocess.Popen(["stress-ng", "--cpu", str(processes), "--timeout",
                                 f"{int(seconds) + 5}s", "--quiet"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            time.sleep(0.3)
            yield f"stress-ng --cpu {processes}"
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        return
    workers = [multiprocessing.Process(target=_busy, daemon=True) for _ in range(processes)]
    for worker in workers:
        worker.start()
    try:
        yield f"{processes} busy Python processes"
    finally:
        for worker in workers:
            worker.terminate()
            worker.join()


# ------------------------------------------------------------------------------ summaries

def percentile(values, q):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summarize(records, slo_ms, full_cell, top_cell, idle_phases=()):
    """Attainment, latency, accuracy, rejections and cell shares of one policy's records
    (dicts with t, phase, latency_ms or None when rejected, cell, correct)."""
    answered = [r for r in records if r["latency_ms"] is not None]
    within = sum(1 for r in answered if r["latency_ms"] <= slo_ms)
    latencies = [r["latency_ms"] for r in answered]
    shares = {}
    for r in answered:
        shares[r["cell"]] = shares.get(r["cell"], 0) + 1
    idle = [r for r in answered if r["phase"] in idle_phases]
    return {
        "requests": len(records), "answered": len(answered),
        "rejected": len(records) - len(answered),
        "attainment_pct": 100.0 * within / len(records) if records else None,
        "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
        "served_accuracy_pct": (100.0 * sum(r["correct"] for r in answered) / len(answered)
                                if answered else None),
        "cell_share_pct": {c: 100.0 * n / len(answered) for c, n in sorted(shares.items())},
        "idle_full_cell_share_pct": (100.0 * sum(r["cell"] == full_cell for r in idle)
                                     / len(idle) if idle else None),
        # The cell the policy serves when nothing constrains it: the best dev metric.
        "idle_top_cell_share_pct": (100.0 * sum(r["cell"] == top_cell for r in idle)
                                    / len(idle) if idle else None),
        "per_phase": [{"phase": p, **_phase_summary([r for r in records if r["phase"] == p],
                                                    slo_ms)}
                      for p in sorted({r["phase"] for r in records})],
    }


def _phase_summary(records, slo_ms):
    answered = [r for r in records if r["latency_ms"] is not None]
    return {"requests": len(records),
            "attainment_pct": (100.0 * sum(r["latency_ms"] <= slo_ms for r in answered)
                               / len(records) if records else None),
            "p99_ms": percentile([r["latency_ms"] for r in answered], 99)}


# ------------------------------------------------------------------------------ device scenario

def run_device(model, loads, phase_s, slo_factor, requests, calibration_runs):
    """{policy: records} of the closed-loop stream (module doc), and the scenario's facts."""
    adaptive = Runtime.load(model, policy="adaptive", threads=1,
                            calibration_runs=calibration_runs)
    ranking = [o.name for o in adaptive.policy.ranking]
    full = max(adaptive.policy.options.values(), key=lambda o: o.size).name
    seq_len = adaptive.spec.seq_len
    full_idle_ms = adaptive.idle_ms[full, seq_len]
    slo_ms = slo_factor * full_idle_ms
    fixed = Runtime.load(model, policy=f"fixed:{full}", threads=1, idle_ms=adaptive.idle_ms)
    labels = adaptive.labels
    records = {"adaptive": [], **{cell: [] for cell in ranking}}
    turn, index, start = 0, 0, time.perf_counter()
    phases = []
    for phase, processes in enumerate(loads):
        with background_load(processes, phase_s) as how:
            phases.append({"phase": phase, "busy_processes": processes, "load": how,
                           "start_s": time.perf_counter() - start})
            end = time.perf_counter() + phase_s
            while time.perf_counter() < end:
                text, label = requests[index % len(requests)]
                index += 1
                if turn % 2 == 0:
                    answer, policy = adaptive.classify(text, slo_ms=slo_ms), "adaptive"
                else:
                    policy = ranking[(turn // 2) % len(ranking)]
                    answer = fixed.execute(fixed.prepare(text, slo_ms=slo_ms),
                                           Decision(policy, 0.0, 1.0, True))
                turn += 1
                records[policy].append({
                    "t": time.perf_counter() - start, "phase": phase,
                    "latency_ms": answer.total_ms, "cell": answer.cell,
                    "correct": is_correct(labels, answer.label, label)})
    facts = {"slo_ms": slo_ms, "full_cell": full, "full_idle_ms": full_idle_ms,
             "seq_len": seq_len, "phases": phases, "ranking": ranking,
             "idle_ms": {c: adaptive.idle_ms[c, seq_len] for c in ranking},
             "dev_metric": {o.name: o.metric for o in adaptive.policy.ranking},
             "controller_overhead_us": adaptive.controller_overhead_us(),
             "memory": adaptive.memory()}
    return records, facts


# ------------------------------------------------------------------------------ server scenario

@contextlib.contextmanager
def serve(model, policy, slo_ms, calibration_runs, log_path):
    """`python -m mobile.serve` on 127.0.0.1 with a free port; yields its base URL."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mobile.serve", f"--model={model}", "--port=0",
             f"--policy={policy}", f"--slo_ms={slo_ms}", "--threads=1",
             f"--calibration_runs={calibration_runs}"],
            stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            deadline = time.time() + 120
            url = None
            while time.time() < deadline and url is None:
                line = proc.stdout.readline()
                if not line:
                    break
                if line.startswith("listening on "):
                    url = line.split()[-1]
            if url is None:
                raise RuntimeError(f"mobile.serve did not start; see {log_path}")
            yield url
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


async def open_loop(url, schedule, requests, labels, slo_ms, timeout_s):
    """Poisson arrivals at each phase's rate; [record] of every request sent."""
    import aiohttp

    rng = random.Random(SEED)
    records, tasks_ = [], []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        loop = asyncio.get_running_loop()
        start = loop.time()
        t, index = 0.0, 0
        for phase, (rate, seconds) in enumerate(schedule):
            phase_end = sum(s for _, s in schedule[:phase + 1])
            while True:
                t += rng.expovariate(rate)
                if t >= phase_end:
                    t = phase_end
                    break
                await asyncio.sleep(max(0.0, start + t - loop.time()))
                text, label = requests[index % len(requests)]
                index += 1
                tasks_.append(asyncio.create_task(_one(session, url, text, label, labels,
                                                       slo_ms, phase, loop, start, timeout_s,
                                                       records)))
        await asyncio.gather(*tasks_)
    return sorted(records, key=lambda r: r["t"])


async def _one(session, url, text, label, labels, slo_ms, phase, loop, start, timeout_s,
               records):
    import aiohttp

    sent = loop.time()
    record = {"t": sent - start, "phase": phase, "latency_ms": None, "cell": None,
              "correct": False, "status": None}
    try:
        async with session.post(f"{url}/v1/classify", json={"text": text, "slo_ms": slo_ms},
                                timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            record["status"] = response.status
            body = await response.json()
        if response.status == 200:
            record.update(latency_ms=(loop.time() - sent) * 1e3, cell=body["cell"],
                          correct=is_correct(labels, body["label"], label))
    except (aiohttp.ClientError, asyncio.TimeoutError) as e:
        record["status"] = type(e).__name__
    records.append(record)


def run_server(model, policy, schedule, slo_ms, requests, labels, calibration_runs, log_path):
    with serve(model, policy, slo_ms, calibration_runs, log_path) as url:
        return asyncio.run(open_loop(url, schedule, requests, labels, slo_ms,
                                     timeout_s=max(10.0, slo_ms / 100)))


# ------------------------------------------------------------------------------ report

def verdicts(summaries, full_cell):
    """The issue's targets, computed from the policies' summaries."""
    adaptive, full = summaries["adaptive"], summaries[full_cell]
    fixed = {c: s for c, s in summaries.items() if c != "adaptive"}
    reaching = {c: s for c, s in fixed.items() if s["attainment_pct"] >= 99.0}
    best = max(reaching.items(), key=lambda kv: kv[1]["served_accuracy_pct"], default=None)
    result = {
        "adaptive_attainment_ge_99": adaptive["attainment_pct"] >= 99.0,
        "full_cell_attainment_lt_90": full["attainment_pct"] < 90.0,
        "best_fixed_cell_at_99": best[0] if best else None,
        "idle_full_cell_share_ge_95": (adaptive["idle_full_cell_share_pct"] is not None
                                       and adaptive["idle_full_cell_share_pct"] >= 95.0),
        "idle_top_cell_share_ge_95": (adaptive["idle_top_cell_share_pct"] is not None
                                      and adaptive["idle_top_cell_share_pct"] >= 95.0),
    }
    if best:
        gap = full["served_accuracy_pct"] - best[1]["served_accuracy_pct"]
        closed = adaptive["served_accuracy_pct"] - best[1]["served_accuracy_pct"]
        result.update(
            adaptive_beats_every_99_cell=all(
                adaptive["served_accuracy_pct"] > s["served_accuracy_pct"]
                for s in reaching.values()),
            gap_points=gap, closed_points=closed,
            gap_closed_pct=100.0 * closed / gap if gap > 0 else None)
    return result


def markdown(report):
    lines = []
    for scenario, result in report["scenarios"].items():
        facts = result["facts"]
        lines += [f"### {scenario}", "",
                  f"SLO {facts['slo_ms']:.2f} ms ({facts['slo_rule']}); full cell "
                  f"{facts['full_cell']}, idle {facts['full_idle_ms']:.2f} ms; "
                  f"phases: {facts['phases_text']}.", "",
                  "| policy | requests | SLO attainment % | p50 ms | p99 ms | served accuracy % "
                  "| rejected | cells (share %) |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
        for policy, s in result["summaries"].items():
            cells = ", ".join(f"{c} {p:.0f}" for c, p in sorted(
                s["cell_share_pct"].items(), key=lambda kv: -kv[1]) if p >= 0.5)
            lines.append(
                f"| {policy} | {s['requests']} | {_fmt(s['attainment_pct'])} | "
                f"{_fmt(s['p50_ms'])} | {_fmt(s['p99_ms'])} | {_fmt(s['served_accuracy_pct'])}"
                f" | {s['rejected']} | {cells if policy == 'adaptive' else ''} |")
        adaptive = result["summaries"]["adaptive"]
        lines += ["", f"Adaptive in the idle phases: {_fmt(adaptive['idle_top_cell_share_pct'])}"
                  f"% of answers from the best-dev cell ({facts['ranking'][0]}), "
                  f"{_fmt(adaptive['idle_full_cell_share_pct'])}% from the full cell."]
        if "controller_overhead_us" in facts:
            lines.append(f"Controller per request: {json.dumps(facts['controller_overhead_us'])}"
                         f" µs; memory: {json.dumps(facts['memory'])}.")
        lines += ["", "Targets: " + json.dumps(result["verdicts"]), ""]
    return "\n".join(lines) + "\n"


def _fmt(value):
    return "—" if value is None else f"{value:.2f}"


def plot(scenario, result, output_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    facts, records = result["facts"], result["records"]
    ranking = facts["ranking"]
    adaptive = records["adaptive"]
    full = facts["full_cell"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True)
    for policy, color in (("adaptive", "tab:blue"), (full, "tab:red")):
        points = [(r["t"], r["latency_ms"]) for r in records[policy] if r["latency_ms"]]
        top.scatter([p[0] for p in points], [p[1] for p in points], s=2, color=color,
                    alpha=0.5, label=f"{policy} (answered)")
        rejected = [r["t"] for r in records[policy] if r["latency_ms"] is None]
        if rejected:
            top.scatter(rejected, [facts["slo_ms"] * 1.05] * len(rejected), marker="x", s=8,
                        color=color, label=f"{policy} rejected (503)")
    top.axhline(facts["slo_ms"], color="black", linestyle="--", label="SLO")
    top.set_yscale("log")
    top.set_ylabel("latency, ms")
    bottom.scatter([r["t"] for r in adaptive if r["cell"]],
                   [ranking.index(r["cell"]) for r in adaptive if r["cell"]], s=2)
    bottom.set_yticks(range(len(ranking)), ranking)
    bottom.invert_yaxis()
    bottom.set_ylabel("cell (adaptive)")
    bottom.set_xlabel("time, s")
    for axis in (top, bottom):
        for phase in facts["phase_bounds"]:
            axis.axvline(phase["start_s"], color="grey", linewidth=0.5)
    for phase in facts["phase_bounds"]:
        top.text(phase["start_s"], top.get_ylim()[1], f" {phase['label']}", va="top",
                 fontsize=7)
    top.legend(fontsize=7, loc="lower right", markerscale=4)
    top.set_title(f"{scenario}: latency over time (adaptive vs the full cell alone)")
    fig.tight_layout()
    fig.savefig(os.path.join(output_dir, f"adaptive_{scenario}_timeline.png"), dpi=120)
    plt.close(fig)

    fig, axis = plt.subplots(figsize=(7, 5))
    for policy, s in result["summaries"].items():
        marker, color = ("*", "tab:blue") if policy == "adaptive" else ("o", "tab:grey")
        axis.scatter(s["attainment_pct"], s["served_accuracy_pct"], marker=marker, color=color,
                     s=140 if policy == "adaptive" else 30)
        axis.annotate(policy, (s["attainment_pct"], s["served_accuracy_pct"]), fontsize=7,
                      xytext=(3, 3), textcoords="offset points")
    axis.axvline(99, color="black", linestyle=":", linewidth=0.8)
    axis.set_xlabel("SLO attainment, % of requests")
    axis.set_ylabel("served accuracy, %")
    axis.set_title(f"{scenario}: the adaptive run-time (star) and each fixed cell")
    fig.tight_layout()
    fig.savefig(os.path.join(output_dir, f"adaptive_{scenario}_attainment.png"), dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------------------ main

def _cached(path, measure):
    if os.path.isfile(path):
        return files.read_json(path)
    value = measure()
    files.write_json(path, value)
    return value


def device_scenario(args, requests, runs_dir):
    def measure():
        records, facts = run_device(args.model, args.loads, args.phase_s,
                                    args.device_slo_factor, requests, args.calibration_runs)
        return {"records": records, "facts": facts}

    result = _cached(os.path.join(runs_dir, "device.json"), measure)
    facts = result["facts"]
    facts["slo_rule"] = f"{args.device_slo_factor:g} x the full cell's idle latency"
    facts["phase_bounds"] = [{"start_s": p["start_s"], "label": f"{p['busy_processes']} busy"}
                             for p in facts["phases"]]
    facts["phases_text"] = (f"{len(args.loads)} x {args.phase_s:g} s with "
                            f"{', '.join(str(n) for n in args.loads)} busy processes "
                            f"({next((p['load'] for p in facts['phases'] if p['busy_processes']), 'none')})")
    idle = [p["phase"] for p in facts["phases"] if p["busy_processes"] == 0]
    return result, idle


def server_scenario(args, requests, runs_dir, ranking_hint):
    probe = Runtime.load(args.model, policy="adaptive", threads=1,
                         calibration_runs=args.calibration_runs)
    full = max(probe.policy.options.values(), key=lambda o: o.size).name
    full_idle_ms = probe.idle_ms[full, probe.spec.seq_len]
    ranking = [o.name for o in probe.policy.ranking]
    labels = probe.labels
    del probe
    slo_ms = args.server_slo_factor * full_idle_ms
    capacity = 1000.0 / full_idle_ms
    schedule = [(rate * capacity, args.server_phase_s) for rate in args.rates]
    records = {}
    for policy in ["adaptive", *ranking]:
        name = "adaptive" if policy == "adaptive" else f"fixed:{policy}"
        path = os.path.join(runs_dir, f"server_{policy}.json")
        records[policy] = _cached(path, lambda: run_server(
            args.model, name, schedule, slo_ms, requests, labels, args.calibration_runs,
            os.path.join(runs_dir, f"server_{policy}.log")))
        print(f"server {policy}: {len(records[policy])} requests", flush=True)
    starts = [sum(s for _, s in schedule[:i]) for i in range(len(schedule))]
    facts = {"slo_ms": slo_ms, "full_cell": full, "full_idle_ms": full_idle_ms,
             "ranking": ranking, "schedule": [{"rate_per_s": r, "seconds": s}
                                              for r, s in schedule],
             "slo_rule": f"{args.server_slo_factor:g} x the full cell's idle latency, end to end",
             "phase_bounds": [{"start_s": st, "label": f"{r:.0f}/s"}
                              for st, (r, _) in zip(starts, schedule)],
             "phases_text": ", ".join(f"{r:.0f} req/s for {s:g} s" for r, s in schedule)
                            + f" (Poisson; {', '.join(f'{x:g}' for x in args.rates)} x the "
                              f"full cell's idle capacity {capacity:.0f}/s)"}
    low = min(args.rates)
    idle = [i for i, rate in enumerate(args.rates) if rate == low]
    return {"records": records, "facts": facts}, idle


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="elastic export (dir or .tflite)")
    parser.add_argument("--output_dir", default="benchmarks/results/adaptive")
    parser.add_argument("--scenarios", default="device,server")
    parser.add_argument("--loads", default="0,1,2,4,0,1,2,4")
    parser.add_argument("--phase_s", type=float, default=30.0)
    parser.add_argument("--device_slo_factor", type=float, default=1.5)
    parser.add_argument("--server_slo_factor", type=float, default=3.0)
    parser.add_argument("--rates", default="0.35,1.2,0.35")
    parser.add_argument("--server_phase_s", type=float, default=20.0)
    parser.add_argument("--calibration_runs", type=int, default=20)
    args = parser.parse_args()
    args.loads = [int(x) for x in args.loads.split(",")]
    args.rates = [float(x) for x in args.rates.split(",")]
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        sys.exit(f"error: unknown scenario(s) {', '.join(unknown)}; use {', '.join(SCENARIOS)}")
    if not os.path.exists(args.model):
        sys.exit(f"error: no model at {args.model}")
    runs_dir = os.path.join(args.output_dir, "runs")
    os.makedirs(runs_dir, exist_ok=True)
    requests = dev_requests()
    report = {"model": args.model, "machine": f"{os.cpu_count()} CPUs", "scenarios": {}}
    for scenario in scenarios:
        if scenario == "device":
            result, idle = device_scenario(args, requests, runs_dir)
        else:
            result, idle = server_scenario(args, requests, runs_dir, None)
        facts = result["facts"]
        summaries = {policy: summarize(records, facts["slo_ms"], facts["full_cell"],
                                       facts["ranking"][0], idle)
                     for policy, records in result["records"].items()}
        result["summaries"] = summaries
        result["verdicts"] = verdicts(summaries, facts["full_cell"])
        plot(scenario, result, args.output_dir)
        report["scenarios"][scenario] = {"facts": facts, "summaries": summaries,
                                         "verdicts": result["verdicts"]}
    files.write_json(os.path.join(args.output_dir, "adaptive.json"), report)
    text = markdown(report)
    files.write_atomic(os.path.join(args.output_dir, "adaptive.md"), text, mode="w")
    print(text)


if __name__ == "__main__":
    main()
