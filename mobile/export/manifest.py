"""OUT/manifest.json of an export: its file names, one entry per cell, merging with an
earlier run's manifest, and the printed summary.

The manifest is the export's record (`mobile.selection`, `mobile.benchmark` and an app's
build script read it): the model and its weights' sha256, task, labels, vocabulary,
seq_len, quantization and, per cell, its file (and signature in an elastic file), size,
sha256, parameters, FLOPs, dims, inputs, outputs, ops, dev metrics and `clients` (which
clients open it: litert, dynabert_runtime, mediapipe_text_classifier,
tflite_task_bert_nl_classifier); the header also names the TFLite Metadata writer
(`standard_metadata`), `class_outputs` and the text normalization an app applies
(`client_text_normalization`).
"""

import json
import os

from dynabert_tf.core import files
from dynabert_tf.core import grid as grid_lib
from dynabert_tf.core import layout
from dynabert_tf.elastic import cost
from mobile import manifest_check
from mobile.errors import ExportError, read_json_object

MANIFEST = layout.MANIFEST
VOCAB = layout.WORDPIECE_VOCAB
LABELS = "labels.txt"
METADATA_JSON = "dynabert.json"


def previous_entries(output_dir, identity):
    """Entries of an existing manifest of the same export (`identity`: model, its weights,
    task, quantization, seq_len) whose files are still the ones they describe (size and
    sha256, `mobile.manifest_check`), so a later run adds cells to an earlier one's; an entry
    whose file is missing, truncated or replaced is dropped (its cell is exported again if
    chosen). ExportError if OUT holds another export: mixing them would leave a manifest of
    two models, or drop the other export's cells and strand their files."""
    path = os.path.join(output_dir, MANIFEST)
    if not os.path.isfile(path):
        return {}
    manifest = {"format": "per_cell", **read_json_object(path, MANIFEST)}  # older: per cell
    differing = [f"{key} {manifest[key]!r} there, {value!r} now"
                 for key, value in identity.items()
                 if manifest.get(key) is not None and value is not None
                 and manifest[key] != value]
    if differing:
        raise ExportError(f"{output_dir} holds another export (" + "; ".join(differing)
                          + "); use another --output_dir")
    cells = manifest.get("cells") or []
    if not isinstance(cells, list) or not all(isinstance(e, dict) and isinstance(
            e.get("cell"), str) and isinstance(e.get("file"), str) for e in cells):
        raise ExportError(f"{path}: 'cells' must be a list of entries with cell and file; "
                          f"use another --output_dir")
    digests = {}
    return {e["cell"]: e for e in cells
            if manifest_check.file_problem(output_dir, e, digests) is None}


def metadata_files(info, labels_bytes, vocab_bytes):
    """{name: bytes} a .tflite file carries as flatbuffer metadata: `info` as dynabert.json,
    labels.txt and (when the model has one) vocab.txt."""
    metadata = {METADATA_JSON: json.dumps(info).encode(), LABELS: labels_bytes}
    if vocab_bytes:
        metadata[VOCAB] = vocab_bytes
    return metadata


def cell_entry(cfg, num_outputs, cell, output_dir, file_name, quantization, seq_len,
               metrics=None):
    """The manifest entry of one exported cell (its file written to OUT/`file_name`).

    Args:
      cfg: the model's `BertConfig`; num_outputs: classes (span heads: 2 positions).
      cell: (width_mult, depth_mult[, hidden_mult]).
      metrics: the cell's dev metrics from the eval grid, or None.
    """
    width_mult, depth_mult, hidden_mult = grid_lib.cell_mults(cell)
    layers, heads, neurons = cost.cell_dims(cfg, width_mult, depth_mult)
    flops = cost.count_flops(cfg, width_mult, depth_mult, seq_len, num_outputs,
                             hidden_mult=hidden_mult)
    path = os.path.join(output_dir, file_name)
    hidden = ({"hidden_mult": hidden_mult, "hidden_size": cost.kept_hidden(cfg, hidden_mult)}
              if hidden_mult != 1.0 else {})
    return {"cell": grid_lib.cell_name(*cell), "width_mult": width_mult,
            "depth_mult": depth_mult, **hidden, "file": file_name, "quantization": quantization,
            "bytes": os.path.getsize(path), "sha256": files.sha256_of(path),
            "params": cost.count_params(cfg, width_mult, depth_mult, num_outputs,
                                        hidden_mult=hidden_mult),
            "flops": flops,
            "flops_ratio": flops / cost.count_flops(cfg, 1.0, 1.0, seq_len, num_outputs),
            "seq_len": seq_len, "num_layers": layers, "num_heads": heads,
            "intermediate_size": neurons, "metrics": metrics}


def write(manifest, entries, available, output_dir):
    """Writes OUT/manifest.json with `entries` ({cell name: entry}) as its cells, in the
    order of `available` (the model's cells)."""
    order = {grid_lib.cell_name(*cell): i for i, cell in enumerate(available)}
    manifest["cells"] = sorted(entries.values(), key=lambda e: order.get(e["cell"], 1e9))
    files.write_json(os.path.join(output_dir, MANIFEST), manifest)


def format_summary(manifest):
    """A table of the manifest's cells: bytes, parameters, GFLOPs and the primary metric."""
    metric = manifest.get("primary_metric")
    width = max([12, *(len(e["cell"]) + 1 for e in manifest["cells"])])
    lines = [f"{'cell':<{width}}{'bytes':>12}{'params':>12}{'GFLOPs':>9}"
             + (f"{metric:>10}" if metric else "")]
    for e in manifest["cells"]:
        value = (e.get("metrics") or {}).get(metric) if metric else None
        lines.append(f"{e['cell']:<{width}}{e['bytes']:>12,}{e['params']:>12,}"
                     f"{e['flops'] / 1e9:>9.3f}"
                     + ((f"{value:>10.4f}" if value is not None else f"{'-':>10}")
                        if metric else ""))
    for f in manifest.get("files") or []:
        lines.append(f"{f['file']}: {f['bytes']:,} bytes, {len(f['signatures'])} signatures "
                     f"(converter wrote {f['converter_bytes']:,})")
    return "\n".join(lines)
