"""On-device deployment of DynaBERT cells: a library by concern, and thin command-line tools.

Command-line tools (each parses flags and calls the library; `cli` is their plumbing):

    python -m mobile.export --model_dir=WORKDIR --output_dir=OUT      # OUT/w*_d*.tflite + manifest
    python -m mobile.benchmark --tflite_dir=OUT --parity --model_dir=WORKDIR
    python -m mobile.select --manifest=OUT/manifest.json --max_latency_ms=20
    python -m mobile.search --model_dir=WORKDIR --output_dir=OUT --budgets_ms=1.5,2.5
    python -m mobile.serve --model=OUT [--port=8080]                 # the run-time over HTTP

Library:

    export/      per-cell .tflite files, the elastic file (a signature per cell, weights stored
                 once), flatbuffer metadata, OUT/manifest.json (`export_model`, `export_cell`,
                 `export_layerwise`)
    litert/      LiteRT timing, parity with Keras, the benchmark of an export directory
    search/      per-layer sub-networks under latency budgets: latency measurement and model,
                 evolution, dev halves, report (`run_search`, `SearchSettings`)
    runtime/     the run-time (no TensorFlow): tokenizer, signature runner, the adaptive
                 policy picking a cell per request, the HTTP server behind `mobile.serve`
    selection    the best cell under a latency / size budget (no TensorFlow)
    pareto       metric vs latency and size plots (benchmark and search)
    errors       `ExportError`, the one-line error of the tools

Command-line modules: `export/__main__.py`, `search/__main__.py`, `benchmark.py`,
`select.py`, `serve.py` and `cli.py`; no library module imports them. Each tool checks its
flags (a bad one: one `error:` line, exit status 2, as `train.run`), then the inputs it can
read without TensorFlow (a manifest, a model dir's config.json and eval grid), before
anything imports TensorFlow; any other failure is one `error:` line and exit status 1.

`mobile.selection.select_cell(manifest, ...)` is the dependency-free piece an app's build
script imports.
"""
