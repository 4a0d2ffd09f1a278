"""Per-cell TFLite files of a trained DynaBERT, or one elastic file, with a manifest.

    python -m mobile.export --model_dir=WORKDIR --output_dir=OUT \
        [--quantization=dynamic_range|float16|int8|int16x8|none] [--seq_len=128] \
        [--cells=all|w0.50_d0.75,...] [--representative_examples=200] \
        [--format=per_cell|elastic [--seq_buckets=32,64]]

For each cell (width_mult, depth_mult) the standalone sub-network (`subnetwork.extract_subnetwork`,
only the kept heads, neurons and layers) is written as a SavedModel with one signature,
`serving_default` (int32 [1, seq_len] token_ids, segment_ids, padding_mask -> float32 logits),
and converted to TFLite with builtin ops only; `mobile.tflite` does both.

`export_cell` writes one cell's file, `export_layerwise` a per-layer sub-network's
(`elastic.layerwise.LayerwiseConfig`), both through `mobile.model_file.write_tflite`.

Written to OUT: `w{m_w:.2f}_d{m_d:.2f}.tflite` per cell (each written to a temporary name
and renamed, so an interrupted run keeps the files already finished), `vocab.txt`,
`labels.txt` and `manifest.json`. Each .tflite also carries, as flatbuffer metadata,
`dynabert.json` (cell, task, labels, seq_len, input/output names), `labels.txt` and
`vocab.txt`, so a single file is self-describing; `mobile.tflite.read_tflite_metadata` reads
them back.

--format=elastic writes one `elastic.tflite` instead (`mobile.elastic`): a signature per cell,
named by the cell (`w0.50_d0.75`), plus `{cell}_s{L}` per --seq_buckets length L, with the
weights stored once. Its manifest entries name the file and their `signature`; `seq_buckets`
maps each length to its signature. Quantization: dynamic_range, float16 or none.

A model trained with hidden-size cells (`--hidden_mults`) has cells (w, d, h) named
`w0.50_d0.75_h0.75` in its eval grid: per_cell exports them like the others (the extracted
cell has hidden_size = the kept units), their manifest entries adding `hidden_mult` and
`hidden_size`; --format=elastic takes only cells at hidden_mult 1.
"""

import hashlib
import json
import logging
import os

from dynabert_tf.core import grid as grid_lib
from dynabert_tf.elastic import cost
from mobile import cli
from dynabert_tf.core import files
from mobile import elastic as elastic_lib
from mobile import inputs as inputs_lib
from mobile import tflite as tflite_lib
# One file per model: a grid cell, or a per-layer sub-network (`mobile.model_file`).
from mobile.model_file import export_cell, export_layerwise  # noqa: F401
from mobile.errors import ExportError

MANIFEST = "manifest.json"
VOCAB = "vocab.txt"
LABELS = "labels.txt"
METADATA_JSON = "dynabert.json"
FORMATS = ("per_cell", "elastic")


# --------------------------------------------------------------------------- model and cells

def resolve_model_dir(path):
    """(model dir holding config.json, directory to search for eval_grid.json).

    `path` is a training workdir (its `final/` is used) or a model directory itself.
    """
    if not path:
        raise ExportError("no model directory given")
    if os.path.isfile(os.path.join(path, "final", "config.json")):
        return os.path.join(path, "final"), path
    if os.path.isfile(os.path.join(path, "config.json")):
        return path, path
    expected = (os.path.join(path, "final", "config.json"), os.path.join(path, "config.json"))
    raise ExportError(f"no trained DynaBERT in {path}: expected {expected[0]} or {expected[1]}")


def read_json_object(path, what):
    """The JSON object in `path`; ExportError naming the file if it is not one."""
    try:
        value = files.read_json(path, what)
    except ValueError as e:
        raise ExportError(str(e)) from None
    if not isinstance(value, dict):
        raise ExportError(f"{path} holds a JSON {type(value).__name__}, not an object")
    return value


