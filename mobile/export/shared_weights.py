"""Weights stored once in a multi-signature TFLite file.

The TFLite converter folds every sliced weight into a constant of its own, so the signatures
of an elastic file (`mobile.export.elastic_file`) carry one copy of each (layer, width)
slice, and possibly one per signature. `share_buffers` rewrites the flatbuffer so that

  * constant buffers with identical bytes become one buffer (the (layer, width) slices that
    cells of one width and different depths have in common, the embeddings every cell keeps);
  * a buffer whose bytes are the leading bytes of a larger one is read from inside it;
  * identical quantization vectors (scales, zero points: one table per tensor, repeated by
    every signature that reads the weight) are written once.

The second point is the leading-block layout at work: this project stores the heads / neurons
of every weight first (`dynabert_tf/layers/weight_layout.py`), and TFLite's FULLY_CONNECTED
keeps its weights [out, in] row-major, so the query, key, value and intermediate kernels of a
narrow cell are the first rows of the full cell's: the same bytes, also after dynamic-range
quantization, whose int8 scales are per output row. The attention and FFN *output* kernels
would hold the width on their inner axis as FULLY_CONNECTED weights ([hidden, n]); the elastic
export traces them as BATCH_MATMUL on a [1, n, hidden] constant instead
(`dynabert_tf.layers.common.rows_outer_output_projections`), width outermost, and
`quantize_per_column` gives every such int8 constant the full kernel's scale per hidden column
(the FULLY_CONNECTED per-row scales of the cell's own file, transposed), so that its narrow
blocks are leading rows too.

A flatbuffer buffer may, instead of inline `data`, name an `offset` and `size` in the file
(the layout the converter itself writes past 2 GB, `_experimental_use_buffer_offset`).
`share_buffers` moves every large constant after the flatbuffer and points each narrow weight
at the start of its host. Nothing is recomputed at run time: every signature runs the same
operators on the same bytes as before, only read from one place.
"""

import hashlib

import flatbuffers
import numpy as np

ALIGNMENT = 64  # offsets of the weights moved after the flatbuffer
MIN_BYTES = 1024  # smaller constants (LayerNorm parameters, shapes) stay inline
_PLACEHOLDER = 1 << 40  # any non-zero offset: fixes the flatbuffer's size before the real ones


