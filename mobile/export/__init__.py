"""Per-cell TFLite files of a trained DynaBERT, or one elastic file, with a manifest.

    from mobile.export import export_model, export_cell, export_layerwise
    manifest = export_model("WORKDIR", "OUT", quantization="dynamic_range", seq_len=128)
    export_cell(model, 0.5, 0.75, "out/w0.50_d0.75.tflite")
    export_layerwise(model, LayerwiseConfig(...), "out/mix_....tflite")

(`python -m mobile.export` is the command line, `mobile/export/__main__.py`.)

For each cell (width_mult, depth_mult) the standalone sub-network (`subnetwork.extract_subnetwork`,
only the kept heads, neurons and layers) is written as a SavedModel with one signature,
`serving_default` (int32 [1, seq_len] token_ids, segment_ids, padding_mask -> float32 logits),
and converted to TFLite with builtin ops only.

Written to OUT: `w{m_w:.2f}_d{m_d:.2f}.tflite` per cell (each written to a temporary name
and renamed, so an interrupted run keeps the files already finished), `vocab.txt`,
`labels.txt` and `manifest.json`. Each .tflite also carries, as flatbuffer metadata,
`dynabert.json` (cell, task, labels, seq_len, input/output names), `labels.txt` and
`vocab.txt`, so a single file is self-describing; `tflite.read_tflite_metadata` reads
them back. A classification cell's file also outputs `probabilities` (softmax of the
logits; `class_outputs="probabilities"`: those alone) and carries standard TFLite Metadata
(`client_metadata`: tokenizer, vocabulary, readable labels), which MediaPipe Tasks and the
Task Library read; its `labels.txt` and `vocab.txt` are then that metadata's associated
files. The manifest's `clients` says which clients open each file.

The elastic format writes one `elastic.tflite` instead (`elastic_file`): a signature per
cell, named by the cell (`w0.50_d0.75`), plus `{cell}_s{L}` per sequence bucket length L,
with the weights stored once (`shared_weights`). Its manifest entries name the file and
their `signature`; `seq_buckets` maps each length to its signature. Quantization:
dynamic_range, float16 or none.

A model trained with hidden-size cells has cells (w, d, h) named `w0.50_d0.75_h0.75` in its
eval grid: per_cell exports them like the others (the extracted cell has hidden_size = the
kept units), their manifest entries adding `hidden_mult` and `hidden_size`; the elastic
format takes only cells at hidden_mult 1.

Modules:

    directory       export_model: a model dir into OUT, step by step
    model_dir       what an export reads of the model: dir, eval grid, cells, labels, metric
    cells           one standalone model -> one .tflite (a grid cell, a per-layer config)
    tflite          SavedModel, conversion (quantization), ops, flatbuffer metadata
    client_metadata standard TFLite Metadata (MediaPipe's writer) for the clients
    elastic_file    one file, a signature per cell and sequence bucket
    shared_weights  constants stored once in a multi-signature flatbuffer
    manifest        OUT/manifest.json: names, entries, merging, summary
    inputs          encoded inputs: random tokens or a task split (calibration, parity)
"""

from mobile.errors import ExportError
from mobile.export.cells import export_cell, export_layerwise, write_tflite
from mobile.export.directory import FORMATS, check_settings, export_model
from mobile.export.manifest import LABELS, MANIFEST, METADATA_JSON, VOCAB, format_summary
from mobile.export.model_dir import (grid_cells, parse_cells, read_eval_grid,
                                     resolve_model_dir)

__all__ = ["FORMATS", "LABELS", "MANIFEST", "METADATA_JSON", "VOCAB", "ExportError",
           "check_settings", "export_cell", "export_layerwise", "export_model",
           "format_summary", "grid_cells", "parse_cells", "read_eval_grid",
           "resolve_model_dir", "write_tflite"]
