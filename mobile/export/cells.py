"""One standalone model -> one TFLite file: a grid cell or a per-layer sub-network.

    export_cell(model, 0.5, 0.75, "out/w0.50_d0.75.tflite")
    export_layerwise(model, LayerwiseConfig(...), "out/mix_....tflite")

Both extract the standalone sub-network (`dynabert_tf.elastic.subnetwork`), built under the
float32 policy whatever the global one (exports stay float32), and hand it to
`write_tflite`: SavedModel with the `serving_default` signature, TFLite conversion with
builtin ops only (`mobile.export.tflite`), optional flatbuffer metadata, written atomically.
"""

import os

from dynabert_tf.core import files
import mobile.export.tflite as tflite_lib


def write_tflite(standalone, path, seq_len=128, quantization="dynamic_range",
                 representative_inputs=None, metadata=None, probabilities=False,
                 standard_metadata=None):
    """Converts the standalone `DynaBertTaskModel` and writes `path` atomically.

    Args:
      seq_len: static length of the int32 [1, seq_len] inputs.
      quantization: one of `dynabert_tf.core.choices.QUANTIZATIONS`.
      representative_inputs: int8 / int16x8 calibration inputs (`tflite.convert_saved_model`).
      metadata: optional {name: bytes} attached as flatbuffer metadata.
      probabilities: a classification cell also outputs `probabilities` (softmax) (True),
        or only them ("only"); `tflite.output_names`.
      standard_metadata: optional function (tflite bytes, output names in the subgraph's
        order) -> tflite bytes with TFLite Metadata (`mobile.export.client_metadata`),
        applied last.
    Returns:
      {"bytes", "ops", "inputs", "outputs"} of the written file.
    """
    with files.scratch_directory(path) as tmp:  # beside the file, not in the system temp dir
        saved_model = os.path.join(tmp, "saved_model")
        tflite_lib.to_saved_model(standalone, saved_model, seq_len, probabilities)
        tflite = tflite_lib.convert_saved_model(saved_model, quantization,
                                                representative_inputs)
    ops = tflite_lib.check_builtin_ops(tflite)
    if tflite_lib.PROBABILITIES in tflite_lib.output_names(standalone, probabilities):
        tflite = tflite_lib.output_first(tflite, tflite_lib.PROBABILITIES)
    if metadata:
        tflite = tflite_lib.add_metadata(tflite, metadata)
    if standard_metadata is not None:
        import mobile.export.client_metadata as client_lib

        tflite = standard_metadata(tflite, client_lib.signature_outputs(tflite))
    inputs, outputs = tflite_lib.signature_io(tflite)
    files.write_atomic(path, tflite)
    return {"bytes": os.path.getsize(path), "ops": ops, "inputs": inputs, "outputs": outputs}


def export_cell(model, width_mult, depth_mult, path, seq_len=128,
                quantization="dynamic_range", representative_inputs=None, metadata=None,
                hidden_mult=1.0, probabilities=False, standard_metadata=None):
    """Extracts the (width_mult, depth_mult[, hidden_mult]) cell and writes it
    (`write_tflite`)."""
    from dynabert_tf import precision
    from dynabert_tf.elastic import subnetwork

    with precision.policy("float32"):  # the file is float32 whatever the global policy
        standalone = subnetwork.extract_subnetwork(model, width_mult, depth_mult, hidden_mult)
    return write_tflite(standalone, path, seq_len, quantization, representative_inputs,
                        metadata, probabilities, standard_metadata)


def export_layerwise(model, config, path, seq_len=128, quantization="dynamic_range",
                     representative_inputs=None, metadata=None):
    """Extracts the per-layer sub-network `config` (`elastic.layerwise.LayerwiseConfig`) and
    writes it (`write_tflite`); its outputs equal `model(inputs, subnetwork=config)`."""
    from dynabert_tf import precision
    from dynabert_tf.elastic import subnetwork

    with precision.policy("float32"):  # the file is float32 whatever the global policy
        standalone = subnetwork.extract_layerwise(model, config)
    return write_tflite(standalone, path, seq_len, quantization, representative_inputs,
                        metadata)
