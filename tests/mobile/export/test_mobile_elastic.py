"""Elastic TFLite: one file, a signature per cell (and per sequence bucket), weights stored
once; each signature computes what the cell's own file computes, in the real LiteRT
interpreter; the manifest, the benchmark and the selector understand it."""

import json
import os

import numpy as np
import pytest

from ai_edge_litert.interpreter import Interpreter
from dynabert_tf.core import grid as grid_lib
from mobile import litert as benchmark_lib
from mobile.export import elastic_file as elastic_lib
from mobile import export as export_lib
from mobile import select as select_cli
from mobile import selection
from mobile.export import shared_weights
from mobile.export import tflite as tflite_lib
from mobile.errors import ExportError
from dynabert_tf.models.config import BertConfig
from tests.helpers import TINY, TINY_DEEP, random_inputs, tiny_classifier
from tests.mobile.export.test_mobile_export import SEQ_LEN, make_workdir

# Two cells (a conversion of the tiny model takes seconds per signature), each also at
# an 8-token bucket: four signatures.
CELLS = "w1.00_d1.00,w0.25_d0.50"
NARROW = "w0.25_d0.50"  # its kernels are read from inside the full cell's
BUCKET = 8
FLOAT_TOLERANCE = 1e-4  # float32 files: the same computation up to float round-off


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """(workdir, per-cell float export of the narrow cell (dir, manifest), elastic float
    export of both cells (dir, manifest))."""
    workdir = make_workdir(str(tmp_path_factory.mktemp("work")))
    per_cell = str(tmp_path_factory.mktemp("per_cell"))
    elastic = str(tmp_path_factory.mktemp("elastic"))
    per_cell_manifest = export_lib.export_model(workdir, per_cell, "none", seq_len=SEQ_LEN,
                                                cells=NARROW, progress=False)
    elastic_manifest = export_lib.export_model(
        workdir, elastic, "none", seq_len=SEQ_LEN, cells=CELLS, progress=False,
        export_format="elastic", seq_buckets=str(BUCKET))
    return workdir, (per_cell, per_cell_manifest), (elastic, elastic_manifest)


