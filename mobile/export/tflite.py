"""One cell as a SavedModel and a TFLite flatbuffer, and reading the flatbuffer back.

`to_saved_model` writes a Keras cell with `keras.export.ExportArchive` as a SavedModel with one
signature, `serving_default`:

    inputs  token_ids, segment_ids, padding_mask   int32 [1, seq_len]
    outputs the task head's `output_names`: logits float32 [1, num_labels], or
            start_logits, end_logits float32 [1, seq_len] (span extraction)

`convert_saved_model` converts it with `tf.lite.TFLiteConverter.from_saved_model`, TFLite
builtin ops only (a model that would need TensorFlow "Flex" ops is an error naming those ops).
The exact-erf GELU of the Hugging Face checkpoints becomes the builtin GELU op.

`op_names` / `check_builtin_ops` list a flatbuffer's operators, `add_metadata` /
`read_tflite_metadata` attach / read named files as flatbuffer metadata, and `signature_io`
describes the serving signature's inputs and outputs.
"""

import re

import numpy as np

from dynabert_tf.core import files
from dynabert_tf.core.choices import QUANTIZATIONS
from dynabert_tf.models import config as model_config
from mobile.errors import ExportError

# Calibrated on representative inputs: int8 (8-bit activations and weights) and int16x8 (16-bit
# activations, 8-bit weights).
CALIBRATED = ("int8", "int16x8")
# TFLite ops that int8 files keep in float (quantize / dequantize around them): the LayerNorms'
# MEAN / SUB / MUL / RSQRT and the residual ADDs, whose per-tensor 8-bit ranges are set by
# BERT's outlier dimensions (label agreement with float 0.85 -> 0.94 on a one-epoch MiniLM-L6
# teacher); the attention matmuls (scores, context: BATCH_MATMUL), which LiteRT ran 2.7x
# slower in int8 than in float; the FFN's GELU, whose 8-bit output range is set by the few
# large activations feeding the (float) output projection, and the attention SOFTMAX, whose
# int8 output has a fixed step of 1/256. On the full cell of the trained `make demo`
# DynaBERT (all 1,054 rt_polarity dev sentences; BENCHMARKS.md §5) GELU and SOFTMAX take
# agreement 0.967 -> 0.980 at no size cost.
LAYERNORM_RESIDUAL_OPS = ("ADD", "SUB", "MUL", "MEAN", "RSQRT")
INT8_FLOAT_OPS = LAYERNORM_RESIDUAL_OPS + ("BATCH_MATMUL", "GELU", "SOFTMAX")
# Nodes (regular expressions on the calibrated model's tensor names) int8 files keep in float:
# the FFN output projections (`layers.feedforward.OUTPUT_PROJECTION`), whose 8-bit outputs
# carry BERT's outlier dimensions into the residual sum: agreement 0.961 -> 0.981 and accuracy
# equal to float on the demo teacher, at +10.6 MB (their float weights).
INT8_FLOAT_NODES = (r"feedforward[^/]*/output_projection/",)
INPUT_NAMES = model_config.INPUT_NAMES
SIGNATURE = "serving_default"
PROBABILITIES = "probabilities"


def output_names(model_cell, probabilities=False):
    """The exported outputs: the head's (`logits`; span: `start_logits`, `end_logits`); for a
    classification head with `probabilities` True, `probabilities` (softmax of the logits)
    after them, with "only", `probabilities` alone."""
    names = list(model_cell.head.output_names)
    if probabilities and model_cell.head.kind == "classification":
        names = [PROBABILITIES] if probabilities == "only" else names + [PROBABILITIES]
    return names


