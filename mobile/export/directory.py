"""The export of a trained DynaBERT into OUT: the chosen cells' .tflite files (or one
elastic file), vocab.txt, labels.txt and manifest.json (`mobile.export` describes them).

`export_model` is the whole run; its steps are the functions below, in order: check the
settings, read the model dir (`Source`), lock OUT (`core.locks.output_lock`: a second export
into it is refused in one line), write the side files, then export per cell
(`export_per_cell`, the manifest written after every file) or one elastic file
(`export_elastic`). Every file is written atomically; scratch SavedModels live in OUT's hidden
temporaries, never in the system temp dir.
"""

import dataclasses
import logging
import os

from dynabert_tf.core import files
from dynabert_tf.core import grid as grid_lib
from dynabert_tf.core import layout, locks
from dynabert_tf.core import progress as progress_lib
import mobile.export.cells as cells_lib
import mobile.export.client_metadata as client_lib
import mobile.export.elastic_file as elastic_lib
import mobile.export.inputs as inputs_lib
import mobile.export.manifest as manifest_lib
import mobile.export.model_dir as model_dir_lib
import mobile.export.tflite as tflite_lib
from mobile.errors import ExportError

FORMATS = ("per_cell", "elastic")


def check_settings(output_dir, quantization, seq_len, representative_examples,
                   export_format, seq_buckets, class_outputs="both"):
    """The parsed sequence buckets; ExportError naming the first bad setting."""
    if class_outputs not in client_lib.CLASS_OUTPUTS:
        raise ExportError(f"--class_outputs must be one of "
                          f"{', '.join(client_lib.CLASS_OUTPUTS)}, got {class_outputs!r}")
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
    return buckets


@dataclasses.dataclass(frozen=True)
class Source:
    """The trained model an export reads: its dir, eval grid, cells and config.json."""

    path: str
    eval_grid: dict
    available: list  # the model's cells, in grid order
    hf_config: dict
    task: str

    @classmethod
    def read(cls, model_dir, seq_len):
        """The model of `model_dir` (a workdir or a model dir); ExportError if `seq_len`
        exceeds its positions."""
        path, workdir = model_dir_lib.resolve_model_dir(model_dir)
        eval_grid = model_dir_lib.read_eval_grid(path, workdir)
        hf_config = model_dir_lib.read_config(path)
        max_positions = hf_config.get("max_position_embeddings", seq_len)
        if isinstance(max_positions, int) and seq_len > max_positions:
            raise ExportError(f"seq_len {seq_len} exceeds the model's max_position_embeddings "
                              f"{max_positions}")
        return cls(path, eval_grid, model_dir_lib.grid_cells(eval_grid), hf_config,
                   model_dir_lib.task_of(hf_config, eval_grid))

    @property
    def weights_sha256(self):
        weights = os.path.join(self.path, layout.WEIGHTS)
        return files.sha256_of(weights) if os.path.isfile(weights) else None

    def cell_metrics(self, name):
        return (((self.eval_grid or {}).get("cells") or {}).get(name) or {}).get("metrics")


def check_elastic_cells(chosen):
    """ExportError unless `chosen` holds cells, all at hidden_mult 1."""
    if not chosen:
        raise ExportError("--format=elastic needs at least one cell")
    hidden_cells = [grid_lib.cell_name(*cell) for cell in chosen if len(cell) == 3]
    if hidden_cells:
        raise ExportError(f"--format=elastic takes cells at hidden_mult 1 only, got "
                          f"{', '.join(hidden_cells)}; export them with --format=per_cell")


def write_side_files(model_path, output_dir, labels):
    """(labels bytes, vocab bytes) written to OUT/labels.txt (empty for a span head) and
    OUT/vocab.txt (when the model has one)."""
    os.makedirs(output_dir, exist_ok=True)
    vocab_src = os.path.join(model_path, manifest_lib.VOCAB)
    vocab_bytes = b""
    if os.path.isfile(vocab_src):
        with open(vocab_src, "rb") as f:
            vocab_bytes = f.read()
        files.write_atomic(os.path.join(output_dir, manifest_lib.VOCAB), vocab_bytes)
    else:
        logging.warning("%s has no %s; the TFLite files will carry no vocabulary",
                        model_path, manifest_lib.VOCAB)
    labels_bytes = ("\n".join(labels) + "\n").encode() if labels else b""
    files.write_atomic(os.path.join(output_dir, manifest_lib.LABELS), labels_bytes)
    return labels_bytes, vocab_bytes


