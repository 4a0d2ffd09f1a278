"""On-device deployment of DynaBERT cells: TFLite export, LiteRT benchmark, cell selection.

    python -m mobile.export --model_dir=WORKDIR --output_dir=OUT      # OUT/w*_d*.tflite + manifest
    python -m mobile.benchmark --tflite_dir=OUT --parity --model_dir=WORKDIR
    python -m mobile.select --manifest=OUT/manifest.json --max_latency_ms=20

`mobile.selection.select_cell(manifest, ...)` is the dependency-free piece an app's build
script imports.
"""
