"""Per-cell TFLite files of a trained DynaBERT, with a manifest.

    python -m mobile.export --model_dir=WORKDIR --output_dir=OUT \
        [--quantization=dynamic_range|float16|int8|none] [--seq_len=128] \
        [--cells=all|w0.50_d0.75,...] [--representative_examples=200]

For each cell (width_mult, depth_mult) the standalone sub-network (`subnetwork.extract_subnetwork`,
only the kept heads, neurons and layers) is exported with `keras.export.ExportArchive` to a
SavedModel with one signature, `serving_default`:

    inputs  token_ids, segment_ids, padding_mask   int32 [1, seq_len]
    outputs logits                                 float32 [1, num_labels]

and converted with `tf.lite.TFLiteConverter.from_saved_model`, TFLite builtin ops only (a model
that would need TensorFlow "Flex" ops is an error naming those ops). The exact-erf GELU of
the Hugging Face checkpoints becomes the builtin GELU op.

Written to OUT: `w{m_w:.2f}_d{m_d:.2f}.tflite` per cell (each written to a temporary name
and renamed, so an interrupted run keeps the files already finished), `vocab.txt`,
`labels.txt` and `manifest.json`. Each .tflite also carries, as flatbuffer metadata,
`dynabert.json` (cell, task, labels, seq_len, input/output names), `labels.txt` and
`vocab.txt`, so a single file is self-describing; `read_tflite_metadata` reads them back.
"""

import hashlib
import json
import logging
import os
import re
import sys
import tempfile

import numpy as np

from dynabert_tf import config as config_lib
from dynabert_tf import cost

QUANTIZATIONS = ("dynamic_range", "float16", "int8", "none")
INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")
OUTPUT_NAME = "logits"
SIGNATURE = "serving_default"
MANIFEST = "manifest.json"
VOCAB = "vocab.txt"
LABELS = "labels.txt"
METADATA_JSON = "dynabert.json"


class ExportError(ValueError):
    """A user-facing export problem; its message is one line."""


# --------------------------------------------------------------------------- inputs and cells

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


def read_eval_grid(model_dir, workdir=None):
    """WORKDIR/eval_grid.json (or one beside / above the model dir), or None."""
    for directory in (workdir, model_dir, os.path.dirname(os.path.abspath(model_dir))):
        if directory and os.path.isfile(os.path.join(directory, "eval_grid.json")):
            with open(os.path.join(directory, "eval_grid.json")) as f:
                return json.load(f)
    return None


def grid_cells(eval_grid=None):
    """The cells a model has: those of its eval grid when known, else the standard grid."""
    if eval_grid and eval_grid.get("cells"):
        cells = [(float(c["width_mult"]), float(c["depth_mult"]))
                 for c in eval_grid["cells"].values()]
        return sorted(cells, key=lambda wd: (-wd[1], -wd[0]))
    return config_lib.grid()


def parse_cells(spec, available):
    """'all' or 'w0.50_d0.75,w1.00_d1.00' -> [(w, d), ...] in grid order; ExportError if bad."""
    spec = (spec or "all").strip()
    if spec == "all":
        return list(available)
    names = {config_lib.cell_name(w, d): (w, d) for w, d in available}
    chosen = []
    for name in (part.strip() for part in spec.split(",")):
        try:
            parsed = config_lib.parse_cell_name(name)
        except ValueError:
            parsed = None
        if parsed is None or config_lib.cell_name(*parsed) != name:
            raise ExportError(f"bad cell name {name!r} in --cells; expected 'all' or names "
                              f"like 'w0.50_d0.75'")
        if name not in names:
            raise ExportError(f"cell {name} is not in the model's grid: {', '.join(names)}")
        chosen.append(names[name])
    return [cell for cell in available if cell in chosen]


def labels_of(hf_config, num_classes):
    id2label = hf_config.get("id2label") or {}
    return [str(id2label.get(str(i), id2label.get(i, f"LABEL_{i}"))) for i in range(num_classes)]