def _align(value):
    return -(-value // ALIGNMENT) * ALIGNMENT


def _builtin_code(model, op):
    code = model.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def quantize_per_column(tflite_bytes, kernels):
    """(flatbuffer bytes, how many constants were re-quantized): each int8 constant
    right-hand side [1, n, hidden] of a BATCH_MATMUL, which the dynamic-range converter
    quantizes with one scale per tensor, gets one scale per hidden column instead, that of
    the full kernel whose leading n rows it holds: max |kernel[:, j]| / 127 over all its rows.

    Every width of a kernel then has the same scales, and its int8 bytes are the leading rows
    of the full width's, so `share_buffers` reads them from there. The full kernel is
    quantized as FULLY_CONNECTED quantizes its transpose (a scale per output row).

    Args:
      tflite_bytes: a dynamic-range TFLite model.
      kernels: float arrays [rows, hidden], the full kernels of those BATCH_MATMULs. A
        constant is matched to the kernel whose leading rows it equals within half its
        quantization step.
    Raises:
      ValueError: an int8 BATCH_MATMUL constant matches none of `kernels`.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_bytes))
    kernels = [np.asarray(k, np.float32) for k in kernels]
    column_max = [np.abs(k).max(axis=0) for k in kernels]
    scales = [np.where(m > 0, m / 127, 1).astype(np.float32) for m in column_max]
    quantized = {}  # buffer -> the scales its new bytes were quantized with
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            if _builtin_code(model, op) != schema.BuiltinOperator.BATCH_MATMUL:
                continue
            tensor = subgraph.tensors[op.inputs[1]]
            quantization, buffer = tensor.quantization, model.buffers[tensor.buffer]
            if (tensor.type != schema.TensorType.INT8 or buffer.data is None
                    or len(tensor.shape) != 3 or tensor.shape[0] != 1):
                continue
            if tensor.buffer not in quantized:
                if quantization is None or len(quantization.scale) != 1:
                    raise ValueError(f"BATCH_MATMUL constant {tensor.name!r}: expected one "
                                     f"scale per tensor from the converter")
                rows, hidden = int(tensor.shape[1]), int(tensor.shape[2])
                step = float(quantization.scale[0])
                values = np.frombuffer(_buffer_bytes(buffer), np.int8).reshape(
                    rows, hidden).astype(np.float32) * step
                host = next((i for i, k in enumerate(kernels)
                             if k.shape[1] == hidden and k.shape[0] >= rows
                             and np.abs(values - k[:rows]).max() <= 0.501 * step), None)
                if host is None:
                    raise ValueError(f"BATCH_MATMUL constant {tensor.name!r} [1, {rows}, "
                                     f"{hidden}] is the leading rows of none of the kernels")
                q = np.clip(np.round(kernels[host][:rows].astype(np.float64)
                                     * (1 / scales[host].astype(np.float64))), -127, 127)
                buffer.data = np.frombuffer(q.astype(np.int8).tobytes(), np.uint8)
                quantized[tensor.buffer] = scales[host]
            column_scales = quantized[tensor.buffer]
            quantization.scale = column_scales
            quantization.zeroPoint = np.zeros(len(column_scales), np.int64)
            quantization.quantizedDimension = 2
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), len(quantized)


class _VectorSharingBuilder(flatbuffers.Builder):
    """A `flatbuffers.Builder` that writes each distinct numpy vector once and points every
    table holding it there (a flatbuffer may): the signatures of an elastic file repeat the
    quantization scales and zero points of the weights they share, one table per tensor."""

    def __init__(self, initial_size):
        super().__init__(initial_size)
        self.vectors = {}

    def CreateNumpyVector(self, x):  # noqa: N802 (flatbuffers' name)
        key = (x.dtype.str, x.shape, x.tobytes())
        if key not in self.vectors:
            self.vectors[key] = super().CreateNumpyVector(x)
        return self.vectors[key]


def _serialize(model):
    """The flatbuffer of `model` (a ModelT), identical numpy vectors stored once."""
    builder = _VectorSharingBuilder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _buffer_bytes(buffer):
    return b"" if buffer.data is None else np.asarray(buffer.data, np.uint8).tobytes()


def share_buffers(tflite_bytes, prefixes=True, min_bytes=MIN_BYTES):
    """(flatbuffer bytes with each large constant stored once, statistics).

    Args:
      tflite_bytes: a TFLite model (inline buffers, as the converter writes below 2 GB).
      prefixes: also read a buffer that is the leading bytes of a larger one from inside it
        (False: only identical buffers are merged).
      min_bytes: buffers below this size are left as they are.
    Returns:
      (bytes, {"bytes_before", "bytes_after", "identical_merged", "identical_bytes",
       "prefix_aliased", "prefix_bytes", "stored_once"}): how many buffers (and bytes) were
      merged into another with the same bytes, and read from the start of a larger one;
      how many are written after the flatbuffer.
    Metadata buffers (vocabulary, labels, the converter's own) stay inline, so
    `mobile.export.tflite.read_tflite_metadata` reads the result as before.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_bytes))
    if any(b.offset for b in model.buffers or []):
        raise ValueError("share_buffers expects a model with inline buffers")
    metadata = {m.buffer for m in model.metadata or []}
    tensors = [t for subgraph in model.subgraphs for t in subgraph.tensors]
    data = {}
    for index in sorted({t.buffer for t in tensors} - metadata - {0}):
        content = _buffer_bytes(model.buffers[index])
        if len(content) >= min_bytes:
            data[index] = content

    canonical, by_content = {}, {}
    for index, content in data.items():
        canonical[index] = by_content.setdefault((len(content), hashlib.sha256(content)
                                                  .digest()), index)
    roots = sorted(set(canonical.values()), key=lambda i: (-len(data[i]), i))
    host = {}  # buffer -> the larger root whose leading bytes it is
    if prefixes:
        by_head = {}
        for index in roots:  # larger first, so a host is seen before its prefixes
            head = data[index][:min_bytes]
            found = next((root for root in by_head.get(head, ())
                          if data[root].startswith(data[index])), None)
            if found is None:
                by_head.setdefault(head, []).append(index)
            else:
                host[index] = found

    stored = [i for i in roots if i not in host]
    blob, position = bytearray(), {}
    for index in stored:
        blob += b"\0" * (_align(len(blob)) - len(blob))
        position[index] = len(blob)
        blob += data[index]
    for tensor in tensors:
        tensor.buffer = canonical.get(tensor.buffer, tensor.buffer)
    for index in data:
        buffer = model.buffers[index]
        buffer.data, buffer.offset, buffer.size = None, 0, 0  # merged: no tensor reads it
        if index in position or index in host:
            buffer.size = len(data[index])

    def serialize(base):
        for index in data:
            if index in position or index in host:
                model.buffers[index].offset = base + position[host.get(index, index)]
        return _serialize(model)

    head = serialize(_PLACEHOLDER)
    base = _align(len(head))
    flat = serialize(base)
    if len(flat) != len(head):  # offsets are fixed-width fields: the size cannot change
        raise RuntimeError("flatbuffer size changed with the buffer offsets")
    result = bytes(flat) + b"\0" * (base - len(flat)) + bytes(blob)
    return result, {"bytes_before": len(tflite_bytes), "bytes_after": len(result),
                    "identical_merged": sum(1 for i, c in canonical.items() if c != i),
                    "identical_bytes": sum(len(data[i]) for i, c in canonical.items() if c != i),
                    "prefix_aliased": len(host),
                    "prefix_bytes": sum(len(data[i]) for i in host), "stored_once": len(stored)}
