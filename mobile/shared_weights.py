"""Weights stored once in a multi-signature TFLite file.

The TFLite converter folds every sliced weight into a constant of its own, so the signatures
of an elastic file (`mobile.elastic`) carry one copy of each (layer, width) slice, and possibly
one per signature. `share_buffers` rewrites the flatbuffer so that

  * constant buffers with identical bytes become one buffer (the (layer, width) slices that
    cells of one width and different depths have in common, the embeddings every cell keeps);
  * a buffer whose bytes are the leading bytes of a larger one is read from inside it.

The second point is the leading-block layout at work: this project stores the heads / neurons
of every weight first (`dynabert_tf/layers/weight_layout.py`), and TFLite's FULLY_CONNECTED
keeps its weights [out, in] row-major, so the query, key, value and intermediate kernels of a
narrow cell are the first rows of the full cell's: the same bytes, also after dynamic-range
quantization, whose int8 scales are per output row. The attention and FFN *output* kernels
hold the width on their inner axis ([hidden, heads * head_dim], [hidden, neurons]); their
narrow blocks are not contiguous and stay one copy per width.

A flatbuffer buffer may, instead of inline `data`, name an `offset` and `size` in the file
(the layout the converter itself writes past 2 GB, `_experimental_use_buffer_offset`).
`share_buffers` moves every large constant after the flatbuffer and points each narrow weight
at the start of its host. Nothing is recomputed at run time: every signature runs the same
operators on the same bytes as before, only read from one place.
"""

import hashlib

import numpy as np

ALIGNMENT = 64  # offsets of the weights moved after the flatbuffer
MIN_BYTES = 1024  # smaller constants (LayerNorm parameters, shapes) stay inline
_PLACEHOLDER = 1 << 40  # any non-zero offset: fixes the flatbuffer's size before the real ones


def _align(value):
    return -(-value // ALIGNMENT) * ALIGNMENT


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
    `mobile.tflite.read_tflite_metadata` reads the result as before.
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
        return flatbuffer_utils.convert_object_to_bytearray(model)

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
