"""`python -m mobile.serve` end to end on 127.0.0.1 with a tiny model: answers, a 4xx for each
kind of bad request (and it keeps serving), 503 at once under overload, /healthz, /metrics,
and a SIGTERM drain that loses no accepted request. Every load is bounded in requests and
seconds; each server is stopped by the test."""

import concurrent.futures
import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import REPO_ROOT
from tests.mobile.runtime.test_runtime_engine import CELLS, exports  # noqa: F401 - the fixture

LABELS = ("negative", "positive")


@contextlib.contextmanager
def serving(model_dir, *flags):
    """(process, port) of `python -m mobile.serve` on a free port; stopped at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mobile.serve", f"--model={model_dir}", "--port=0",
         "--calibration_runs=3", *flags], cwd=REPO_ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    port, seen, deadline = None, [], time.monotonic() + 120
    try:
        while port is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            port = int(match.group(1)) if match else None
        assert port, "server did not start:\n" + "".join(seen)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def call(port, method="POST", path="/v1/classify", body=None, timeout=30):
    """(status, parsed JSON or text) of one request on a new connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        connection.request(method, path, body=body,
                           headers={"Content-Type": "application/json"} if body else {})
        response = connection.getresponse()
        data = response.read().decode()
        try:
            return response.status, json.loads(data)
        except ValueError:
            return response.status, data
    finally:
        connection.close()


def metric(port, name):
    """The value of a Prometheus sample (the sum over label sets), 0 if absent."""
    _, text = call(port, "GET", "/metrics")
    values = [float(m.group(1)) for m in re.finditer(
        rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)]
    return sum(values)


def burst(port, bodies, workers=None):
    with concurrent.futures.ThreadPoolExecutor(workers or len(bodies)) as pool:
        return list(pool.map(lambda body: call(port, body=body), bodies))


def test_answers_health_and_metrics(exports):
    with serving(exports["elastic"]) as (_, port):
        status, answer = call(port, body={"text": "the movie is good .", "slo_ms": 500})
        assert status == 200, answer
        assert answer["label"] in LABELS and answer["cell"] in CELLS
        assert set(answer["probabilities"]) == set(LABELS)
        assert answer["latency_ms"] > 0 and answer["total_ms"] >= answer["latency_ms"]
        assert answer["seq_len"] == 8 and answer["deadline_met"]
        status, pair = call(port, body={"text": "a film", "text_b": "boring"})
        assert status == 200 and pair["cell"] in CELLS
        status, health = call(port, "GET", "/healthz")
        assert status == 200 and health["status"] == "ok"
        assert [c["cell"] for c in health["cells"]] == list(CELLS)
        assert metric(port, "dynabert_requests_total") == 2
        assert metric(port, "dynabert_cell_chosen_total") == 2
        assert metric(port, "dynabert_request_latency_seconds_count") == 2


BAD = [  # (body, status, words of the message)
    (b"{not json", 400, "not JSON"),
    (b"\xff\xfe\x00", 400, "not JSON"),
    (b'["the movie"]', 400, "JSON object"),
    (b"{}", 400, "missing field 'text'"),
    (b'{"text": 3}', 400, "'text' must be a string"),
    (b'{"text": "a", "text_b": ["b"]}', 400, "'text_b' must be a string"),
    (b'{"text": "a", "slo_ms": "fast"}', 400, "'slo_ms' must be a number"),
    (b'{"text": "a", "slo_ms": true}', 400, "'slo_ms' must be a number"),
    (b'{"text": "a", "slo_ms": -5}', 400, "'slo_ms' must be in"),
    (b'{"text": "a", "slo": 5}', 400, "unknown field(s) slo"),
    (json.dumps({"text": "good " * 20000}).encode(), 413, "body larger than 65536 bytes"),
]


def test_bad_requests_get_a_4xx_and_the_server_goes_on(exports):
    with serving(exports["elastic"]) as (proc, port):
        for body, status, words in BAD:
            got, answer = call(port, body=body)
            assert (got, list(answer)) == (status, ["error"]), (body[:40], answer)
            assert words in answer["error"]
        assert call(port, "GET", "/v1/classify")[0] == 405
        assert call(port, "GET", "/nowhere") == (404, {"error": "Not Found"})
        assert call(port, body={"text": "good"})[0] == 200
        assert proc.poll() is None
        assert metric(port, "dynabert_requests_total") == len(BAD) + 1


def test_overload_is_refused_at_once(exports):
    # A device 100x slower than calibrated: each request takes ~100x the tiny model's time.
    with serving(exports["elastic"], "--simulated_slowdown=100", "--max_group=4") as (_, port):
        started = time.monotonic()
        status, answer = call(port, body={"text": "good", "slo_ms": 0.001})
        assert status == 503 and "overloaded" in answer["error"]
        assert time.monotonic() - started < 5
        for _ in range(10):  # the server learns the load
            assert call(port, body={"text": "the movie is good .", "slo_ms": 10_000})[0] == 200
        assert metric(port, "dynabert_slowdown") > 10
        served = metric(port, "dynabert_requests_total")
        started = time.monotonic()
        results = burst(port, [{"text": "the movie is good .", "slo_ms": 20}] * 60)
        elapsed = time.monotonic() - started
        statuses = [status for status, _ in results]
        assert set(statuses) <= {200, 503} and statuses.count(503) >= 15, statuses
        assert statuses.count(200) >= 1
        assert all("overloaded" in a["error"] for s, a in results if s == 503)
        assert elapsed < 20
        assert metric(port, "dynabert_rejections_total") == statuses.count(503) + 1
        assert metric(port, "dynabert_requests_total") == served + 60


def test_sigterm_drains_every_accepted_request(exports):
    with serving(exports["elastic"], "--simulated_slowdown=300") as (proc, port):
        bodies = [{"text": f"the movie is good {'.' * i}", "slo_ms": 60_000} for i in range(12)]
        with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
            futures = [pool.submit(call, port, "POST", "/v1/classify", body, 60)
                       for body in bodies]
            deadline = time.monotonic() + 30
            while True:  # every request accepted: queued, in flight or answered
                in_flight = metric(port, "dynabert_queue_depth")
                if in_flight + metric(port, "dynabert_requests_total") >= len(bodies):
                    break
                assert time.monotonic() < deadline, "requests were not all accepted"
                time.sleep(0.005)
            assert in_flight >= 2  # the drain has work to do
            proc.send_signal(signal.SIGTERM)
            results = [f.result(timeout=60) for f in futures]
        assert [status for status, _ in results] == [200] * len(bodies), results
        assert all(answer["label"] in LABELS for _, answer in results)
        assert proc.wait(timeout=30) == 0
        output = proc.stdout.read()
        assert "drained" in output
        with pytest.raises(OSError):
            call(port, body={"text": "too late"}, timeout=5)
