"""The run-time's request API: text (or token ids) in, the label and the cell that served it out.

    from mobile.runtime import Runtime

    runtime = Runtime.load("out/rt_elastic")                 # elastic file or export dir
    answer = runtime.classify("a gripping, funny film", slo_ms=5)
    answer.label, answer.probabilities, answer.cell, answer.latency_ms

    runtime.policy.set_cap("w0.50_d0.75")                     # battery saver: never above it
    Runtime.load(path, policy="fixed:w1.00_d1.00")           # a fixed cell (a baseline)

`Runtime` keeps every signature resident (`signatures.ResidentModel`), tokenizes with the
vocabulary inside the file (`tokenizer.WordPieceEncoder`), and for each request asks its policy
(`policy.AdaptivePolicy` by default) for a cell from the time left before the deadline
(arrival + SLO), runs it at the smallest sequence bucket that holds the sentence, and tells the
policy the measured latency. The clock is injectable (seconds, monotonic), so tests and
benchmarks drive it deterministically; `prepare` / `execute` split a request so a server can
queue it between the two. No TensorFlow anywhere.
"""

import dataclasses
import math
import time

from mobile.runtime import model_file, policy as policy_lib
from mobile.runtime.signatures import ResidentModel
from mobile.runtime.tokenizer import Packed, WordPieceEncoder

DEFAULT_SLO_MS = 100.0


