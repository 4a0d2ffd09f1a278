"""Exports stay float32: a model built under a mixed global policy exports the same TFLite
file as its float32 twin (per-cell and elastic)."""

import keras
import numpy as np
import pytest

from ai_edge_litert.interpreter import Interpreter
from dynabert_tf import precision
from mobile import export as export_lib
from mobile.export import elastic_file
from tests.helpers import random_inputs, tiny_classifier_with_offsets

SEQ_LEN = 8


@pytest.fixture(autouse=True)
def _float32_after():
    yield
    keras.mixed_precision.set_global_policy("float32")


def _outputs(path, inputs, signature="serving_default"):
    runner = Interpreter(model_path=path).get_signature_runner(signature)
    return runner(**inputs)


def _tensor_dtypes(path):
    interpreter = Interpreter(model_path=path)
    return sorted({np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()})


def test_export_under_a_mixed_policy_is_the_float32_file(tmp_path):
    model = tiny_classifier_with_offsets(num_classes=2)
    with precision.policy("mixed_bfloat16"):
        mixed = tiny_classifier_with_offsets(num_classes=2)
    mixed.set_weights(model.get_weights())
    paths = {}
    for name, source, policy in (("float32", model, "float32"),
                                 ("mixed", mixed, "mixed_bfloat16")):
        keras.mixed_precision.set_global_policy(policy)  # the global policy during export
        paths[name] = str(tmp_path / f"{name}.tflite")
        export_lib.export_cell(source, 0.5, 1.0, paths[name], SEQ_LEN, quantization="none")
        paths[name + "_elastic"] = str(tmp_path / f"{name}_elastic.tflite")
        elastic_file.export_elastic(source, [(1.0, 1.0), (0.5, 1.0)],
                                    paths[name + "_elastic"], SEQ_LEN, quantization="none")
    x = random_inputs(batch_size=1, seq_len=SEQ_LEN, pad_last=2)
    for kind in ("", "_elastic"):
        want, got = paths["float32" + kind], paths["mixed" + kind]
        assert _tensor_dtypes(got) == _tensor_dtypes(want)
        assert "bfloat16" not in _tensor_dtypes(got) and "float16" not in _tensor_dtypes(got)
        signatures = Interpreter(model_path=want).get_signature_list()
        for signature in signatures:
            for name, value in _outputs(want, x, signature).items():
                np.testing.assert_array_equal(_outputs(got, x, signature)[name], value)
