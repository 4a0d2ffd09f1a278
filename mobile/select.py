"""Print the best cell under a latency / size budget.

    python -m mobile.select --manifest=OUT/manifest.json --max_latency_ms=15 \
        [--max_bytes=20000000] [--threads=2] [--metric=accuracy]

Best = highest dev metric (the manifest's primary metric, from eval_grid.json); ties go to
the lower latency. Latencies come from `python -m mobile.benchmark`. The logic is
`mobile.selection.select_cell`, importable without TensorFlow. With an elastic export
(`--format=elastic`) the answer is the file and the signature to run in it.
"""

import os

from dynabert_tf.core import files
from mobile import cli
from mobile import selection


def define_flags(flag_values):
    from absl import flags

    define = {"flag_values": flag_values}
    flags.DEFINE_string("manifest", None, "OUT/manifest.json written by mobile.export.",
                        **define)
    flags.DEFINE_float("max_latency_ms", None, "Budget on the median latency (ms).", **define)
    flags.DEFINE_integer("max_bytes", None, "Budget on the .tflite file size (bytes).",
                         **define)
    flags.DEFINE_integer("threads", 1, "Thread count the latency budget refers to.", **define)
    flags.DEFINE_string("metric", None, "Metric to maximise (default: the primary metric).",
                        **define)


def describe(entry, manifest_path, metric, threads):
    parts = [entry["cell"]]
    value = selection.metric_of(entry, metric)
    parts.append(f"{metric}={value:.4f}" if value is not None else "no dev metric")
    latency = selection.latency_of(entry, threads)
    if latency is not None:
        parts.append(f"median {latency:.2f} ms at {threads} thread(s)")
    parts.append(f"{entry['bytes'] / 1e6:.2f} MB")
    parts.append(os.path.join(os.path.dirname(manifest_path), entry["file"]))
    if entry.get("signature"):
        parts.append(f"signature {entry['signature']}")
    return "  ".join(parts)


def check_flags(flags_values):
    """UsageError naming the first budget or thread count that cannot work."""
    cli.check_at_least(flags_values, threads=1, max_bytes=1)
    budget = flags_values.max_latency_ms
    if budget is not None and not 0 < budget < float("inf"):
        raise cli.UsageError(f"--max_latency_ms must be a positive number of ms, got {budget}")


def main(argv, flags_values):
    cli.check_arguments(argv, flags_values, "manifest")
    check_flags(flags_values)
    path = flags_values.manifest
    if os.path.isdir(path):
        path = os.path.join(path, "manifest.json")
    if not os.path.isfile(path):
        cli.fail(f"no manifest at {path} (write one with python -m mobile.export)")
    manifest = files.read_json(path, "manifest")
    try:
        selection.check_manifest(manifest)
    except selection.SelectionError as e:
        cli.fail(f"{path}: {e}")
    metric = flags_values.metric or selection.primary_metric(manifest)
    entry = selection.select_cell(manifest, flags_values.max_latency_ms,
                                  flags_values.max_bytes, flags_values.threads, metric,
                                  directory=os.path.dirname(path))
    print(describe(entry, path, metric, flags_values.threads))


if __name__ == "__main__":
    cli.run_main(main, define_flags)
