"""benchmarks/arm.py's host side: the runner both sides share, the ARM-vs-x86 comparison, the
entries read from manifests, the table. (The emulated runs themselves need the arm64 userland
of benchmarks/arm_setup.sh and are not part of the test suite.)"""

import hashlib
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import arm, arm_guest_runner

INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")


def _linear_tflite(path, weights):
    """A batch-1 TFLite file: logits [1, 2] = float(token_ids + 10 * segment_ids) @ weights."""
    class Linear(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.int32, name=n)
                                      for n in INPUT_NAMES])
        def serve(self, token_ids, segment_ids, padding_mask):
            del padding_mask
            x = tf.cast(token_ids + 10 * segment_ids, tf.float32)
            return {"logits": tf.matmul(x, tf.constant(weights))}

    module = Linear()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.serve.get_concrete_function()], module)
    with open(path, "wb") as f:
        f.write(converter.convert())


def test_run_file_matches_numpy_per_example(tmp_path):
    weights = np.array([[1, -1], [2, 0], [0, 3], [-1, 1]], np.float32)
    model = str(tmp_path / "linear.tflite")
    _linear_tflite(model, weights)
    rng = np.random.default_rng(0)
    inputs = {"token_ids": rng.integers(0, 50, (5, 4)).astype("int32"),
              "segment_ids": rng.integers(0, 2, (5, 4)).astype("int32"),
              "padding_mask": np.ones((5, 4), "int32")}
    expected = (inputs["token_ids"] + 10 * inputs["segment_ids"]).astype(np.float32) @ weights
    outputs = arm_guest_runner.run_file(model, inputs, count=3)
    np.testing.assert_array_equal(outputs["logits"], expected[:3])  # small integers: exact
    np.testing.assert_array_equal(arm_guest_runner.run_file(model, inputs)["logits"], expected)
    with pytest.raises(ValueError, match="--count"):
        arm_guest_runner.run_file(model, inputs, count=6)


def test_compare_counts_flipped_labels_and_largest_difference():
    x86 = {"logits": np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.5, 0.6]], np.float32)}
    same = arm.compare({"logits": x86["logits"].copy()}, x86)
    assert same == {"label_agreement": 1.0, "max_abs_logit_diff": 0.0, "bitwise_equal": True}
    arm_out = x86["logits"].copy()
    arm_out[3] = [0.7, 0.6]  # label flips, |d| = 0.2
    arm_out[0, 0] = 1.0625  # |d| = 0.0625, label kept
    result = arm.compare({"logits": arm_out}, x86)
    assert result["label_agreement"] == 0.75
    assert result["max_abs_logit_diff"] == pytest.approx(0.2, abs=1e-6)
    assert result["bitwise_equal"] is False


def test_guest_command_runs_the_runner_in_the_root_with_the_plugin():
    command = arm.guest_command("/c", "m.tflite", "in.npz", "out.npz", 7, "serving_default",
                                "/s/n.txt", "cortex-a76")
    assert command[:6] == ["qemu-aarch64", "-cpu", "cortex-a76", "-plugin",
                           "/c/libinsn_count.so,out=/s/n.txt", "-L"]
    assert command[6:9] == ["/c/rootfs", "/c/rootfs/usr/bin/python3.11",
                            os.path.join(arm.HERE, "arm_guest_runner.py")]
    assert command[command.index("--count") + 1] == "7"


def _manifest_dir(path, quantization, cells):
    os.makedirs(path)
    entries = []
    for cell in cells:
        (path / f"{cell}.tflite").write_bytes(b"x")
        entries.append({"cell": cell, "file": f"{cell}.tflite", "width_mult": 1.0,
                        "depth_mult": 1.0, "quantization": quantization, "bytes": 1,
                        "sha256": hashlib.sha256(b"x").hexdigest()})  # the manifest checks it
    (path / "manifest.json").write_text(json.dumps(
        {"quantization": quantization, "seq_len": 4, "signature": "serving_default",
         "cells": entries}))
    return str(path)


def test_entries_name_cell_mode_signature_and_filter_cells(tmp_path):
    fp32 = _manifest_dir(tmp_path / "fp32", "none", ["w1.00_d1.00", "w0.25_d0.50"])
    int8 = _manifest_dir(tmp_path / "int8", "int8", ["w1.00_d1.00", "w0.25_d0.50"])
    keys = [key for key, *_ in arm.entries([fp32, int8], [])]
    assert keys == ["w1.00_d1.00/float32/serving_default", "w0.25_d0.50/float32/serving_default",
                    "w1.00_d1.00/int8/serving_default", "w0.25_d0.50/int8/serving_default"]
    only = [(key, entry["quantization"]) for key, _, _, entry in
            arm.entries([fp32, int8], ["w0.25_d0.50"])]
    assert only == [("w0.25_d0.50/float32/serving_default", "none"),
                    ("w0.25_d0.50/int8/serving_default", "int8")]


def test_table_orders_modes_and_divides_by_float32():
    def row(mode, insns):
        return {"cell": "w1.00_d1.00", "mode": mode, "signature": "serving_default",
                "bytes": 2_000_000, "label_agreement": 1.0, "examples": 32,
                "max_abs_logit_diff": 1e-3, "bitwise_equal": False,
                "guest_insns_per_inference": insns, "emulated_seconds_per_inference": 0.5}

    results = {"cells_order": ["w1.00_d1.00"], "files": {
        "a": row("float32", 400e6), "b": row("int8", 100e6), "c": row("float16", 500e6)}}
    lines = arm.format_table(results).splitlines()
    assert [line.split(" | ")[1] for line in lines[2:]] == ["int8", "float16", "float32"]
    assert lines[2].split(" | ")[6:8] == ["100", "0.25"]
    assert lines[4].split(" | ")[6:8] == ["400", "1.00"]