def to_saved_model(model_cell, path, seq_len, probabilities=False):
    """Writes `model_cell` as a SavedModel with the `serving_default` signature; with
    `probabilities` (True, or "only": `output_names`), a classification cell outputs
    `probabilities` (softmax of the logits, for clients that threshold scores)."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model_cell)
    names = output_names(model_cell, probabilities)

    def serve(token_ids, segment_ids, padding_mask):
        inputs = {"token_ids": token_ids, "segment_ids": segment_ids,
                  "padding_mask": padding_mask}
        outputs = dict(model_cell(inputs, training=False, return_dict=True))
        if PROBABILITIES in names:
            outputs[PROBABILITIES] = tf.nn.softmax(outputs["logits"], axis=-1)
        return {name: outputs[name] for name in names}

    archive.add_endpoint(SIGNATURE, serve, input_signature=[
        tf.TensorSpec([1, seq_len], tf.int32, name=name) for name in INPUT_NAMES])
    try:
        archive.write_out(path, verbose=False)
    except (OSError, tf.errors.OpError) as e:  # a full disk: one line naming the SavedModel
        raise files.write_error(e, f"the SavedModel {path}") from None
    return path


def _flex_ops_in(message):
    ops = set(re.findall(r"'(tf\.[A-Za-z0-9_]+)' op is neither a custom op nor a flex op",
                         message))
    for line in re.findall(r"Flex ops: ([^\n]*)", message):
        ops.update(op.strip() for op in line.split(","))
    return sorted(op for op in ops if op)


def convert_saved_model(saved_model_dir, quantization, representative_inputs=None,
                        signature_keys=None):
    """SavedModel -> TFLite flatbuffer bytes, builtin ops only.

    Args:
      quantization: one of QUANTIZATIONS.
      signature_keys: the signatures to convert (default [SIGNATURE]); several make one
        subgraph each (`mobile.export.elastic_file`).
      representative_inputs: for "int8" / "int16x8", a dict of int32 [n, seq_len] arrays
        (one example at a time is fed to the calibrator).
    """
    import tensorflow as tf
    from tensorflow.lite.python.convert_phase import ConverterError

    if quantization not in QUANTIZATIONS:
        raise ExportError(f"unknown quantization {quantization!r}; expected one of "
                          f"{', '.join(QUANTIZATIONS)}")
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=list(signature_keys or [SIGNATURE]))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantization in CALIBRATED:
        if representative_inputs is None:
            raise ExportError(f"{quantization} quantization needs representative inputs")
        count = len(representative_inputs[INPUT_NAMES[0]])

        def representative_dataset():
            for i in range(count):
                yield {name: representative_inputs[name][i:i + 1] for name in INPUT_NAMES}

        converter.representative_dataset = representative_dataset
        # Integer kernels where TFLite has them; float builtins (e.g. for the int32 ->
        # embedding gathers' neighbours) where it does not. Inputs stay int32.
        integer_ops = (tf.lite.OpsSet.TFLITE_BUILTINS_INT8 if quantization == "int8" else
                       tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8)
        converter.target_spec.supported_ops = [integer_ops, tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        if quantization != "int8":
            return converter.convert()
        # Calibrate, then quantize all but INT8_FLOAT_OPS / INT8_FLOAT_NODES: what TFLite's
        # QuantizationDebugger does for selective quantization (`get_nondebug_quantized_model`).
        converter._experimental_calibrate_only = True  # pylint: disable=protected-access
        return quantize_calibrated(converter.convert())
    except ConverterError as e:
        flex = _flex_ops_in(str(e))
        if flex:
            raise ExportError("conversion needs TensorFlow ops that are not TFLite builtins "
                              f"(no SELECT_TF_OPS allowed): {', '.join(flex)}") from None
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"TFLite conversion failed: {first}") from None


def quantize_calibrated(calibrated, float_ops=None, float_node_patterns=None):
    """int8 TFLite bytes from a calibrate-only conversion, keeping `float_ops` (op names;
    default INT8_FLOAT_OPS) and the nodes `float_node_patterns` match (`float_nodes`; default
    INT8_FLOAT_NODES) in float."""
    from tensorflow.lite.python import convert as convert_lib

    float_ops = INT8_FLOAT_OPS if float_ops is None else float_ops
    if float_node_patterns is None:
        float_node_patterns = INT8_FLOAT_NODES
    nodes = float_nodes(calibrated, float_node_patterns) if float_node_patterns else []
    return convert_lib.mlir_quantize(calibrated, denylisted_ops=list(float_ops),
                                     denylisted_nodes=nodes)


def float_nodes(tflite_bytes, patterns=INT8_FLOAT_NODES):
    """Tensor names of `tflite_bytes` that match any of `patterns` (regular expressions);
    ExportError when a pattern matches none (the graph's names changed under it)."""
    names = [t.name.decode() for g in _model_object(tflite_bytes).subgraphs for t in g.tensors]
    found = set()
    for pattern in patterns:
        matched = {name for name in names if re.search(pattern, name)}
        if not matched:
            raise ExportError(f"no tensor of the model matches the int8 float-node pattern "
                              f"{pattern!r}")
        found |= matched
    return sorted(found)


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


def add_metadata(tflite_bytes, named_files):
    """Returns the model with `named_files` ({name: bytes}) attached as flatbuffer metadata.

    Uses the same object round trip as the TFLite converter's own conversion metadata.
    """
    from tensorflow.lite.python import schema_py_generated as schema_fb
    from tensorflow.lite.tools import flatbuffer_utils

    model = _model_object(tflite_bytes)
    model.metadata = [m for m in (model.metadata or []) if m.name.decode() not in named_files]
    model.buffers = model.buffers or []
    for name, content in named_files.items():
        buffer = schema_fb.BufferT()
        buffer.data = np.frombuffer(content, dtype=np.uint8)
        model.buffers.append(buffer)
        entry = schema_fb.MetadataT()
        entry.name = name.encode()
        entry.buffer = len(model.buffers) - 1
        model.metadata.append(entry)
    return flatbuffer_utils.convert_object_to_bytearray(model)


def output_first(tflite_bytes, name):
    """The model with the signature output `name` first among its subgraph's outputs (the
    order of a client's heads: MediaPipe's `classifications[0]`); the signature's names and
    the outputs' values are unchanged."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = _model_object(tflite_bytes)
    signature = model.signatureDefs[0]
    index = {o.name.decode(): o.tensorIndex for o in signature.outputs}[name]
    subgraph = model.subgraphs[signature.subgraphIndex]
    outputs = [int(i) for i in subgraph.outputs]
    subgraph.outputs = np.asarray([index] + [i for i in outputs if i != index], np.int32)
    return flatbuffer_utils.convert_object_to_bytearray(model)


def read_tflite_metadata(path_or_bytes):
    """{name: bytes} of a TFLite file's metadata (ours: dynabert.json, labels.txt, vocab.txt;
    the last two, in a file with TFLite Metadata, are its associated files)."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        content = path_or_bytes
    else:
        with open(path_or_bytes, "rb") as f:
            content = f.read()
    from mobile.runtime.model_file import associated_files

    model = _model_object(content)
    result = {m.name.decode(): bytes(np.asarray(model.buffers[m.buffer].data, np.uint8))
              for m in (model.metadata or [])}
    for name, data in associated_files(bytes(content)).items():  # TFLite Metadata's files
        result.setdefault(name, data)
    return result


def signature_io(tflite_bytes, signature=SIGNATURE, interpreter=None):
    """(inputs, outputs) of a signature (default: the serving one), each a list of
    {name, dtype, shape}, the inputs in our order (`INPUT_NAMES`)."""
    if interpreter is None:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_content=bytes(tflite_bytes))
    runner = interpreter.get_signature_runner(signature)
    describe = lambda name, d: {"name": name, "dtype": np.dtype(d["dtype"]).name,
                                "shape": [int(s) for s in d["shape"]]}
    inputs, outputs = runner.get_input_details(), runner.get_output_details()
    return ([describe(n, inputs[n]) for n in INPUT_NAMES if n in inputs],
            [describe(n, d) for n, d in outputs.items()])
