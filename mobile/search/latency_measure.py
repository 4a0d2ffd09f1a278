"""LiteRT latencies of per-layer sub-networks, measured once and cached: the latency model's data.

Each configuration is extracted and exported by the path the grid cells take
(`mobile.export.export_layerwise`: the kept heads, neurons and layers only, static seq_len,
builtin ops) to `DIR/tflite/{config.name}.tflite`, then every file still untimed is timed by
`mobile.litert.timing.time_files` (batch 1, XNNPACK, median of `runs` calls spread over
`rounds` interleaved rounds). Results go to `DIR/measurements.json` after each export and
after the timing, so a killed run keeps what it measured; a later run with the same export
settings adds to it, and times again (the files reused) what was timed with other timing
settings.

    configs = [*grid_configs, *latency_measure.sample_configs(space, 28, seed=0)]
    entries = latency_measure.measure(model, configs, DIR, settings)
    entries[config.name]["latency_ms"]["median"]
"""

import os

import numpy as np

from dynabert_tf.core import files
from dynabert_tf.core import progress as progress_lib
from mobile import export as export_lib
from mobile.errors import ExportError, read_json_object
import mobile.litert.timing as timing_lib

MEASUREMENTS = "measurements.json"
TFLITE_DIR = "tflite"


def sample_configs(space, count, seed=0, exclude=()):
    """`count` distinct random configurations of `space` (`evolution.Space`: per-layer heads
    and neurons among the allowed counts), none in `exclude`. The number of kept layers
    cycles through 1..num_layers, so shallow networks, which the search reaches under tight
    budgets, are as well covered as deep ones (a uniform draw per layer rarely keeps one)."""
    rng = np.random.default_rng(seed)
    seen = {config.name for config in exclude}
    configs = []
    draws = 0
    while len(configs) < count:
        depth = 1 + draws % space.num_layers
        draws += 1
        config = space.config(space.random_genome_of_depth(rng, depth))
        if config.name not in seen:
            seen.add(config.name)
            configs.append(config)
    return configs


TIMING_KEYS = ("threads", "runs", "warmup", "rounds", "clock")


def _read(path, identity):
    """The cached entries of `path`, {} if none; ExportError if its files were exported with
    other settings (architecture, seq_len, quantization)."""
    if not os.path.isfile(path):
        return {}
    cached = read_json_object(path, MEASUREMENTS)
    differing = [f"{key} {cached.get(key)!r} there, {value!r} now"
                 for key, value in identity.items() if cached.get(key) != value]
    if differing:
        raise ExportError(f"{path} holds files exported with other settings ("
                          + "; ".join(differing) + "); use another --latency_dir")
    return dict(cached.get("configs") or {})


def measure(model, configs, directory, settings, model_id=None, progress=True):
    """{config name: entry} of `configs`, each exported and timed unless cached.

    Args:
      model: the trained `DynaBertTaskModel`.
      configs: `LayerwiseConfig`s.
      directory: where `tflite/` and `measurements.json` go.
      settings: how to export ("architecture", "seq_len", "quantization", ...: a cache of
        files exported otherwise is refused) and to time (`TIMING_KEYS`: an entry timed
        otherwise is timed again, its file reused).
      model_id: recorded as each new entry's `exported_from` (e.g. the weights' sha256).
    Entry: {"config": to_dict, "file", "bytes", "exported_from", "timing": the timing
    settings, "latency_ms": benchmark summary (median, p90, mean, min, samples),
    "load_average": before and after the timing run}.
    """
    os.makedirs(os.path.join(directory, TFLITE_DIR), exist_ok=True)
    path = os.path.join(directory, MEASUREMENTS)
    identity = {k: v for k, v in settings.items() if k not in TIMING_KEYS}
    timing = {k: settings.get(k, "wall" if k == "clock" else None) for k in TIMING_KEYS}
    entries = _read(path, identity)

    def write():
        files.write_json(path, {**identity, "configs": entries})

    todo = [c for c in configs if c.name not in entries
            or not os.path.isfile(os.path.join(directory, entries[c.name]["file"]))]
    for config in progress_lib.wrap(todo, progress, "export", unit="cell"):
        file_name = os.path.join(TFLITE_DIR, f"{config.name}.tflite")
        written = export_lib.export_layerwise(model, config, os.path.join(directory, file_name),
                                              seq_len=settings["seq_len"],
                                              quantization=settings["quantization"])
        entries[config.name] = {"config": config.to_dict(), "file": file_name,
                                "bytes": written["bytes"], "exported_from": model_id,
                                "timing": None, "latency_ms": None}
        write()
    untimed = [c.name for c in configs if entries[c.name].get("timing") != timing
               or entries[c.name].get("latency_ms") is None]
    if untimed:
        timings = time_files({name: os.path.join(directory, entries[name]["file"])
                              for name in untimed}, settings, progress)
        for name in untimed:
            entries[name].update(timings[name], timing=timing)
        write()
    return {c.name: entries[c.name] for c in configs}


def time_files(paths, settings, progress=True):
    """{name: {"latency_ms": summary, "load_average": [before, after]}}: the files of
    `paths` ({name: .tflite path}) timed in one interleaved run (`timing_lib.time_files`)."""
    threads = settings["threads"]
    before = timing_lib.machine_info()["load_average"]
    bar = progress_lib.bar(len(paths) * settings["rounds"], progress, "timing", unit="file")
    try:
        timings = timing_lib.time_files(list(paths.values()), [threads], settings["runs"],
                                        settings["warmup"], settings["rounds"], bar,
                                        settings.get("clock", "wall"))
    finally:
        progress_lib.close(bar)
    load = [before, timing_lib.machine_info()["load_average"]]
    return {name: {"latency_ms": timings[path][str(threads)], "load_average": load}
            for name, path in paths.items()}