def representative_inputs(task, vocab_path, seq_len, count, vocab_size, data_dir=None):
    """(inputs, description): `count` training examples of the task, else random tokens."""
    inputs, reason = inputs_lib.task_or_random_inputs(task, "train", vocab_path, seq_len, count,
                                                      vocab_size, data_dir)
    if reason is None:
        return inputs, f"{task} train ({len(inputs['token_ids'])} examples)"
    logging.warning("calibration on random tokens: %s train data unavailable (%s)", task, reason)
    return inputs, f"random tokens ({count}; {task!r} train data unavailable: {reason})"


@dataclasses.dataclass(frozen=True)
class Target:
    """What every file of one export shares: where it goes, how it is converted, what it
    carries as metadata (labels.txt, vocab.txt and its sha256)."""

    output_dir: str
    quantization: str
    seq_len: int
    task: str
    labels: list
    labels_bytes: bytes
    vocab_bytes: bytes
    vocab_sha256: str
    head_kind: str = "classification"
    weights_sha256: str = None
    class_outputs: str = "both"  # client_metadata.CLASS_OUTPUTS

    @property
    def standard_metadata(self):
        """Whether per-cell files carry TFLite Metadata (`client_metadata`): classification
        and span heads, with a vocabulary."""
        return bool(self.vocab_bytes) and self.head_kind in ("classification", "span")

    @property
    def probabilities(self):
        """`tflite.output_names`' `probabilities`: per-cell classification files output
        them beside the logits (True), or alone ("only")."""
        if self.head_kind != "classification":
            return False
        return "only" if self.class_outputs == "probabilities" else True

    def metadata(self, model, head, seq_buckets=None, tail=None, outputs=None,
                 side_files=True):
        """The flatbuffer metadata of a file: dynabert.json holds `head` (the cell, or the
        format), the task, labels, seq_len, [`seq_buckets`], quantization, the model's inputs
        and `outputs` (default: the head's), the vocabulary's sha256 and `tail` (an elastic
        file's signatures); labels.txt and vocab.txt too unless not `side_files` (a file
        whose TFLite Metadata carries them)."""
        info = {**head, "task": self.task, "labels": self.labels, "seq_len": self.seq_len}
        if seq_buckets is not None:
            info["seq_buckets"] = list(seq_buckets)
        info.update({"quantization": self.quantization, "inputs": list(tflite_lib.INPUT_NAMES),
                     "outputs": list(outputs or model.head.output_names),
                     "vocab_sha256": self.vocab_sha256, **(tail or {})})
        if not side_files:
            return {manifest_lib.METADATA_JSON: manifest_lib.metadata_files(
                info, b"", b"")[manifest_lib.METADATA_JSON]}
        return manifest_lib.metadata_files(info, self.labels_bytes, self.vocab_bytes)

    def client_metadata(self, cell_name, width_mult, depth_mult):
        """The function that writes a per-cell file's TFLite Metadata, or None."""
        if not self.standard_metadata:
            return None
        general = {
            "name": f"DynaBERT {self.task or 'model'} {cell_name}",
            "description": (
                f"DynaBERT sub-network {cell_name} (width {width_mult:g}, depth "
                f"{depth_mult:g}) for {self.task or 'text'}; BERT WordPiece input of "
                f"{self.seq_len} tokens, uncased: strip accents before classifying "
                f"(NFD, drop marks). " + (
                    ("Output: probability (softmax) per label."
                     if self.class_outputs == "probabilities" else
                     "Outputs: probability (softmax) and logits per label.")
                    if self.head_kind == "classification" else
                    "Outputs: start_logits, end_logits per token.")),
            "version": (f"weights sha256 {self.weights_sha256[:16]}"
                        if self.weights_sha256 else None),
            "author": "DynaBERT-TF"}
        vocab, labels = self.vocab_bytes, self.labels
        if self.head_kind == "span":
            return lambda tflite, outputs: client_lib.span_metadata(tflite, vocab, outputs,
                                                                    general)
        return lambda tflite, outputs: client_lib.classifier_metadata(tflite, vocab, labels,
                                                                      outputs, general)

    @property
    def clients(self):
        """The clients that open this export's per-cell files (the manifest's `clients`)."""
        return client_lib.per_cell_clients(self.head_kind, self.class_outputs,
                                           self.quantization, self.standard_metadata,
                                           self.seq_len)

    def cell_entry(self, model, cell, file_name, metrics):
        return manifest_lib.cell_entry(model.bert_config, model.num_outputs, cell,
                                       self.output_dir, file_name, self.quantization,
                                       self.seq_len, metrics)