def read_eval_grid(model_dir, workdir=None):
    """WORKDIR/eval_grid.json (or one beside / above the model dir), or None."""
    for directory in (workdir, model_dir, os.path.dirname(os.path.abspath(model_dir))):
        path = os.path.join(directory or "", "eval_grid.json")
        if directory and os.path.isfile(path):
            grid = read_json_object(path, "eval_grid.json")
            cells = grid.get("cells") or {}
            if not isinstance(cells, dict) or not all(
                    isinstance(c, dict) and _is_multiplier(c.get("width_mult"))
                    and _is_multiplier(c.get("depth_mult"))
                    and _is_multiplier(c.get("hidden_mult", 1.0)) for c in cells.values()):
                raise ExportError(f"{path}: 'cells' must map cell names to entries with "
                                  f"width_mult and depth_mult (and optional hidden_mult) in "
                                  f"(0, 1]")
            return grid
    return None


def _is_multiplier(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1


def grid_cells(eval_grid=None):
    """The cells a model has (`grid.cell_key` tuples): those of its eval grid when known,
    else the standard grid."""
    if eval_grid and eval_grid.get("cells"):
        cells = [grid_lib.cell_key(float(c["width_mult"]), float(c["depth_mult"]),
                                   float(c.get("hidden_mult", 1.0)))
                 for c in eval_grid["cells"].values()]
        return sorted(cells, key=lambda cell: tuple(
            -m for m in reversed(grid_lib.cell_mults(cell))))
    return grid_lib.grid()


def parse_cells(spec, available):
    """'all' or 'w0.50_d0.75,w1.00_d1.00' -> [(w, d), ...] in grid order ((w, d, h) for a
    hidden-size cell such as 'w0.50_d0.75_h0.75'); ExportError if bad."""
    spec = (spec or "all").strip()
    if spec == "all":
        return list(available)
    names = {grid_lib.cell_name(*cell): cell for cell in available}
    chosen = []
    for name in (part.strip() for part in spec.split(",")):
        try:
            parsed = grid_lib.parse_cell_name(name)
        except ValueError:
            parsed = None
        if parsed is None or grid_lib.cell_name(*parsed) != name:
            raise ExportError(f"bad cell name {name!r} in --cells; expected 'all' or names "
                              f"like 'w0.50_d0.75' (or 'w0.50_d0.75_h0.75')")
        if name not in names:
            raise ExportError(f"cell {name} is not in the model's grid: {', '.join(names)}")
        chosen.append(names[name])
    return [cell for cell in available if cell in chosen]


def labels_of(hf_config, num_classes):
    id2label = hf_config.get("id2label") or {}
    return [str(id2label.get(str(i), id2label.get(i, f"LABEL_{i}"))) for i in range(num_classes)]


# --------------------------------------------------------------------------- whole model

def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _previous_entries(output_dir, identity):
    """Entries of an existing manifest of the same export (`identity`: model, its weights,
    task, quantization, seq_len) whose files still exist, so a later run adds cells to an
    earlier one's. ExportError if OUT holds another export: mixing them would leave a
    manifest of two models, or drop the other export's cells and strand their files."""
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
    return {e["cell"]: e for e in cells if os.path.isfile(os.path.join(output_dir, e["file"]))}


def _representative_inputs(task, vocab_path, seq_len, count, vocab_size, data_dir=None):
    """(inputs, description): `count` training examples of the task, else random tokens."""
    try:
        inputs, _ = inputs_lib.task_inputs(task, "train", vocab_path, seq_len, count, data_dir)
        return inputs, f"{task} train ({len(inputs['token_ids'])} examples)"
    except Exception as e:  # no data module, unknown task, no files: say so, go on
        reason = f"{type(e).__name__}: {e}".splitlines()[0]
        logging.warning("calibration on random tokens: %s train data unavailable (%s)",
                        task, reason)
        return (inputs_lib.random_token_inputs(count, seq_len, vocab_size),
                f"random tokens ({count}; {task!r} train data unavailable: {reason})")


def _task_metric(task):
    """The task registry's primary metric, or None (unknown task / no data module)."""
    try:
        from dynabert_tf import data
        return data.get_task(task).primary_metric
    except Exception:  # noqa: BLE001 - optional information
        return None


def export_model(model_dir, output_dir, quantization="dynamic_range", seq_len=128, cells="all",
                 representative_examples=200, progress=True, data_dir=None,
                 export_format="per_cell", seq_buckets=()):
    """Exports the chosen cells of a trained DynaBERT; returns the manifest (also written).

    Args:
      model_dir: a training workdir (uses its `final/`) or an HF-style model dir.
      cells: "all", a comma-separated list of cell names, or a list of (w, d).
      data_dir: the task's data, when it is not built in (int8 / int16x8 calibration only).
      export_format: "per_cell" (a file per cell) or "elastic" (one file, a signature each).
      seq_buckets: elastic only: shorter lengths ("32,64" or ints), a signature per cell each.
    """
    if export_format not in FORMATS:
        raise ExportError(f"--format must be one of {', '.join(FORMATS)}, got "
                          f"{export_format!r}")
    if quantization not in tflite_lib.QUANTIZATIONS:
        raise ExportError(f"unknown quantization {quantization!r}; expected one of "
                          f"{', '.join(tflite_lib.QUANTIZATIONS)}")
    if not isinstance(seq_len, int) or seq_len < 3:
        raise ExportError(f"seq_len must be an integer >= 3, got {seq_len!r}")
    buckets = elastic_lib.parse_seq_buckets(seq_buckets, seq_len)
    if buckets and export_format != "elastic":
        raise ExportError("--seq_buckets needs --format=elastic")
    if export_format == "elastic" and quantization not in elastic_lib.QUANTIZATIONS:
        raise ExportError(f"--quantization={quantization} is not available with "
                          f"--format=elastic; use one of {', '.join(elastic_lib.QUANTIZATIONS)}")
    if quantization in tflite_lib.CALIBRATED and representative_examples < 1:
        raise ExportError(f"representative_examples must be at least 1 for {quantization}, "
                          f"got {representative_examples}")
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ExportError(f"--output_dir {output_dir} is a file, not a directory")
    model_path, workdir = resolve_model_dir(model_dir)
    eval_grid = read_eval_grid(model_path, workdir)
    available = grid_cells(eval_grid)
    chosen = parse_cells(cells, available) if isinstance(cells, str) else list(cells)

    hf_config = read_json_object(os.path.join(model_path, "config.json"), "config.json")
    max_positions = hf_config.get("max_position_embeddings", seq_len)
    if isinstance(max_positions, int) and seq_len > max_positions:
        raise ExportError(f"seq_len {seq_len} exceeds the model's max_position_embeddings "
                          f"{max_positions}")
    task = hf_config.get("finetuning_task") or (eval_grid or {}).get("task")
    model_abs = os.path.abspath(model_path)
    weights = os.path.join(model_path, "model.safetensors")
    identity = {"model_dir": model_abs, "model_sha256": _sha256(weights)
                if os.path.isfile(weights) else None, "task": task,
                "quantization": quantization, "seq_len": seq_len, "format": export_format,
                "seq_buckets": list(buckets) if export_format == "elastic" else None}
    entries = _previous_entries(output_dir, identity)  # before anything is written

    from dynabert_tf.io import checkpoint

    model = checkpoint.load_task_model(model_path)
    cfg, num_classes = model.bert_config, model.num_outputs  # classes; span: 2 positions
    # Class names of a classification head; a span head's outputs are token positions.
    labels = labels_of(hf_config, num_classes) if model.head.kind != "span" else []

    os.makedirs(output_dir, exist_ok=True)
    vocab_src = os.path.join(model_path, VOCAB)
    vocab_bytes = b""
    if os.path.isfile(vocab_src):
        with open(vocab_src, "rb") as f:
            vocab_bytes = f.read()
        files.write_atomic(os.path.join(output_dir, VOCAB), vocab_bytes)
    else:
        logging.warning("%s has no %s; the TFLite files will carry no vocabulary",
                        model_path, VOCAB)
    labels_bytes = ("\n".join(labels) + "\n").encode() if labels else b""
    files.write_atomic(os.path.join(output_dir, LABELS), labels_bytes)

    representative, representative_note = None, None
    if quantization in tflite_lib.CALIBRATED:
        representative, representative_note = _representative_inputs(
            task, vocab_src, seq_len, representative_examples, cfg.vocab_size, data_dir)

    grid_entries = (eval_grid or {}).get("cells", {})
    manifest = {
        "model_dir": model_abs, "model_sha256": identity["model_sha256"], "task": task,
        "primary_metric": (eval_grid or {}).get("primary_metric") or _task_metric(task),
        "eval_grid_model": (eval_grid or {}).get("model"),
        "labels": labels, "labels_file": LABELS,
        "vocab": VOCAB if vocab_bytes else None,
        "vocab_sha256": hashlib.sha256(vocab_bytes).hexdigest() if vocab_bytes else None,
        "seq_len": seq_len, "quantization": quantization,
        "representative_data": representative_note,
        "signature": tflite_lib.SIGNATURE, "format": export_format, "cells": [],
    }
    flops_full = cost.count_flops(cfg, 1.0, 1.0, seq_len, num_classes)

    def cell_entry(cell, file_name):
        width_mult, depth_mult, hidden_mult = grid_lib.cell_mults(cell)
        layers, heads, neurons = cost.cell_dims(cfg, width_mult, depth_mult)
        name = grid_lib.cell_name(*cell)
        flops = cost.count_flops(cfg, width_mult, depth_mult, seq_len, num_classes,
                                 hidden_mult=hidden_mult)
        path = os.path.join(output_dir, file_name)
        hidden = ({"hidden_mult": hidden_mult, "hidden_size": cost.kept_hidden(cfg, hidden_mult)}
                  if hidden_mult != 1.0 else {})
        return {"cell": name, "width_mult": width_mult, "depth_mult": depth_mult, **hidden,
                "file": file_name, "quantization": quantization,
                "bytes": os.path.getsize(path), "sha256": _sha256(path),
                "params": cost.count_params(cfg, width_mult, depth_mult, num_classes,
                                            hidden_mult=hidden_mult),
                "flops": flops, "flops_ratio": flops / flops_full, "seq_len": seq_len,
                "num_layers": layers, "num_heads": heads, "intermediate_size": neurons,
                "metrics": (grid_entries.get(name) or {}).get("metrics")}

    if export_format == "elastic":
        if not chosen:
            raise ExportError("--format=elastic needs at least one cell")
        hidden_cells = [grid_lib.cell_name(*cell) for cell in chosen if len(cell) == 3]
        if hidden_cells:
            raise ExportError(f"--format=elastic takes cells at hidden_mult 1 only, got "
                              f"{', '.join(hidden_cells)}; export them with --format=per_cell")
        manifest.update(signature=None, seq_buckets=list(buckets))
        info = {"format": "elastic", "task": task, "labels": labels, "seq_len": seq_len,
                "seq_buckets": list(buckets), "quantization": quantization,
                "inputs": list(tflite_lib.INPUT_NAMES),
                "outputs": list(model.head.output_names),
                "vocab_sha256": manifest["vocab_sha256"],
                "signatures": elastic_lib.signatures(chosen, seq_len, buckets)}
        metadata = {METADATA_JSON: json.dumps(info).encode(), LABELS: labels_bytes}
        if vocab_bytes:
            metadata[VOCAB] = vocab_bytes
        written = elastic_lib.export_elastic(
            model, chosen, os.path.join(output_dir, elastic_lib.FILE_NAME), seq_len, buckets,
            quantization, metadata)
        signatures = written["signatures"]
        entries.clear()  # the file was written anew: only its signatures
        for width_mult, depth_mult in chosen:
            name = grid_lib.cell_name(width_mult, depth_mult)
            entry = cell_entry((width_mult, depth_mult), elastic_lib.FILE_NAME)
            entry.update(signature=name, inputs=signatures[name]["inputs"],
                         outputs=signatures[name]["outputs"], ops=written["ops"],
                         seq_buckets={str(length): elastic_lib.signature_name(
                             name, length, seq_len) for length in buckets})
            entries[name] = entry
        manifest["files"] = [{
            "file": elastic_lib.FILE_NAME, "bytes": written["bytes"],
            "sha256": _sha256(os.path.join(output_dir, elastic_lib.FILE_NAME)),
            "converter_bytes": written["converter_bytes"], "weight_sharing": written["sharing"],
            "signatures": {k: {key: v[key] for key in ("cell", "seq_len")}
                           for k, v in signatures.items()}}]

    def write_manifest():
        order = {grid_lib.cell_name(*cell): i for i, cell in enumerate(available)}
        manifest["cells"] = sorted(entries.values(), key=lambda e: order.get(e["cell"], 1e9))
        files.write_json(os.path.join(output_dir, MANIFEST), manifest)

    bar = cli.progress(chosen if export_format == "per_cell" else [], progress)
    try:
        for cell in bar:
            width_mult, depth_mult, hidden_mult = grid_lib.cell_mults(cell)
            name = grid_lib.cell_name(*cell)
            if hasattr(bar, "set_postfix_str"):
                bar.set_postfix_str(name)
            info = {"cell": name, "width_mult": width_mult, "depth_mult": depth_mult,
                    **({"hidden_mult": hidden_mult} if hidden_mult != 1.0 else {}),
                    "task": task, "labels": labels, "seq_len": seq_len,
                    "quantization": quantization,
                    "inputs": list(tflite_lib.INPUT_NAMES),
                    "outputs": list(model.head.output_names),
                    "vocab_sha256": manifest["vocab_sha256"]}
            metadata = {METADATA_JSON: json.dumps(info).encode(), LABELS: labels_bytes}
            if vocab_bytes:
                metadata[VOCAB] = vocab_bytes
            file_name = f"{name}.tflite"
            written = export_cell(model, width_mult, depth_mult,
                                  os.path.join(output_dir, file_name), seq_len, quantization,
                                  representative, metadata, hidden_mult)
            entries[name] = {**cell_entry(cell, file_name),
                             "inputs": written["inputs"], "outputs": written["outputs"],
                             "ops": written["ops"]}
            write_manifest()
    finally:
        if hasattr(bar, "close"):
            bar.close()  # an error line starts on a line of its own
    if not chosen or export_format == "elastic":
        write_manifest()
    return manifest


def format_summary(manifest):
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


# --------------------------------------------------------------------------- entry point

def _define_flags(flag_values):
    from absl import flags

    define = {"flag_values": flag_values}
    flags.DEFINE_string("model_dir", None, "Training workdir (uses WORKDIR/final) or a model "
                        "directory with config.json.", **define)
    flags.DEFINE_string("output_dir", None, "Where the .tflite files and manifest.json go.",
                        **define)
    flags.DEFINE_string("quantization", "dynamic_range",
                        "One of " + ", ".join(tflite_lib.QUANTIZATIONS), **define)
    flags.DEFINE_integer("seq_len", 128, "Static sequence length of the exported inputs.",
                         **define)
    flags.DEFINE_string("cells", "all", "'all' or comma-separated cell names (w0.50_d0.75,...).",
                        **define)
    flags.DEFINE_integer("representative_examples", 200,
                         "Training examples used to calibrate int8 / int16x8 quantization.",
                         **define)
    flags.DEFINE_string("data_dir", None, "Task data (GLUE tasks); built-in tasks need none.",
                        **define)
    flags.DEFINE_enum("format", "per_cell", list(FORMATS), "per_cell: one .tflite per cell; "
                      "elastic: one elastic.tflite with a signature per cell, weights stored "
                      "once.", **define)
    flags.DEFINE_string("seq_buckets", "", "With --format=elastic: shorter sequence lengths "
                        "(e.g. 32,64), each a signature {cell}_s{L} per cell.", **define)


def main(argv, flags_values):
    cli.check_arguments(argv, flags_values, "model_dir", "output_dir")
    manifest = export_model(flags_values.model_dir, flags_values.output_dir,
                            flags_values.quantization, flags_values.seq_len,
                            flags_values.cells, flags_values.representative_examples,
                            data_dir=flags_values.data_dir, export_format=flags_values.format,
                            seq_buckets=flags_values.seq_buckets)
    print(format_summary(manifest))
    print(f"wrote {len(manifest['cells'])} cells to {flags_values.output_dir}/{MANIFEST}")


if __name__ == "__main__":
    cli.run_main(main, _define_flags)
