"""HTTP server on the run-time (`python -m mobile.serve`), built on aiohttp and prometheus_client.

    POST /v1/classify   {"text": "...", "text_b": "..." (optional), "slo_ms": 20 (optional)}
                     -> {"label", "probabilities", "cell", "seq_len", "latency_ms", "queue_ms",
                         "total_ms", "deadline_met"}
    GET  /healthz       200 {"status": "ok", ...}; 503 {"status": "draining"} while stopping
    GET  /metrics       Prometheus text: requests by code, latency histograms, cell chosen,
                        rejections by reason, queue depth, the slowdown estimate

Why aiohttp: one well-kept asyncio package with the server, a request-size limit
(`client_max_size`: an oversized body is refused before it is read), and a graceful shutdown
that waits for the handlers in flight (`AppRunner.cleanup`), which is what a SIGTERM drain
needs; no ASGI server beside it. The model runs on one inference thread (LiteRT's interpreter
is single-caller; the event loop stays free to accept, reject and answer).

Scheduling. A request's deadline is its arrival plus its SLO (`slo_ms`, else `--slo_ms`); the
queue is served earliest deadline first. The worker takes up to `max_group` queued requests,
asks the policy for one cell for the group (the slack of every request in it, the tightest
first: `AdaptivePolicy.choose_group`), and runs them back to back on that cell, answering each
as soon as it is done. Admission: a request is refused at once with 503 when even the fastest
cell, at the current slowdown, cannot finish what is ahead of it (the group in flight and the
queued requests with earlier deadlines) and it before its deadline, or when `max_queue`
requests wait. SIGTERM (or SIGINT): stop listening, answer 503 to new requests on open
connections, finish every accepted request, exit.

Batching: the exported signatures are static [1, L] (XNNPACK cannot resize them to [B, L]), so
a "batch" is a group served back to back; it saves only the per-group decision.
"""

import asyncio
import concurrent.futures
import dataclasses
import heapq
import itertools
import json
import logging
import signal
import time

from aiohttp import web
import prometheus_client as prom

MAX_BODY_BYTES = 64 * 1024
MAX_QUEUE = 256
MAX_GROUP = 8
FIELDS = {"text", "text_b", "slo_ms"}
LATENCY_BUCKETS = (.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1.0, 2.0, 5.0)

log = logging.getLogger("mobile.serve")


class BadRequest(ValueError):
    pass


def parse_request(body, max_slo_ms=60_000.0):
    """(text, text_b, slo_ms) of a JSON body; `BadRequest` with one clear message otherwise."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"body is not JSON ({e})") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object like {\"text\": \"...\"}")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(unknown)}; expected text, text_b, slo_ms")
    if "text" not in data:
        raise BadRequest("missing field 'text' (a string)")
    text, text_b, slo_ms = data["text"], data.get("text_b"), data.get("slo_ms")
    if not isinstance(text, str):
        raise BadRequest(f"'text' must be a string, got {type(text).__name__}")
    if text_b is not None and not isinstance(text_b, str):
        raise BadRequest(f"'text_b' must be a string, got {type(text_b).__name__}")
    if slo_ms is not None:
        if isinstance(slo_ms, bool) or not isinstance(slo_ms, (int, float)):
            raise BadRequest(f"'slo_ms' must be a number, got {type(slo_ms).__name__}")
        if not 0 < slo_ms <= max_slo_ms:
            raise BadRequest(f"'slo_ms' must be in (0, {max_slo_ms:g}], got {slo_ms}")
    return text, text_b, slo_ms


@dataclasses.dataclass(order=True)
class _Item:
    deadline: float
    seq: int
    request: object = dataclasses.field(compare=False)
    length: int = dataclasses.field(compare=False)
    future: object = dataclasses.field(compare=False)


@web.middleware
async def _json_errors(request, handler):
    """aiohttp's own errors (404, 405, ...) as one JSON line; an unexpected error is a 500."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return web.json_response({"error": e.reason}, status=e.status)
    except Exception:  # noqa: BLE001 - the server goes on
        log.exception("request failed")
        return web.json_response({"error": "internal error"}, status=500)


