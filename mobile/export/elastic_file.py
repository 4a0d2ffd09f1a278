"""One TFLite file for the whole grid: a signature per cell, weights stored once.

An app ships this one file and switches size at run time by picking a signature:

    signature "w0.50_d0.75"       the cell at the export's seq_len (inputs [1, seq_len])
    signature "w0.50_d0.75_s32"   the same cell for inputs of at most 32 tokens ([1, 32]),
                                  one per sequence bucket (`seq_buckets`)
    inputs   token_ids, segment_ids, padding_mask   int32 [1, L]
    outputs  the task head's `output_names`: logits float32 [1, num_labels], or
             start_logits, end_logits float32 [1, L] (span extraction)

Each signature is the dynamic model run at its cell (`model(inputs, width_mult, depth_mult)`),
all of them tracing one set of variables into one SavedModel that the TFLite converter turns
into one flatbuffer, a subgraph per signature. The converter folds each cell's weight slices
into constants of their own; `shared_weights.share_buffers` then stores identical constants
once and reads every narrow kernel from the leading rows of the full one. For that
the attention and FFN output projections are traced as BATCH_MATMUL on [1, n, hidden]
constants (`rows_outer_output_projections`; a cell's own file has FULLY_CONNECTED
[hidden, n]) and, with dynamic range, quantized with the full kernel's scale per hidden
column (`shared_weights.quantize_per_column`). A sentence of 20 tokens padded to a 32-token
bucket gives the same outputs as padded to 128 (padding is masked), at a fraction of the cost.
"""

import os
import tempfile

from dynabert_tf.core import files
from dynabert_tf.core import grid as grid_lib
from dynabert_tf.core.choices import ELASTIC_QUANTIZATIONS as QUANTIZATIONS
import mobile.export.shared_weights as shared_weights
import mobile.export.tflite as tflite_lib
from mobile.errors import ExportError

FILE_NAME = "elastic.tflite"
SHARING = ("prefix", "identical", "none")


def signature_name(cell_name, seq_len, base_seq_len):
    """The cell's name at the export's `base_seq_len`, `{cell}_s{seq_len}` for a bucket."""
    return cell_name if seq_len == base_seq_len else f"{cell_name}_s{seq_len}"


def parse_seq_buckets(spec, seq_len):
    """'32,64' (or a list of ints) -> (32, 64): sorted, distinct, each in [3, seq_len).

    The export's `seq_len` is always a signature of its own; empty means no buckets.
    ExportError naming --seq_buckets if a value is not such an integer.
    """
    if spec is None or spec == "" or spec == ():
        return ()
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    buckets = set()
    for part in parts:
        try:
            value = int(str(part).strip())
        except ValueError:
            value = None
        if value is None or not 3 <= value < seq_len:
            raise ExportError(f"--seq_buckets must be integers in [3, {seq_len}) (below "
                              f"--seq_len), got {str(part).strip()!r}")
        buckets.add(value)
    return tuple(sorted(buckets))


def bucket_for(length, seq_lens):
    """The smallest of `seq_lens` holding `length` tokens (the largest if none does)."""
    fitting = [s for s in sorted(seq_lens) if s >= length]
    return fitting[0] if fitting else max(seq_lens)


def signatures(cells, seq_len, seq_buckets=()):
    """{signature name: {"cell", "width_mult", "depth_mult", "seq_len"}} in grid order,
    the cell's own signature first, then its buckets from short to long."""
    result = {}
    for width_mult, depth_mult in cells:
        cell = grid_lib.cell_name(width_mult, depth_mult)
        for length in (seq_len, *seq_buckets):
            result[signature_name(cell, length, seq_len)] = {
                "cell": cell, "width_mult": width_mult, "depth_mult": depth_mult,
                "seq_len": length}
    return result


def to_saved_model(model, signature_specs, path):
    """Writes `model` with one endpoint per entry of `signatures(...)`; returns `path`."""
    import keras
    import tensorflow as tf

    from dynabert_tf.layers.common import rows_outer_output_projections

    archive = keras.export.ExportArchive()
    archive.track(model)

    def endpoint(width_mult, depth_mult):
        def serve(token_ids, segment_ids, padding_mask):
            inputs = {"token_ids": token_ids, "segment_ids": segment_ids,
                      "padding_mask": padding_mask}
            outputs = model(inputs, width_mult=width_mult, depth_mult=depth_mult,
                            training=False, return_dict=True)
            return {name: outputs[name] for name in model.head.output_names}
        return serve

    with rows_outer_output_projections():  # traced here, the layout is kept in the graph
        for name, spec in signature_specs.items():
            archive.add_endpoint(name, endpoint(spec["width_mult"], spec["depth_mult"]),
                                 input_signature=[tf.TensorSpec([1, spec["seq_len"]],
                                                                tf.int32, name=n)
                                                  for n in tflite_lib.INPUT_NAMES])
        archive.write_out(path, verbose=False)
    return path