def batch_inputs(count=24, max_tokens=SEQ_LEN):
    """Batch-1 inputs, varied padding (at least SEQ_LEN - max_tokens padded positions)."""
    rows = []
    for seed in range(count):
        pad = max(SEQ_LEN - max_tokens, seed % 7)
        x = random_inputs(batch_size=1, seq_len=SEQ_LEN, vocab_size=TINY_DEEP.vocab_size,
                          seed=seed, pad_last=pad)
        x["segment_ids"][:] = 0
        x["segment_ids"][0, (SEQ_LEN - pad) // 2:SEQ_LEN - pad] = 1
        rows.append(x)
    return rows


def test_one_signature_per_cell_and_bucket(exports):
    _, _, (out, manifest) = exports
    path = os.path.join(out, elastic_lib.FILE_NAME)
    names = [e["cell"] for e in manifest["cells"]]
    assert names == CELLS.split(",")
    expected = set(names) | {f"{n}_s{BUCKET}" for n in names}
    assert set(Interpreter(model_path=path).get_signature_list()) == expected
    assert os.listdir(out).count(elastic_lib.FILE_NAME) == 1
    assert not [f for f in os.listdir(out) if f.endswith(".tflite") and f != "elastic.tflite"]
    for entry in manifest["cells"]:
        assert (entry["file"], entry["signature"]) == (elastic_lib.FILE_NAME, entry["cell"])
        assert entry["seq_buckets"] == {str(BUCKET): f"{entry['cell']}_s{BUCKET}"}
        assert entry["bytes"] == os.path.getsize(path)
        # The project's own run-time's file: no standard client opens several subgraphs.
        assert entry["clients"] == ["litert", "dynabert_runtime"]
        assert entry["inputs"][0] == {"name": "token_ids", "dtype": "int32",
                                      "shape": [1, SEQ_LEN]}
    assert manifest == json.load(open(os.path.join(out, export_lib.MANIFEST)))
    assert (manifest["format"], manifest["seq_buckets"]) == ("elastic", [BUCKET])
    # The metadata (read through the flatbuffer, the weights moved after it) lists them all.
    info = json.loads(tflite_lib.read_tflite_metadata(path)[export_lib.METADATA_JSON])
    assert set(info["signatures"]) == expected
    assert info["signatures"][f"w0.25_d0.50_s{BUCKET}"] == {
        "cell": "w0.25_d0.50", "width_mult": 0.25, "depth_mult": 0.5, "seq_len": BUCKET}


def test_each_signature_equals_the_cells_own_file(exports):
    """Float32: the narrow cell's signature == its own per-cell file, and the full cell's
    == the Keras model (what its per-cell file is tested against in test_mobile_export),
    the signatures called interleaved in one interpreter (they read the same bytes at
    different shapes)."""
    workdir, (cell_dir, cell_manifest), (out, manifest) = exports
    from dynabert_tf.io import checkpoint

    model = checkpoint.load_task_model(os.path.join(workdir, "final"))
    interpreter = Interpreter(model_path=os.path.join(out, elastic_lib.FILE_NAME))
    elastic = {e["cell"]: interpreter.get_signature_runner(e["signature"])
               for e in manifest["cells"]}
    (own_entry,) = cell_manifest["cells"]
    own = Interpreter(model_path=os.path.join(cell_dir, own_entry["file"])
                      ).get_signature_runner("serving_default")
    rows = batch_inputs()
    keras_full = np.asarray(model({k: np.concatenate([x[k] for x in rows]) for k in rows[0]},
                                  width_mult=1.0, depth_mult=1.0))
    worst_file, worst_keras, differ = 0.0, 0.0, 0.0
    for i, x in enumerate(rows):
        narrow, full = elastic[NARROW](**x)["logits"], elastic["w1.00_d1.00"](**x)["logits"]
        worst_file = max(worst_file, float(np.abs(narrow - own(**x)["logits"]).max()))
        worst_keras = max(worst_keras, float(np.abs(full - keras_full[i:i + 1]).max()))
        differ = max(differ, float(np.abs(full - narrow).max()))
    assert worst_file <= FLOAT_TOLERANCE, worst_file
    assert worst_keras <= FLOAT_TOLERANCE, worst_keras
    assert differ > 100 * FLOAT_TOLERANCE  # the cells differ: the comparison tells them apart


def test_bucket_signature_equals_full_length(exports):
    """A sentence of <= 8 tokens through the 8-token signature == through the 16-token one."""
    _, _, (out, manifest) = exports
    interpreter = Interpreter(model_path=os.path.join(out, elastic_lib.FILE_NAME))
    for entry in manifest["cells"]:
        full = interpreter.get_signature_runner(entry["signature"])
        short = interpreter.get_signature_runner(entry["seq_buckets"][str(BUCKET)])
        for x in batch_inputs(8, max_tokens=BUCKET):
            cut = {k: v[:, :BUCKET] for k, v in x.items()}
            np.testing.assert_allclose(short(**cut)["logits"], full(**x)["logits"],
                                       atol=FLOAT_TOLERANCE)


def output_kernel_ranges(tflite_bytes, signature):
    """[(offset, size)] of the constant right-hand sides of `signature`'s BATCH_MATMULs (the
    attention and FFN output kernels, [1, n, hidden]) in a `share_buffers` file, read from
    the flatbuffer as stored (TensorFlow's object reader would resolve the offsets)."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(bytearray(tflite_bytes), 0)
    signatures = [model.SignatureDefs(i) for i in range(model.SignatureDefsLength())]
    index = next(s.SubgraphIndex() for s in signatures if s.SignatureKey().decode() == signature)
    graph, ranges = model.Subgraphs(index), []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.BATCH_MATMUL:
            buffer = model.Buffers(graph.Tensors(op.Inputs(1)).Buffer())
            if buffer.Offset():
                ranges.append((buffer.Offset(), buffer.Size()))
    return ranges


def assert_output_kernels_inside_the_full_ones(tflite_bytes, narrow, full, narrow_layers, layers):
    """Each of `narrow`'s output kernels (2 per kept layer) starts where one of `full`'s
    starts (2 per layer) and is shorter: its leading rows."""
    narrow_ranges, full_ranges = (output_kernel_ranges(tflite_bytes, narrow),
                                  output_kernel_ranges(tflite_bytes, full))
    assert (len(narrow_ranges), len(full_ranges)) == (2 * narrow_layers, 2 * layers)
    hosts = dict(full_ranges)
    for offset, size in narrow_ranges:
        assert offset in hosts and size < hosts[offset], (offset, size)


def test_weights_stored_once(exports):
    """The narrow cell's query, key, value and intermediate kernels are read from the
    leading rows of the full cell's, and so are its attention and FFN output kernels
    (BATCH_MATMUL constants [1, n, hidden]; float32 here: 4 bytes a weight), and the 8-token
    position embeddings from the 16-token ones; what is left is the converter's output
    without them. (The converter itself stores identical constants once.)"""
    _, _, (out, manifest) = exports
    path = os.path.join(out, elastic_lib.FILE_NAME)
    stored = manifest["files"][0]
    sharing = stored["weight_sharing"]
    assert stored["bytes"] == os.path.getsize(path)
    cfg, kept = TINY_DEEP, grid_lib.kept_layers(TINY_DEEP.num_layers, 0.5)
    heads, neurons = grid_lib.num_kept(cfg.num_heads, 0.25), grid_lib.num_kept(
        cfg.intermediate_size, 0.25)
    head_dim = cfg.hidden_size // cfg.num_heads
    narrow_rows = len(kept) * 2 * (2 * heads * head_dim + neurons) * cfg.hidden_size * 4
    positions = BUCKET * cfg.hidden_size * 4
    assert sharing["prefix_bytes"] >= narrow_rows + positions, sharing
    alignment = shared_weights.ALIGNMENT * sharing["stored_once"]
    # bytes_before: the converter's output with the vocabulary and labels attached.
    assert stored["bytes"] <= sharing["bytes_before"] - sharing["prefix_bytes"] + alignment
    with open(path, "rb") as f:
        assert_output_kernels_inside_the_full_ones(f.read(), NARROW, "w1.00_d1.00", len(kept),
                                                   cfg.num_layers)


def test_dynamic_range_prefixes_are_shared_and_exact():
    """Dynamic range (int8 weights, a scale per output row of a FULLY_CONNECTED, per hidden
    column of an output kernel, the full kernel's for every width): the narrow kernels are
    the leading bytes of the full ones, and the full cell's output kernels are the cell's own
    file's, transposed, byte for byte and scale for scale. Sharing moves bytes, never changes
    them: every tensor of every subgraph reads what it read before (TensorFlow's own reader
    resolves the offsets), and each signature's logits are bit-identical."""
    import tempfile

    import keras
    from tensorflow.lite.tools import flatbuffer_utils

    keras.utils.set_random_seed(0)
    # Wide enough that the converter quantizes the narrow kernels too (>= 1024 weights).
    model = tiny_classifier(config=BertConfig(**{**TINY.to_dict(), "hidden_size": 64,
                                                 "intermediate_size": 256}))
    specs = elastic_lib.signatures([(1.0, 1.0), (0.5, 1.0)], SEQ_LEN)
    flat = elastic_lib.convert(model, specs, "dynamic_range")
    shared, stats = shared_weights.share_buffers(flat)
    # 2 layers x (query, key, value, intermediate, attention output, FFN output) of w0.50.
    assert stats["prefix_aliased"] >= 2 * 6, stats
    assert len(shared) < len(flat)
    assert_output_kernels_inside_the_full_ones(shared, "w0.50_d1.00", "w1.00_d1.00", 2, 2)
    with tempfile.TemporaryDirectory() as tmp:  # the full cell's own file
        own = tflite_lib.convert_saved_model(
            tflite_lib.to_saved_model(model, os.path.join(tmp, "saved"), SEQ_LEN),
            "dynamic_range")
    own_weights = {bytes(t.data): list(t.scale) for t in int8_weights(own, transpose=True)}
    full_outputs = int8_weights(flat, "w1.00_d1.00", op="BATCH_MATMUL")
    assert len(full_outputs) == 2 * 2
    for kernel in full_outputs:
        assert own_weights.get(bytes(kernel.data)) == list(kernel.scale)
    before, after = Interpreter(model_content=flat), Interpreter(model_content=shared)
    for name in specs:
        for x in batch_inputs(4):
            np.testing.assert_array_equal(before.get_signature_runner(name)(**x)["logits"],
                                          after.get_signature_runner(name)(**x)["logits"])
    old = flatbuffer_utils.read_model_from_bytearray(bytearray(flat))
    new = flatbuffer_utils.read_model_from_bytearray(bytearray(shared))
    tensor_bytes = lambda m, t: np.asarray(
        [] if m.buffers[t.buffer].data is None else m.buffers[t.buffer].data, np.uint8).tobytes()
    checked = 0
    for old_graph, new_graph in zip(old.subgraphs, new.subgraphs):
        for old_tensor, new_tensor in zip(old_graph.tensors, new_graph.tensors):
            assert tensor_bytes(old, old_tensor) == tensor_bytes(new, new_tensor)
            checked += bool(tensor_bytes(old, old_tensor))
    assert checked > 40


def int8_weights(tflite_bytes, signature=None, op="FULLY_CONNECTED", transpose=False):
    """The int8 constant weights (input 1) of `op` in `signature`'s subgraph (the first if
    None), each as (data: the bytes, transposed if asked, scale: its scales)."""
    import collections

    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_bytes))
    index = 0 if signature is None else next(
        s.subgraphIndex for s in model.signatureDefs if s.signatureKey.decode() == signature)
    graph, found = model.subgraphs[index], []
    Weight = collections.namedtuple("Weight", "data scale")
    for operator in graph.operators:
        code = model.operatorCodes[operator.opcodeIndex]
        if max(code.builtinCode, code.deprecatedBuiltinCode) != getattr(
                schema.BuiltinOperator, op):
            continue
        tensor = graph.tensors[operator.inputs[1]]
        data = model.buffers[tensor.buffer].data
        if tensor.type == schema.TensorType.INT8 and data is not None:
            values = np.asarray(data, np.uint8).view(np.int8).reshape(tensor.shape)
            values = values.reshape(values.shape[-2:])
            found.append(Weight((values.T if transpose else values).tobytes(),
                                np.asarray(tensor.quantization.scale).tolist()))
    return found