def random_token_inputs(count, seq_len, vocab_size, seed=0):
    """`count` random single-segment examples, int32 [count, seq_len], variable length."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(1000 if vocab_size > 2000 else 1, vocab_size,
                             size=(count, seq_len)).astype("int32")
    padding_mask = np.ones((count, seq_len), "int32")
    for row, length in enumerate(rng.integers(min(8, seq_len), seq_len + 1, size=count)):
        padding_mask[row, length:] = 0
        token_ids[row, length:] = 0
    return {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
            "padding_mask": padding_mask}


def task_inputs(task, split, vocab_path, seq_len, limit, data_dir=None):
    """Encoded examples of a task split: (dict of int32 [n, seq_len], labels [n]).

    `split` "dev" means the task's first dev split (MNLI: dev_matched).

    Raises an exception (ImportError, ValueError, FileNotFoundError, ...) when the task's data
    is not available; callers fall back to random tokens and say so.
    """
    import tensorflow as tf
    from dynabert_tf import data, tokenization

    task = data.get_task(task)
    if split == "dev":
        split = task.dev_splits[0]
    examples = data.load_examples(task, split, data_dir=data_dir)[:limit]
    if not examples:
        raise ValueError(f"task {task!r} has no {split} examples")
    encoder = tokenization.BertInputEncoder(vocab_path, seq_len)
    text_a = tf.constant([e.text_a for e in examples])
    if any(e.text_b is not None for e in examples):
        features = encoder(text_a, tf.constant([e.text_b or "" for e in examples]))
    else:
        features = encoder(text_a)
    return ({k: np.asarray(v, "int32") for k, v in features.items()},
            np.asarray([e.label for e in examples]))


# --------------------------------------------------------------------------- conversion

def to_saved_model(classifier_cell, path, seq_len):
    """Writes `classifier_cell` as a SavedModel with the `serving_default` signature."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(classifier_cell)

    def serve(token_ids, segment_ids, padding_mask):
        inputs = {"token_ids": token_ids, "segment_ids": segment_ids,
                  "padding_mask": padding_mask}
        return {OUTPUT_NAME: classifier_cell(inputs, training=False)}

    archive.add_endpoint(SIGNATURE, serve, input_signature=[
        tf.TensorSpec([1, seq_len], tf.int32, name=name) for name in INPUT_NAMES])
    archive.write_out(path, verbose=False)
    return path


def _flex_ops_in(message):
    ops = set(re.findall(r"'(tf\.[A-Za-z0-9_]+)' op is neither a custom op nor a flex op",
                         message))
    for line in re.findall(r"Flex ops: ([^\n]*)", message):
        ops.update(op.strip() for op in line.split(","))
    return sorted(op for op in ops if op)


def convert_saved_model(saved_model_dir, quantization, representative_inputs=None):
    """SavedModel -> TFLite flatbuffer bytes, builtin ops only.

    Args:
      quantization: one of QUANTIZATIONS.
      representative_inputs: for "int8", a dict of int32 [n, seq_len] arrays (one example
        at a time is fed to the calibrator).
    """
    import tensorflow as tf
    from tensorflow.lite.python.convert_phase import ConverterError

    if quantization not in QUANTIZATIONS:
        raise ExportError(f"unknown quantization {quantization!r}; expected one of "
                          f"{', '.join(QUANTIZATIONS)}")
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir,
                                                         signature_keys=[SIGNATURE])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        if representative_inputs is None:
            raise ExportError("int8 quantization needs representative inputs")
        count = len(representative_inputs[INPUT_NAMES[0]])

        def representative_dataset():
            for i in range(count):
                yield {name: representative_inputs[name][i:i + 1] for name in INPUT_NAMES}

        converter.representative_dataset = representative_dataset
        # Full-integer kernels where TFLite has them; float builtins (e.g. for the int32 ->
        # embedding gathers' neighbours) where it does not. Inputs stay int32.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                               tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        return converter.convert()
    except ConverterError as e:
        flex = _flex_ops_in(str(e))
        if flex:
            raise ExportError("conversion needs TensorFlow ops that are not TFLite builtins "
                              f"(no SELECT_TF_OPS allowed): {', '.join(flex)}") from None
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"TFLite conversion failed: {first}") from None


def _model_object(tflite_bytes):
    from tensorflow.lite.tools import flatbuffer_utils
    return flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_bytes))


def op_names(tflite_bytes):
    """Sorted names of the operators a TFLite model uses; custom/Flex ops as 'CUSTOM:<code>'."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = _model_object(tflite_bytes)
    names = set()
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            name = flatbuffer_utils.opcode_to_name(model, op.opcodeIndex)
            if code.customCode or name in (None, "CUSTOM"):
                custom = code.customCode.decode() if code.customCode else "?"
                name = f"CUSTOM:{custom}"
            names.add(name)
    return sorted(names)


def check_builtin_ops(tflite_bytes):
    """The model's op names; ExportError if any is a custom or Flex op."""
    names = op_names(tflite_bytes)
    custom = [n for n in names if n.startswith("CUSTOM:") or n.startswith("Flex")]
    if custom:
        raise ExportError(f"the TFLite model uses non-builtin ops: {', '.join(custom)}")
    return names