def prepare_target(model, source, output_dir, quantization, seq_len, class_outputs="both"):
    """The `Target` of an export, its labels.txt and vocab.txt written to OUT."""
    # Class names of a classification head; a span head's outputs are token positions.
    labels = (model_dir_lib.labels_of(source.hf_config, model.num_outputs, source.task)
              if model.head.kind != "span" else [])
    labels_bytes, vocab_bytes = write_side_files(source.path, output_dir, labels)
    vocab_sha256 = (files.sha256_of(os.path.join(output_dir, manifest_lib.VOCAB))
                    if vocab_bytes else None)
    return Target(output_dir, quantization, seq_len, source.task, labels, labels_bytes,
                  vocab_bytes, vocab_sha256, model.head.kind, source.weights_sha256,
                  class_outputs)


def new_manifest(source, target, identity, representative_note, export_format):
    """The manifest's header (its cells are added as they are written)."""
    return {
        "model_dir": identity["model_dir"], "model_sha256": identity["model_sha256"],
        "task": source.task,
        "primary_metric": model_dir_lib.primary_metric(source.eval_grid, source.task),
        "eval_grid_model": (source.eval_grid or {}).get("model"),
        "labels": target.labels, "labels_file": manifest_lib.LABELS,
        "vocab": manifest_lib.VOCAB if target.vocab_bytes else None,
        "vocab_sha256": target.vocab_sha256,
        "seq_len": target.seq_len, "quantization": target.quantization,
        "representative_data": representative_note,
        "signature": tflite_lib.SIGNATURE, "format": export_format,
        "standard_metadata": (client_lib.writer_version() if export_format == "per_cell"
                              and target.standard_metadata else None),
        "client_text_normalization": client_lib.CLIENT_NORMALIZATION,
        "class_outputs": (target.class_outputs if export_format == "per_cell"
                          and target.head_kind == "classification" else None),
        "cells": [],
    }


def export_per_cell(model, source, target, chosen, representative, write_manifest,
                    progress=True):
    """Writes OUT/{cell}.tflite per chosen cell, each followed by `write_manifest(entry)`."""
    bar = progress_lib.bar(len(chosen), progress, desc="export", unit="cell")
    try:
        for cell in chosen:
            width_mult, depth_mult, hidden_mult = grid_lib.cell_mults(cell)
            name = grid_lib.cell_name(*cell)
            if bar is not None:
                bar.set_postfix_str(name)
            hidden = {"hidden_mult": hidden_mult} if hidden_mult != 1.0 else {}
            outputs = tflite_lib.output_names(model, target.probabilities)
            metadata = target.metadata(model, {"cell": name, "width_mult": width_mult,
                                               "depth_mult": depth_mult, **hidden},
                                       outputs=outputs,
                                       side_files=not target.standard_metadata)
            file_name = f"{name}.tflite"
            written = cells_lib.export_cell(
                model, width_mult, depth_mult, os.path.join(target.output_dir, file_name),
                target.seq_len, target.quantization, representative, metadata, hidden_mult,
                probabilities=target.probabilities,
                standard_metadata=target.client_metadata(name, width_mult, depth_mult))
            write_manifest({**target.cell_entry(model, cell, file_name,
                                                source.cell_metrics(name)),
                            "inputs": written["inputs"], "outputs": written["outputs"],
                            "ops": written["ops"], "clients": target.clients})
            progress_lib.advance(bar)
    finally:
        progress_lib.close(bar)  # an error line starts on a line of its own