def test_benchmark_and_select_pick_a_signature(exports):
    _, _, (out, _) = exports
    benchmark_lib.benchmark_dir(out, threads=(1,), runs=2, warmup=1, rounds=1, plot=False,
                                progress=False)
    manifest = json.load(open(os.path.join(out, export_lib.MANIFEST)))
    assert all(e["latency_ms"]["1"]["median"] > 0 for e in manifest["cells"])
    entry = selection.select_cell(manifest, max_latency_ms=1e6, threads=1)
    # make_workdir's eval grid: accuracy falls along the grid, w1.00_d1.00 is best.
    assert (entry["file"], entry["signature"]) == (elastic_lib.FILE_NAME, "w1.00_d1.00")
    line = select_cli.describe(entry, os.path.join(out, export_lib.MANIFEST), "accuracy", 1)
    assert line.endswith(f"{os.path.join(out, elastic_lib.FILE_NAME)}  signature w1.00_d1.00")
    fastest = min(manifest["cells"], key=lambda e: e["latency_ms"]["1"]["median"])
    entry = selection.select_cell(manifest, threads=1,
                                  max_latency_ms=fastest["latency_ms"]["1"]["median"])
    assert entry["signature"] == fastest["cell"]
    with pytest.raises(selection.SelectionError, match="fits in"):
        selection.select_cell(manifest, max_bytes=entry["bytes"] - 1)