def add_metadata(tflite_bytes, files):
    """Returns the model with `files` ({name: bytes}) attached as flatbuffer metadata.

    Uses the same object round trip as the TFLite converter's own conversion metadata.
    """
    from tensorflow.lite.python import schema_py_generated as schema_fb
    from tensorflow.lite.tools import flatbuffer_utils

    model = _model_object(tflite_bytes)
    model.metadata = [m for m in (model.metadata or []) if m.name.decode() not in files]
    model.buffers = model.buffers or []
    for name, content in files.items():
        buffer = schema_fb.BufferT()
        buffer.data = np.frombuffer(content, dtype=np.uint8)
        model.buffers.append(buffer)
        entry = schema_fb.MetadataT()
        entry.name = name.encode()
        entry.buffer = len(model.buffers) - 1
        model.metadata.append(entry)
    return flatbuffer_utils.convert_object_to_bytearray(model)


def read_tflite_metadata(path_or_bytes):
    """{name: bytes} of a TFLite file's metadata (ours: dynabert.json, labels.txt, vocab.txt)."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        content = path_or_bytes
    else:
        with open(path_or_bytes, "rb") as f:
            content = f.read()
    model = _model_object(content)
    return {m.name.decode(): bytes(np.asarray(model.buffers[m.buffer].data, np.uint8))
            for m in (model.metadata or [])}


def signature_io(tflite_bytes):
    """(inputs, outputs) of the serving signature: [{name, dtype, shape}] in our order."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=bytes(tflite_bytes)).get_signature_runner(SIGNATURE)
    describe = lambda name, d: {"name": name, "dtype": np.dtype(d["dtype"]).name,
                                "shape": [int(s) for s in d["shape"]]}
    inputs, outputs = runner.get_input_details(), runner.get_output_details()
    return ([describe(n, inputs[n]) for n in INPUT_NAMES if n in inputs],
            [describe(n, d) for n, d in outputs.items()])


def _write_atomic(path, content, mode="wb"):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".partial",
                               dir=directory)
    try:
        with os.fdopen(fd, mode) as f:
            f.write(content)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json(path, value):
    _write_atomic(path, json.dumps(value, indent=2) + "\n", mode="w")


def export_cell(classifier, width_mult, depth_mult, path, seq_len=128,
                quantization="dynamic_range", representative_inputs=None, metadata=None):
    """Extracts one cell, converts it and writes `path` atomically.

    Returns {"bytes", "ops", "inputs", "outputs"} of the written file.
    """
    from dynabert_tf import subnetwork

    cell = subnetwork.extract_subnetwork(classifier, width_mult, depth_mult)
    with tempfile.TemporaryDirectory(prefix="dynabert-savedmodel-") as tmp:
        to_saved_model(cell, os.path.join(tmp, "saved_model"), seq_len)
        tflite = convert_saved_model(os.path.join(tmp, "saved_model"), quantization,
                                     representative_inputs)
    ops = check_builtin_ops(tflite)
    if metadata:
        tflite = add_metadata(tflite, metadata)
    inputs, outputs = signature_io(tflite)
    _write_atomic(path, tflite)
    return {"bytes": os.path.getsize(path), "ops": ops, "inputs": inputs, "outputs": outputs}


# --------------------------------------------------------------------------- whole model

def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _previous_entries(output_dir, model_dir, quantization, seq_len):
    """Entries of an existing manifest of the same model, quantization and seq_len whose files
    still exist (a later run adds cells to an earlier one's)."""
    path = os.path.join(output_dir, MANIFEST)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, json.JSONDecodeError):
        return {}
    previous = (manifest.get("model_dir"), manifest.get("quantization"), manifest.get("seq_len"))
    if previous != (model_dir, quantization, seq_len):
        logging.warning("%s: replacing a manifest of %s (%s, seq %s)", output_dir, *previous)
        return {}
    return {e["cell"]: e for e in manifest.get("cells", [])
            if os.path.isfile(os.path.join(output_dir, e.get("file", "")))}


def _representative_inputs(task, vocab_path, seq_len, count, vocab_size, data_dir=None):
    """(inputs, description): `count` training examples of the task, else random tokens."""
    try:
        inputs, _ = task_inputs(task, "train", vocab_path, seq_len, count, data_dir)
        return inputs, f"{task} train ({len(inputs['token_ids'])} examples)"
    except Exception as e:  # no data module, unknown task, no files: say so, go on
        reason = f"{type(e).__name__}: {e}".splitlines()[0]
        logging.warning("int8 calibration on random tokens: %s train data unavailable (%s)",
                        task, reason)
        return (random_token_inputs(count, seq_len, vocab_size),
                f"random tokens ({count}; {task!r} train data unavailable: {reason})")


