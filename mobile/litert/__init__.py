"""The LiteRT side of the mobile tools: latency, parity and the benchmark of an export.

    from mobile import litert
    benchmark = litert.benchmark_dir("OUT", threads=(1, 2), parity_model_dir="WORKDIR")
    print(litert.format_table(benchmark))
    litert.time_files(["OUT/w0.50_d0.75.tflite"], threads=[1], runs=50, rounds=5)

(`python -m mobile.benchmark` is the command line.)

Modules:

    timing      signature runners, batch-1 latencies in interleaved rounds, machine info
    parity      TFLite outputs vs the dynamic Keras model at a cell (`parity.parity`)
    directory   every file of OUT/manifest.json timed (and checked): OUT/benchmark.json,
                the manifest's latency entries, OUT/pareto.png
"""

from mobile.litert.directory import (BENCHMARK, add_ratios, benchmark_dir, format_table,
                                     load_manifest, record_in_manifest)
from mobile.litert.parity import keras_outputs, parity_inputs, tflite_outputs
from mobile.litert.timing import (CLOCKS, machine_info, sample_latencies, signature_runner,
                                  summarize, time_file, time_files)

__all__ = ["BENCHMARK", "CLOCKS", "add_ratios", "benchmark_dir", "format_table",
           "keras_outputs", "load_manifest", "machine_info", "parity_inputs",
           "record_in_manifest", "sample_latencies", "signature_runner", "summarize",
           "tflite_outputs", "time_file", "time_files"]