@pytest.mark.parametrize("kwargs, message", [
    ({"seq_buckets": "8"}, "--seq_buckets needs --format=elastic"),
    ({"export_format": "elastic", "seq_buckets": "8,16"}, r"--seq_buckets must be .* '16'"),
    ({"export_format": "elastic", "seq_buckets": "8,x"}, r"--seq_buckets must be .* 'x'"),
    ({"export_format": "elastic", "quantization": "int8"}, "not available with --format"),
    ({"export_format": "zip"}, "--format must be one of per_cell, elastic"),
])
def test_bad_elastic_flags(exports, tmp_path, kwargs, message):
    workdir, _, _ = exports
    with pytest.raises(ExportError, match=message):
        export_lib.export_model(workdir, str(tmp_path / "out"), **{
            "seq_len": SEQ_LEN, "progress": False, **kwargs})
    assert not os.path.exists(tmp_path / "out")


def test_elastic_and_per_cell_exports_do_not_mix(exports):
    workdir, (cell_dir, _), _ = exports
    with pytest.raises(ExportError, match="holds another export.*format"):
        export_lib.export_model(workdir, cell_dir, "none", seq_len=SEQ_LEN, cells=CELLS,
                                progress=False, export_format="elastic")


def test_signature_names():
    assert elastic_lib.signature_name("w0.50_d0.75", 128, 128) == "w0.50_d0.75"
    assert elastic_lib.signature_name("w0.50_d0.75", 32, 128) == "w0.50_d0.75_s32"
    assert elastic_lib.parse_seq_buckets("64, 32,64", 128) == (32, 64)
    assert elastic_lib.bucket_for(27, (32, 64, 128)) == 32
    assert elastic_lib.bucket_for(33, (32, 64, 128)) == 64
    assert elastic_lib.bucket_for(300, (32, 64, 128)) == 128
    assert list(elastic_lib.signatures([(0.5, 0.75)], 128, (32,))) == [
        grid_lib.cell_name(0.5, 0.75), "w0.50_d0.75_s32"]