def _task_metric(task):
    """The task registry's primary metric, or None (unknown task / no data module)."""
    try:
        from dynabert_tf import data
        return data.get_task(task).primary_metric
    except Exception:  # noqa: BLE001 - optional information
        return None


def export_model(model_dir, output_dir, quantization="dynamic_range", seq_len=128, cells="all",
                 representative_examples=200, progress=True, data_dir=None):
    """Exports the chosen cells of a trained DynaBERT; returns the manifest (also written).

    Args:
      model_dir: a training workdir (uses its `final/`) or an HF-style model dir.
      cells: "all", a comma-separated list of cell names, or a list of (w, d).
      data_dir: the task's data, when it is not built in (int8 calibration only).
    """
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"unknown quantization {quantization!r}; expected one of "
                          f"{', '.join(QUANTIZATIONS)}")
    if not isinstance(seq_len, int) or seq_len < 3:
        raise ExportError(f"seq_len must be an integer >= 3, got {seq_len!r}")
    model_path, workdir = resolve_model_dir(model_dir)
    eval_grid = read_eval_grid(model_path, workdir)
    available = grid_cells(eval_grid)
    chosen = parse_cells(cells, available) if isinstance(cells, str) else list(cells)

    from dynabert_tf import checkpoint

    with open(os.path.join(model_path, "config.json")) as f:
        hf_config = json.load(f)
    max_positions = hf_config.get("max_position_embeddings", seq_len)
    if seq_len > max_positions:
        raise ExportError(f"seq_len {seq_len} exceeds the model's max_position_embeddings "
                          f"{max_positions}")
    classifier = checkpoint.load_classifier(model_path)
    cfg, num_classes = classifier.bert_config, classifier.num_classes
    task = hf_config.get("finetuning_task") or (eval_grid or {}).get("task")
    labels = labels_of(hf_config, num_classes)

    os.makedirs(output_dir, exist_ok=True)
    vocab_src = os.path.join(model_path, VOCAB)
    vocab_bytes = b""
    if os.path.isfile(vocab_src):
        with open(vocab_src, "rb") as f:
            vocab_bytes = f.read()
        _write_atomic(os.path.join(output_dir, VOCAB), vocab_bytes)
    else:
        logging.warning("%s has no %s; the TFLite files will carry no vocabulary",
                        model_path, VOCAB)
    labels_bytes = ("\n".join(labels) + "\n").encode()
    _write_atomic(os.path.join(output_dir, LABELS), labels_bytes)

    representative, representative_note = None, None
    if quantization == "int8":
        representative, representative_note = _representative_inputs(
            task, vocab_src, seq_len, representative_examples, cfg.vocab_size, data_dir)

    grid_entries = (eval_grid or {}).get("cells", {})
    model_abs = os.path.abspath(model_path)
    entries = _previous_entries(output_dir, model_abs, quantization, seq_len)
    manifest = {
        "model_dir": model_abs, "task": task,
        "primary_metric": (eval_grid or {}).get("primary_metric") or _task_metric(task),
        "eval_grid_model": (eval_grid or {}).get("model"),
        "labels": labels, "labels_file": LABELS,
        "vocab": VOCAB if vocab_bytes else None,
        "vocab_sha256": hashlib.sha256(vocab_bytes).hexdigest() if vocab_bytes else None,
        "seq_len": seq_len, "quantization": quantization,
        "representative_data": representative_note,
        "signature": SIGNATURE, "cells": [],
    }
    flops_full = cost.count_flops(cfg, 1.0, 1.0, seq_len, num_classes)

    def write_manifest():
        order = {config_lib.cell_name(w, d): i for i, (w, d) in enumerate(available)}
        manifest["cells"] = sorted(entries.values(), key=lambda e: order.get(e["cell"], 1e9))
        write_json(os.path.join(output_dir, MANIFEST), manifest)

    bar = _progress(chosen, progress)
    for width_mult, depth_mult in bar:
        name = config_lib.cell_name(width_mult, depth_mult)
        if hasattr(bar, "set_postfix_str"):
            bar.set_postfix_str(name)
        layers, heads, neurons = cost.cell_dims(cfg, width_mult, depth_mult)
        info = {"cell": name, "width_mult": width_mult, "depth_mult": depth_mult, "task": task,
                "labels": labels, "seq_len": seq_len, "quantization": quantization,
                "inputs": list(INPUT_NAMES), "outputs": [OUTPUT_NAME],
                "vocab_sha256": manifest["vocab_sha256"]}
        metadata = {METADATA_JSON: json.dumps(info).encode(), LABELS: labels_bytes}
        if vocab_bytes:
            metadata[VOCAB] = vocab_bytes
        file_name = f"{name}.tflite"
        written = export_cell(classifier, width_mult, depth_mult,
                              os.path.join(output_dir, file_name), seq_len, quantization,
                              representative, metadata)
        flops = cost.count_flops(cfg, width_mult, depth_mult, seq_len, num_classes)
        entries[name] = {
            "cell": name, "width_mult": width_mult, "depth_mult": depth_mult,
            "file": file_name, "quantization": quantization, "bytes": written["bytes"],
            "sha256": _sha256(os.path.join(output_dir, file_name)),
            "params": cost.count_params(cfg, width_mult, depth_mult, num_classes),
            "flops": flops, "flops_ratio": flops / flops_full, "seq_len": seq_len,
            "num_layers": layers, "num_heads": heads, "intermediate_size": neurons,
            "inputs": written["inputs"], "outputs": written["outputs"], "ops": written["ops"],
            "metrics": (grid_entries.get(name) or {}).get("metrics"),
        }
        write_manifest()
    if not chosen:
        write_manifest()
    return manifest


