"""Runs one TFLite file on saved inputs, one example at a time, and saves its outputs.

The same code runs on both sides of `benchmarks/arm.py`: under qemu-aarch64 in the arm64
userland (which has only numpy and ai_edge_litert) and in-process on x86, so the ARM and x86
numbers come from identical calls. Needs nothing from the project.

    python3 arm_guest_runner.py MODEL.tflite INPUTS.npz OUTPUTS.npz \\
        [--signature serving_default] [--count N] [--threads 1]

INPUTS.npz: int32 [n, seq_len] per input name (token_ids, segment_ids, padding_mask).
OUTPUTS.npz: [count, ...] per output name (classification: logits [count, classes]).
"""

import argparse

import numpy as np


def run_file(model_path, inputs, count=None, signature="serving_default", threads=1):
    """{output name: [count, ...]}: the first `count` examples of `inputs` ({name: int32
    [n, seq_len]}), one call of the batch-1 file each."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=model_path,
                         num_threads=threads).get_signature_runner(signature)
    available = len(next(iter(inputs.values())))
    count = available if count is None else count
    if not 1 <= count <= available:
        raise ValueError(f"--count must be in [1, {available}], got {count}")
    rows = [runner(**{name: values[i:i + 1] for name, values in inputs.items()})
            for i in range(count)]
    return {name: np.concatenate([row[name] for row in rows]) for name in rows[0]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("inputs")
    parser.add_argument("outputs")
    parser.add_argument("--signature", default="serving_default")
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    with np.load(args.inputs) as saved:
        inputs = {name: saved[name] for name in saved.files}
    outputs = run_file(args.model, inputs, args.count, args.signature, args.threads)
    np.savez(args.outputs, **outputs)


if __name__ == "__main__":
    main()