def output_kernels(model):
    """The full attention and FFN output kernels, [heads * head_dim, hidden] and
    [intermediate, hidden] per layer (float32 numpy): what the narrow ones are sliced from."""
    import numpy as np

    kernels = []
    for layer in model.backbone.transformer_layers:
        for kernel in (layer.attention.output_kernel, layer.feedforward.output_kernel):
            value = np.asarray(kernel, np.float32)
            kernels.append(value.reshape(-1, value.shape[-1]))
    return kernels


def convert(model, signature_specs, quantization="dynamic_range", beside=None):
    """The converter's flatbuffer (every signature, weights not yet shared), the output
    kernels with dynamic range re-quantized per hidden column (`quantize_per_column`). The
    SavedModel goes to a scratch directory beside the path `beside` (`files.scratch_directory`:
    the output directory's writer clears one a killed run left), else to the system temp dir."""
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"--quantization={quantization} is not available with "
                          f"--format=elastic; use one of {', '.join(QUANTIZATIONS)}")
    scratch = (files.scratch_directory(beside) if beside else
               tempfile.TemporaryDirectory(prefix="dynabert-elastic-"))
    with scratch as tmp:
        saved = to_saved_model(model, signature_specs, os.path.join(tmp, "saved_model"))
        flat = tflite_lib.convert_saved_model(saved, quantization,
                                              signature_keys=list(signature_specs))
    if quantization == "dynamic_range":
        flat, _ = shared_weights.quantize_per_column(flat, output_kernels(model))
    return flat


def signature_io(tflite_bytes, names):
    """{signature: (inputs, outputs)}, each a list of {name, dtype, shape}
    (`mobile.export.tflite.signature_io`)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=bytes(tflite_bytes))
    return {signature: tflite_lib.signature_io(tflite_bytes, signature, interpreter)
            for signature in names}


def float32_model(model):
    """`model`, or, when it was built under a mixed dtype policy, a float32 copy of it (the
    full-size standalone sub-network, same weights): the file is float32 either way."""
    if model.compute_dtype == "float32":
        return model
    from dynabert_tf import precision
    from dynabert_tf.elastic import subnetwork

    with precision.policy("float32"):
        return subnetwork.extract_subnetwork(model, 1.0, 1.0)


def export_elastic(model, cells, path, seq_len=128, seq_buckets=(),
                   quantization="dynamic_range", metadata=None, sharing="prefix"):
    """Converts every cell (and bucket) into one file and writes `path` atomically.

    Args:
      model: a `DynaBertTaskModel`.
      cells: [(width_mult, depth_mult)].
      seq_buckets: shorter sequence lengths, each a signature per cell besides `seq_len`.
      metadata: {name: bytes} attached as flatbuffer metadata.
      sharing: "prefix" (identical constants once, narrow kernels read from the full ones),
        "identical" (identical constants once) or "none" (the converter's output).
    Returns:
      {"bytes", "converter_bytes", "ops", "sharing": statistics of `share_buffers`,
       "signatures": {name: {"cell", "width_mult", "depth_mult", "seq_len", "inputs",
       "outputs"}}}.
    """
    if sharing not in SHARING:
        raise ExportError(f"unknown weight sharing {sharing!r}; expected one of "
                          f"{', '.join(SHARING)}")
    specs = signatures(cells, seq_len, seq_buckets)
    flat = convert(float32_model(model), specs, quantization, beside=path)
    converter_bytes = len(flat)
    ops = tflite_lib.check_builtin_ops(flat)
    io = signature_io(flat, specs)
    if metadata:
        flat = tflite_lib.add_metadata(flat, metadata)
    stats = None
    if sharing != "none":
        flat, stats = shared_weights.share_buffers(flat, prefixes=sharing == "prefix")
    files.write_atomic(path, flat)
    for name, spec in specs.items():
        spec["inputs"], spec["outputs"] = io[name]
    return {"bytes": os.path.getsize(path), "converter_bytes": converter_bytes, "ops": ops,
            "sharing": stats, "signatures": specs}