class Metrics:
    def __init__(self, registry=None):
        self.registry = registry or prom.CollectorRegistry()
        r = self.registry
        self.requests = prom.Counter("dynabert_requests", "Classify requests answered, by HTTP "
                                     "status.", ["code"], registry=r)
        self.latency = prom.Histogram("dynabert_request_latency_seconds", "Arrival to answer "
                                      "(queueing included).", buckets=LATENCY_BUCKETS, registry=r)
        self.inference = prom.Histogram("dynabert_inference_latency_seconds", "Model time per "
                                        "request.", ["cell"], buckets=LATENCY_BUCKETS, registry=r)
        self.cell = prom.Counter("dynabert_cell_chosen", "Requests served, by cell.", ["cell"],
                                 registry=r)
        self.rejections = prom.Counter("dynabert_rejections", "Requests refused with 503, by "
                                       "reason.", ["reason"], registry=r)
        self.missed = prom.Counter("dynabert_deadline_missed", "Answered after the deadline.",
                                   registry=r)
        self.queue = prom.Gauge("dynabert_queue_depth", "Requests accepted and not answered.",
                                registry=r)
        self.slowdown = prom.Gauge("dynabert_slowdown", "Current load estimate (measured / idle "
                                   "latency).", registry=r)
        self.controller = prom.Histogram("dynabert_controller_seconds", "Policy time per request.",
                                         buckets=(1e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 1e-3),
                                         registry=r)