def _progress(items, enabled, desc="export"):
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, unit="cell", file=sys.stderr)


def format_summary(manifest):
    metric = manifest.get("primary_metric")
    lines = [f"{'cell':<12}{'bytes':>12}{'params':>12}{'GFLOPs':>9}"
             + (f"{metric:>10}" if metric else "")]
    for e in manifest["cells"]:
        value = (e.get("metrics") or {}).get(metric) if metric else None
        lines.append(f"{e['cell']:<12}{e['bytes']:>12,}{e['params']:>12,}"
                     f"{e['flops'] / 1e9:>9.3f}"
                     + ((f"{value:>10.4f}" if value is not None else f"{'-':>10}")
                        if metric else ""))
    return "\n".join(lines)


# --------------------------------------------------------------------------- entry point

def _define_flags():
    from absl import flags

    flags.DEFINE_string("model_dir", None, "Training workdir (uses WORKDIR/final) or a model "
                        "directory with config.json.")
    flags.DEFINE_string("output_dir", None, "Where the .tflite files and manifest.json go.")
    flags.DEFINE_string("quantization", "dynamic_range", "One of " + ", ".join(QUANTIZATIONS))
    flags.DEFINE_integer("seq_len", 128, "Static sequence length of the exported inputs.")
    flags.DEFINE_string("cells", "all", "'all' or comma-separated cell names (w0.50_d0.75,...).")
    flags.DEFINE_integer("representative_examples", 200,
                         "Training examples used to calibrate int8 quantization.")
    flags.DEFINE_string("data_dir", None, "Task data (GLUE tasks); built-in tasks need none.")
    return flags.FLAGS


def fail(message):
    """One error line on stderr, exit status 1."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def is_user_error(error):
    """Errors that deserve one line, not a traceback (CheckpointError without importing TF)."""
    return (isinstance(error, (ExportError, FileNotFoundError))
            or type(error).__name__ == "CheckpointError")


def main(argv, flags_values):
    if len(argv) > 1:
        fail(f"unexpected arguments: {' '.join(argv[1:])}")
    if not flags_values.model_dir:
        fail("--model_dir is required")
    if not flags_values.output_dir:
        fail("--output_dir is required")
    try:
        manifest = export_model(flags_values.model_dir, flags_values.output_dir,
                                flags_values.quantization, flags_values.seq_len,
                                flags_values.cells, flags_values.representative_examples,
                                data_dir=flags_values.data_dir)
    except Exception as e:  # noqa: BLE001 - user errors get one line, the rest a traceback
        if not is_user_error(e):
            raise
        fail(str(e))
    print(format_summary(manifest))
    print(f"wrote {len(manifest['cells'])} cells to {flags_values.output_dir}/{MANIFEST}")


def run_main(main_fn, define_flags):
    """absl entry point with TensorFlow's C++ and Python INFO logs turned down."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from absl import app
    from absl import logging as absl_logging

    flags_values = define_flags()

    def run(argv):
        if not flags_values["verbosity"].present:
            absl_logging.set_verbosity(absl_logging.WARNING)
        main_fn(argv, flags_values)

    app.run(run)


if __name__ == "__main__":
    run_main(main, _define_flags)