def export_elastic(model, source, target, chosen, buckets):
    """Writes OUT/elastic.tflite; ({cell name: entry}, the manifest's "files" list)."""
    signatures = elastic_lib.signatures(chosen, target.seq_len, buckets)
    metadata = target.metadata(model, {"format": "elastic"}, seq_buckets=buckets,
                               tail={"signatures": signatures})
    written = elastic_lib.export_elastic(
        model, chosen, os.path.join(target.output_dir, elastic_lib.FILE_NAME), target.seq_len,
        buckets, target.quantization, metadata)
    signatures = written["signatures"]
    entries = {}
    for width_mult, depth_mult in chosen:
        name = grid_lib.cell_name(width_mult, depth_mult)
        entry = target.cell_entry(model, (width_mult, depth_mult), elastic_lib.FILE_NAME,
                                  source.cell_metrics(name))
        entry.update(signature=name, clients=list(client_lib.ELASTIC_CLIENTS),
                     inputs=signatures[name]["inputs"],
                     outputs=signatures[name]["outputs"], ops=written["ops"],
                     seq_buckets={str(length): elastic_lib.signature_name(
                         name, length, target.seq_len) for length in buckets})
        entries[name] = entry
    file_entries = [{
        "file": elastic_lib.FILE_NAME, "bytes": written["bytes"],
        "clients": list(client_lib.ELASTIC_CLIENTS),
        "sha256": files.sha256_of(os.path.join(target.output_dir, elastic_lib.FILE_NAME)),
        "converter_bytes": written["converter_bytes"], "weight_sharing": written["sharing"],
        "signatures": {k: {key: v[key] for key in ("cell", "seq_len")}
                       for k, v in signatures.items()}}]
    return entries, file_entries


def export_model(model_dir, output_dir, quantization="dynamic_range", seq_len=128, cells="all",
                 representative_examples=200, progress=True, data_dir=None,
                 export_format="per_cell", seq_buckets=(), class_outputs="both"):
    """Exports the chosen cells of a trained DynaBERT; returns the manifest (also written).

    Args:
      model_dir: a training workdir (uses its `final/`) or an HF-style model dir.
      cells: "all", a comma-separated list of cell names, or a list of (w, d).
      data_dir: the task's data, when it is not built in (int8 / int16x8 calibration only).
      export_format: "per_cell" (a file per cell) or "elastic" (one file, a signature each).
      seq_buckets: elastic only: shorter lengths ("32,64" or ints), a signature per cell each.
      class_outputs: per-cell classification files output "both" the logits and
        `probabilities` (their softmax; MediaPipe's `classifications[0]`), or "probabilities"
        alone (also for the Task Library's BertNLClassifier, which takes one output).
    """
    buckets = check_settings(output_dir, quantization, seq_len, representative_examples,
                             export_format, seq_buckets, class_outputs)
    source = Source.read(model_dir, seq_len)
    chosen = (model_dir_lib.parse_cells(cells, source.available) if isinstance(cells, str)
              else list(cells))
    if export_format == "elastic":
        check_elastic_cells(chosen)
    identity = {"model_dir": os.path.abspath(source.path),
                "model_sha256": source.weights_sha256, "task": source.task,
                "quantization": quantization, "seq_len": seq_len, "format": export_format,
                "seq_buckets": list(buckets) if export_format == "elastic" else None,
                "class_outputs": class_outputs if export_format == "per_cell" else None}
    # One export at a time writes OUT; what a killed one left (scratch SavedModels, partial
    # files) is cleared once the lock is held.
    with locks.output_lock(output_dir, "mobile.export", "--output_dir"):
        return _write_export(source, output_dir, identity, chosen, buckets, quantization,
                             seq_len, representative_examples, progress, data_dir,
                             export_format, class_outputs)


def _write_export(source, output_dir, identity, chosen, buckets, quantization, seq_len,
                  representative_examples, progress, data_dir, export_format, class_outputs):
    """`export_model`'s writing half, under OUT's lock; returns the manifest."""
    entries = manifest_lib.previous_entries(output_dir, identity)  # before anything is written

    from dynabert_tf import precision
    from dynabert_tf.io import checkpoint

    with precision.policy("float32"):  # exports are float32 whatever the global policy
        model = checkpoint.load_task_model(source.path)
    target = prepare_target(model, source, output_dir, quantization, seq_len, class_outputs)
    representative, representative_note = None, None
    if quantization in tflite_lib.CALIBRATED:
        representative, representative_note = representative_inputs(
            source.task, os.path.join(source.path, manifest_lib.VOCAB), seq_len,
            representative_examples, model.bert_config.vocab_size, data_dir)
    manifest = new_manifest(source, target, identity, representative_note, export_format)

    def write_manifest(entry=None):
        if entry is not None:
            entries[entry["cell"]] = entry
        manifest_lib.write(manifest, entries, source.available, output_dir)

    if export_format == "elastic":
        manifest.update(signature=None, seq_buckets=list(buckets))
        new_entries, manifest["files"] = export_elastic(model, source, target, chosen, buckets)
        entries.clear()  # the file was written anew: only its signatures
        entries.update(new_entries)
    else:
        export_per_cell(model, source, target, chosen, representative, write_manifest,
                        progress)
    if not chosen or export_format == "elastic":
        write_manifest()
    return manifest