class Server:
    """The HTTP front of a `Runtime` (module doc)."""

    def __init__(self, runtime, slo_ms=100.0, max_queue=MAX_QUEUE, max_group=MAX_GROUP,
                 max_body_bytes=MAX_BODY_BYTES, registry=None):
        self.runtime, self.slo_ms = runtime, float(slo_ms)
        self.max_queue, self.max_group = int(max_queue), max(1, int(max_group))
        self.metrics = Metrics(registry)
        self.app = web.Application(client_max_size=max_body_bytes,
                                   middlewares=[_json_errors])
        self.app.add_routes([web.post("/v1/classify", self.classify),
                             web.get("/healthz", self.healthz),
                             web.get("/metrics", self.metrics_text)])
        self.app.on_startup.append(self._start)
        self.app.on_shutdown.append(self._begin_drain)
        self.app.on_cleanup.append(self._stop)
        self._queue, self._seq = [], itertools.count()
        self._accepted = 0  # accepted and not answered
        self._busy_until = 0.0  # clock time the group in flight should end
        self._draining = False
        self._executor = concurrent.futures.ThreadPoolExecutor(1, "inference")

    # -- life cycle ---------------------------------------------------------------------------
    async def _start(self, app):
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._worker = asyncio.create_task(self._work())
        await self._loop.run_in_executor(self._executor, lambda: None)  # start the thread now

    async def _begin_drain(self, app):
        self._draining = True
        log.warning("draining: %d accepted request(s) to finish", self._accepted)

    async def _stop(self, app):
        self._worker.cancel()
        try:
            await self._worker
        except asyncio.CancelledError:
            pass
        self._executor.shutdown(wait=True)

    # -- handlers ----------------------------------------------------------------------------
    def _json(self, status, payload):
        if status != 200 or "label" in payload:
            self.metrics.requests.labels(str(status)).inc()
        return web.json_response(payload, status=status)

    async def classify(self, request):
        if self._draining:
            self.metrics.rejections.labels("draining").inc()
            return self._json(503, {"error": "server is shutting down"})
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._json(413, {"error": f"body larger than {request.client_max_size} "
                                             f"bytes"})
        try:
            text, text_b, slo_ms = parse_request(body)
        except BadRequest as e:
            return self._json(400, {"error": str(e)})
        runtime = self.runtime
        item = runtime.prepare(text, text_b, self.slo_ms if slo_ms is None else slo_ms)
        length = runtime.bucket(item.packed.length)
        refusal = self._admit(item, length)
        if refusal:
            self.metrics.rejections.labels(refusal[0]).inc()
            return self._json(503, {"error": refusal[1]})
        future = self._loop.create_future()
        heapq.heappush(self._queue, _Item(item.deadline, next(self._seq), item, length, future))
        self._accepted += 1
        self.metrics.queue.set(self._accepted)
        self._wake.set()
        try:
            answer, queue_ms = await asyncio.shield(future)
        finally:
            self._accepted -= 1
            self.metrics.queue.set(self._accepted)
        m = self.metrics
        m.latency.observe(answer.total_ms / 1e3)
        m.inference.labels(answer.cell).observe(answer.latency_ms / 1e3)
        m.cell.labels(answer.cell).inc()
        m.controller.observe(answer.controller_us / 1e6)
        m.slowdown.set(answer.slowdown)
        if not answer.deadline_met:
            m.missed.inc()
        return self._json(200, {
            "label": answer.label, "probabilities": answer.probabilities, "cell": answer.cell,
            "seq_len": answer.seq_len, "latency_ms": round(answer.latency_ms, 4),
            "queue_ms": round(queue_ms, 4), "total_ms": round(answer.total_ms, 4),
            "deadline_met": answer.deadline_met})

    def _admit(self, item, length):
        """None, or (reason, message) to refuse `item` with 503."""
        if len(self._queue) >= self.max_queue:
            return "queue_full", f"{len(self._queue)} requests queued; try again later"
        now = self.runtime.clock()
        ahead = [q.length for q in self._queue if q.deadline <= item.deadline] + [length]
        finish = (now + max(0.0, self._busy_until - now)
                  + self.runtime.policy.min_service_ms(ahead, now) / 1e3)
        if finish > item.deadline:
            return "overload", (f"overloaded: even the fastest cell would answer in "
                                f"{(finish - item.arrival) * 1e3:.2f} ms, past the "
                                f"{(item.deadline - item.arrival) * 1e3:g} ms SLO")
        return None

    async def healthz(self, request):
        if self._draining:
            return web.json_response({"status": "draining"}, status=503)
        return web.json_response({"status": "ok", "queued": len(self._queue),
                                  "accepted": self._accepted, **self.runtime.describe()})

    async def metrics_text(self, request):
        self.metrics.slowdown.set(self.runtime.policy.slowdown())
        return web.Response(body=prom.generate_latest(self.metrics.registry),
                            headers={"Content-Type": prom.CONTENT_TYPE_LATEST})

    # -- the worker ----------------------------------------------------------------------------
    async def _work(self):
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            group = [heapq.heappop(self._queue)
                     for _ in range(min(self.max_group, len(self._queue)))]
            try:
                t0 = time.perf_counter_ns()
                decision = self.runtime.decide([g.request for g in group])
                decide_ns = (time.perf_counter_ns() - t0) // len(group)
                self._busy_until = self.runtime.clock() + decision.predicted_ms / 1e3
                await self._loop.run_in_executor(self._executor, self._run_group, group,
                                                 decision, decide_ns)
            except Exception as e:  # noqa: BLE001 - answered as 500s, the worker goes on
                log.exception("scheduling failed")
                for item in group:
                    _resolve(item.future, None, e)
            finally:
                self._busy_until = 0.0

    def _run_group(self, group, decision, decide_ns):
        """On the inference thread: each request of the group on the decided cell."""
        for item in group:
            started = self.runtime.clock()
            try:
                answer = self.runtime.execute(item.request, decision, decide_ns)
                result = (answer, (started - item.request.arrival) * 1e3)
                self._loop.call_soon_threadsafe(_resolve, item.future, result, None)
            except Exception as e:  # noqa: BLE001 - answered as a 500, the server goes on
                log.exception("inference failed")
                self._loop.call_soon_threadsafe(_resolve, item.future, None, e)


def _resolve(future, result, error):
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


async def serve(server, host="127.0.0.1", port=8080, drain_timeout_s=30.0, ready=None):
    """Runs `server` until SIGTERM / SIGINT, then drains. `ready(port)` is called once listening
    (port 0 picks a free one)."""
    runner = web.AppRunner(server.app, handle_signals=False, access_log=None,
                           shutdown_timeout=drain_timeout_s)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ready:
        ready(bound)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
    return bound


def run(server, host="127.0.0.1", port=8080, drain_timeout_s=30.0, ready=None):
    asyncio.run(serve(server, host, port, drain_timeout_s, ready))
