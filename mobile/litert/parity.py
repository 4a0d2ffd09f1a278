"""Parity of .tflite files with the dynamic Keras model: the same inputs through both,
max |logit difference| and label agreement."""

import logging
import os

import numpy as np

import mobile.export.inputs as inputs_lib
import mobile.export.manifest as manifest_lib
import mobile.export.tflite as tflite_lib
from mobile.export.tflite import PROBABILITIES
from mobile.litert.timing import signature_runner


def tflite_outputs(path, inputs, threads=2, signature=None):
    """{output name: [n, ...]} of a TFLite file, one example at a time (the files are batch 1)."""
    runner = signature_runner(path, threads, signature)
    count = len(inputs[tflite_lib.INPUT_NAMES[0]])
    rows = [runner(**{k: inputs[k][i:i + 1] for k in tflite_lib.INPUT_NAMES})
            for i in range(count)]
    return {name: np.concatenate([row[name] for row in rows]) for name in rows[0]}


def keras_outputs(model, inputs, width_mult, depth_mult, batch_size=32, hidden_mult=1.0):
    """{output name: [n, ...]} of the dynamic Keras model at a cell."""
    import tensorflow as tf

    from dynabert_tf.evaluation import cell_forward

    forward = cell_forward(model, width_mult, depth_mult, hidden_mult)  # {name: tensor}
    count = len(inputs[tflite_lib.INPUT_NAMES[0]])
    batches = [forward({k: tf.constant(inputs[k][i:i + batch_size])
                        for k in tflite_lib.INPUT_NAMES}) for i in range(0, count, batch_size)]
    return {name: np.concatenate([np.asarray(b[name]) for b in batches]) for name in batches[0]}


def parity_inputs(manifest, model_path, count, vocab_size, data_dir=None):
    """(inputs, description): `count` dev examples of the manifest's task, else random tokens."""
    task, seq_len = manifest.get("task"), manifest["seq_len"]
    vocab = os.path.join(model_path, manifest_lib.VOCAB)
    inputs, reason = inputs_lib.task_or_random_inputs(task, "dev", vocab, seq_len, count,
                                                      vocab_size, data_dir, seed=7)
    if reason is None:
        return inputs, f"{task} dev, first {len(inputs['token_ids'])} examples"
    logging.warning("parity on random tokens: %s dev data unavailable (%s)", task, reason)
    return inputs, f"random tokens ({count}): {task!r} dev data unavailable ({reason})"


def parity(path, keras_reference, inputs, signature=None):
    """{"max_abs_logit_diff", "label_agreement", "examples"[, "max_abs_probability_diff"]}
    of a file vs the reference outputs ({name: array}): the largest difference over the
    reference's outputs, how often the argmax (the label; a span's start and end token)
    agrees, and, for a file with `probabilities`, their largest difference from the softmax
    of the reference logits."""
    outputs = tflite_outputs(path, inputs, signature=signature)
    names = [name for name in outputs if name in keras_reference]  # not: probabilities
    diff = max([float(np.abs(outputs[name] - keras_reference[name]).max()) for name in names],
               default=None)  # None: a file of probabilities alone
    agree = [outputs[name].argmax(-1) == keras_reference[name].argmax(-1)
             for name in names if outputs[name].shape[-1] > 1]  # regression: no labels
    if not names and PROBABILITIES in outputs:
        agree = [outputs[PROBABILITIES].argmax(-1) == keras_reference["logits"].argmax(-1)]
    result = {"max_abs_logit_diff": diff,
              "label_agreement": float(np.mean(agree)) if agree else None,
              "examples": int(len(next(iter(outputs.values()))))}
    if PROBABILITIES in outputs and "logits" in keras_reference:
        result["max_abs_probability_diff"] = float(np.abs(
            outputs[PROBABILITIES] - softmax(keras_reference["logits"])).max())
    return result


def softmax(logits):
    """Softmax over the last axis, in float64."""
    shifted = np.asarray(logits, np.float64)
    shifted = np.exp(shifted - shifted.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)