@dataclasses.dataclass
class Answer:
    """What a request returns.

    label: the class name (None for regression); probabilities: {label: p} (softmax of the
    logits; regression: {}); outputs: {name: list} raw outputs; cell, seq_len: the signature
    that served it; latency_ms: its inference time; total_ms: arrival to answer (tokenizing
    and any queueing included); predicted_ms: the policy's prediction; slowdown: the load
    estimate at the decision; deadline_met: total_ms <= the SLO; controller_us: the policy's
    time for this request (choose + observe).
    """
    label: str
    probabilities: dict
    outputs: dict
    cell: str
    seq_len: int
    latency_ms: float
    total_ms: float
    predicted_ms: float
    slowdown: float
    deadline_met: bool
    controller_us: float

    def to_json(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Request:
    """A tokenized request with its deadline (clock seconds)."""
    packed: Packed
    arrival: float
    deadline: float


def _softmax(values):
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


def make_policy(spec, idle_ms, kind="adaptive", clock=time.monotonic, cap=None, **kwargs):
    """A policy over the spec's cells: `kind` "adaptive", "fixed:<cell>", or a policy object
    (returned as is); `idle_ms`: {(cell, length): ms}."""
    if not isinstance(kind, str):
        return kind
    options = [policy_lib.Option(c.name, c.metric,
                                 {length: idle_ms[c.name, length] for length in c.signatures},
                                 c.size or None)
               for c in spec.cells]
    if kind == "adaptive":
        return policy_lib.AdaptivePolicy(options, clock=clock, cap=cap, **kwargs)
    if kind.startswith("fixed:"):
        return policy_lib.FixedPolicy(options, kind.split(":", 1)[1], clock=clock, cap=cap)
    raise ValueError(f"policy must be 'adaptive' or 'fixed:<cell>', got {kind!r}")


class Runtime:
    """Serves requests on the cell its policy picks (module doc)."""

    def __init__(self, spec, policy="adaptive", threads=1, calibration_runs=7,
                 clock=time.perf_counter, simulated_slowdown=1.0, cap=None, idle_ms=None,
                 **policy_kwargs):
        """
        Args:
          spec: a `model_file.ModelSpec`.
          policy: "adaptive", "fixed:<cell>", or a policy object (`policy.AdaptivePolicy`...).
          calibration_runs: timed calls per signature at start for the idle latencies; 0: use
            the manifest's (benchmark) latencies at `threads` (a bucket without one is scaled
            from its cell's full length by the token count).
          clock: seconds, monotonic; the policy and the latency measurements use it.
          simulated_slowdown: > 1 stretches every inference by this factor (waiting out the
            rest): a loaded device, for demos and tests.
          idle_ms: {(cell, length): ms}, instead of calibrating.
        """
        self.spec, self.clock = spec, clock
        self.model = ResidentModel(spec, threads)
        self.encoder = WordPieceEncoder(spec.vocab, spec.seq_len)
        if idle_ms is None:
            idle_ms = (self.model.calibrate(calibration_runs, clock=clock) if calibration_runs
                       else self._manifest_idle(threads))
        self.idle_ms = dict(idle_ms)
        self.policy = make_policy(spec, self.idle_ms, policy, clock, cap, **policy_kwargs)
        self.simulated_slowdown = float(simulated_slowdown)
        self.controller_ns = []  # per request, the most recent 10,000

    @classmethod
    def load(cls, path, **kwargs):
        """A `Runtime` on an elastic .tflite, an export directory, or a per-cell file."""
        return cls(model_file.load_spec(path), **kwargs)

    def _manifest_idle(self, threads):
        result = {}
        for cell in self.spec.cells:
            base = cell.manifest_latency_ms.get(threads)
            if base is None:
                raise model_file.ModelFileError(
                    f"the manifest has no {threads}-thread latency for {cell.name}; run "
                    f"mobile.benchmark or calibrate at start")
            for length in cell.signatures:
                result[cell.name, length] = base * length / self.spec.seq_len
        return result

    @property
    def labels(self):
        return self.spec.labels

    # -- the steps of a request -------------------------------------------------------------
    def prepare(self, text=None, text_b=None, slo_ms=None, token_ids=None, segment_ids=None,
                arrival=None):
        """A `Request`: tokenized (or given ids, [CLS] ... [SEP] included), with its deadline."""
        arrival = self.clock() if arrival is None else arrival
        if token_ids is not None:
            packed = self.pack_ids(token_ids, segment_ids)
        else:
            packed = self.encoder.encode(text, text_b)
        slo_ms = DEFAULT_SLO_MS if slo_ms is None else float(slo_ms)
        return Request(packed, arrival, arrival + slo_ms / 1e3)

    def pack_ids(self, token_ids, segment_ids=None):
        token_ids = [int(t) for t in token_ids][:self.spec.seq_len]
        segment_ids = ([int(s) for s in segment_ids][:len(token_ids)] if segment_ids is not None
                       else [0] * len(token_ids))
        pad = self.spec.seq_len - len(token_ids)
        return Packed(token_ids + [self.encoder.pad_id] * pad, segment_ids + [0] * pad,
                      [1] * len(token_ids) + [0] * pad, len(token_ids))

    def bucket(self, tokens):
        """The smallest input length any signature takes that holds `tokens` tokens."""
        for length in self.model.lengths:
            if length >= tokens:
                return length
        return self.model.lengths[-1]

    def decide(self, requests):
        """The policy's `Decision` for `requests` served back to back (deadline order)."""
        now = self.clock()
        items = [((r.deadline - now) * 1e3, self.bucket(r.packed.length)) for r in requests]
        return self.policy.choose_group(items, now)

    def execute(self, request, decision, controller_ns=0):
        """Runs `request` on `decision.cell`; tells the policy; returns the `Answer`."""
        cell = decision.cell
        length = self.model.length_for(cell, request.packed.length)
        start = self.clock()
        outputs = self.model.run(cell, request.packed, length)
        if self.simulated_slowdown > 1:
            _wait_until(self.clock, start + (self.clock() - start) * self.simulated_slowdown)
        end = self.clock()
        latency_ms = (end - start) * 1e3
        t0 = time.perf_counter_ns()
        self.policy.observe(cell, length, latency_ms, end)
        controller_ns += time.perf_counter_ns() - t0
        self.controller_ns.append(controller_ns)
        if len(self.controller_ns) > 10000:
            del self.controller_ns[:5000]
        return self._answer(outputs, cell, length, latency_ms, request, end, decision,
                            controller_ns)

    def _answer(self, outputs, cell, length, latency_ms, request, end, decision, controller_ns):
        total_ms = (end - request.arrival) * 1e3
        # A per-cell classification file outputs logits and probabilities, or probabilities.
        scores = outputs.get("logits", outputs.get("probabilities"))
        logits = (scores if scores is not None else next(iter(outputs.values()))).tolist()
        label, probabilities = None, {}
        if len(logits) > 1:
            probs = _softmax(logits) if "logits" in outputs or "probabilities" not in outputs \
                else logits
            names = self.labels if len(self.labels) == len(probs) else [
                str(i) for i in range(len(probs))]
            probabilities = dict(zip(names, probs))
            label = names[max(range(len(probs)), key=probs.__getitem__)]
        return Answer(label, probabilities, {k: v.tolist() for k, v in outputs.items()}, cell,
                      length, latency_ms, total_ms, decision.predicted_ms, decision.slowdown,
                      end <= request.deadline, controller_ns / 1e3)

    # -- one call ------------------------------------------------------------------------------
    def classify(self, text, text_b=None, slo_ms=None, cell=None):
        """One sentence (or pair) -> `Answer`, on the cell the policy picks now (or `cell`)."""
        return self.serve(self.prepare(text, text_b, slo_ms), cell)

    def classify_ids(self, token_ids, segment_ids=None, slo_ms=None, cell=None):
        """Token ids ([CLS] ... [SEP] included) -> `Answer`."""
        return self.serve(self.prepare(token_ids=token_ids, segment_ids=segment_ids,
                                       slo_ms=slo_ms), cell)

    def serve(self, request, cell=None):
        """A prepared `Request` -> `Answer`; `cell` overrides the policy (which still learns
        the load from it)."""
        t0 = time.perf_counter_ns()
        if cell is None:
            decision = self.decide([request])
        else:
            length = self.bucket(request.packed.length)
            decision = policy_lib.Decision(cell, self.policy.predict_ms(cell, [length]),
                                           self.policy.slowdown(), True)
        return self.execute(request, decision, time.perf_counter_ns() - t0)

    # -- reports --------------------------------------------------------------------------------
    def controller_overhead_us(self):
        """{"median", "p99", "count"} of the policy's time per request, µs."""
        samples = sorted(self.controller_ns)
        if not samples:
            return {"median": None, "p99": None, "count": 0}
        return {"median": samples[len(samples) // 2] / 1e3,
                "p99": samples[min(len(samples) - 1, int(len(samples) * 0.99))] / 1e3,
                "count": len(samples)}

    def memory(self, single_cell=None):
        """Bytes: the file(s), the resident set added by loading every signature, and by
        loading one cell alone (`single_cell`, default the most accurate) for comparison."""
        cell = single_cell or self.policy.ranking[0].name
        return {"file_bytes": self.model.file_bytes,
                "resident_all_signatures_bytes": self.model.resident_bytes,
                "signatures": len(self.model.keys),
                "single_cell": cell,
                "resident_single_cell_bytes": self.model.single_cell_bytes(cell)}

    def describe(self):
        """What /healthz and logs show: cells, their ranks, metrics, idle latencies."""
        return {"model": self.spec.path, "format": self.spec.format, "task": self.spec.task,
                "labels": self.labels, "metric": self.spec.metric_name,
                "cells": [{"cell": o.name, "metric": o.metric,
                           "idle_ms": {str(k): round(v, 4) for k, v in sorted(o.idle_ms.items())}}
                          for o in self.policy.ranking],
                "cap": self.policy.cap, "slowdown": round(self.policy.slowdown(), 4)}


def _wait_until(clock, target):
    while True:
        left = target - clock()
        if left <= 0:
            return
        if left > 0.002:
            time.sleep(left - 0.001)
