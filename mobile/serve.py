"""Serve an exported DynaBERT over HTTP, on the cell that fits each request's deadline.

    python -m mobile.serve --model=out/rt_elastic [--port=8080] [--slo_ms=100] [--cap=CELL]
    curl -s localhost:8080/v1/classify -d '{"text": "a gripping film", "slo_ms": 20}'

`--model`: an elastic .tflite, or an export directory (elastic or per-cell, with its
manifest.json). Endpoints, scheduling, admission and draining: `mobile/runtime/server.py`;
the policy: `mobile/runtime/policy.py`. No TensorFlow is imported. Port 0 picks a free port;
the chosen one is printed ("listening on http://HOST:PORT").
"""

from mobile import cli


def define_flags(flag_values):
    from absl import flags

    define = {"flag_values": flag_values}
    flags.DEFINE_string("model", None, "Elastic .tflite, or an export directory with "
                        "manifest.json (elastic or per-cell).", **define)
    flags.DEFINE_string("host", "127.0.0.1", "Address to listen on (0.0.0.0: every interface).",
                        **define)
    flags.DEFINE_integer("port", 8080, "Port (0: a free one, printed at start).", **define)
    flags.DEFINE_float("slo_ms", 100.0, "Latency target of a request that names none (ms, "
                       "queueing included).", **define)
    flags.DEFINE_string("policy", "adaptive", "adaptive, or fixed:<cell> (always that cell).",
                        **define)
    flags.DEFINE_string("cap", None, "Never serve a cell larger than this one (e.g. battery "
                        "saver).", **define)
    flags.DEFINE_integer("threads", 1, "LiteRT threads per inference.", **define)
    flags.DEFINE_integer("calibration_runs", 7, "Timed calls per signature at start for the idle "
                         "latencies (0: the manifest's benchmark latencies).", **define)
    flags.DEFINE_integer("max_queue", 256, "Requests waiting at most; beyond, 503.", **define)
    flags.DEFINE_integer("max_group", 8, "Queued requests served back to back per decision.",
                         **define)
    flags.DEFINE_integer("max_body_bytes", 64 * 1024, "Largest request body (413 beyond).",
                         **define)
    flags.DEFINE_float("drain_timeout_s", 30.0, "On SIGTERM, how long accepted requests may "
                       "take to finish.", **define)
    flags.DEFINE_float("simulated_slowdown", 1.0, "Stretch every inference by this factor (a "
                       "loaded device, for demos and tests).", **define)


def check_flags(flags_values):
    """UsageError naming the first flag that cannot work."""
    f = flags_values
    cli.check_threads([f.threads])
    cli.check_at_least(f, simulated_slowdown=1, port=0, calibration_runs=0, max_queue=1,
                       max_group=1, max_body_bytes=1, drain_timeout_s=0)
    if f.port > 65535:
        raise cli.UsageError(f"--port must be in 0..65535, got {f.port}")
    if not 0 < f.slo_ms < float("inf"):
        raise cli.UsageError(f"--slo_ms must be a positive number of ms, got {f.slo_ms}")


def main(argv, flags_values):
    cli.check_arguments(argv, flags_values, "model")
    check_flags(flags_values)
    from mobile.runtime import Runtime, server

    runtime = Runtime.load(flags_values.model, policy=flags_values.policy,
                           threads=flags_values.threads,
                           calibration_runs=flags_values.calibration_runs,
                           simulated_slowdown=flags_values.simulated_slowdown,
                           cap=flags_values.cap)
    app = server.Server(runtime, flags_values.slo_ms, flags_values.max_queue,
                        flags_values.max_group, flags_values.max_body_bytes)
    host = flags_values.host

    def ready(port):
        cells = ", ".join(o.name for o in runtime.policy.ranking)
        print(f"serving {runtime.spec.path} ({cells}) policy={flags_values.policy}", flush=True)
        print(f"listening on http://{host}:{port}", flush=True)

    server.run(app, host, flags_values.port, flags_values.drain_timeout_s, ready)
    print("drained, stopped", flush=True)


if __name__ == "__main__":
    cli.run_main(main, define_flags)
