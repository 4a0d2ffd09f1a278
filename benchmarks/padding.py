"""Per-epoch cost of padding on the real rt_polarity training set (MiniLM-L6 shape).

    python benchmarks/padding.py [--steps=30] [--threads=2]

Times plain fine-tuning steps (batch 32) on the same shuffled epoch padded three ways —
always to 128 tokens, each batch to its longest example, and length-bucketed batches — and
projects the epoch time from the mean step time and the epoch's padded-token count.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from dynabert_tf.io import assets  # noqa: E402
from dynabert_tf.io import checkpoint  # noqa: E402
from dynabert_tf import data  # noqa: E402
from dynabert_tf.models.bert.tokenizer import BertInputEncoder  # noqa: E402

MODES = {"max (128)": dict(pad_to="max"), "longest in batch": dict(pad_to="longest"),
         "bucketed 16,24,32,48,64": dict(pad_to="longest",
                                         bucket_boundaries=[16, 24, 32, 48, 64])}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    examples = data.load_examples(data.get_task("rt_polarity"), "train")
    encoder = BertInputEncoder(os.path.join(assets.minilm_dir(), "vocab.txt"), 128)
    model = checkpoint.load_task_model(assets.minilm_dir(), num_classes=2)
    model.compile(optimizer=keras.optimizers.AdamW(2e-5),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    print(f"rt_polarity train: {len(examples)} examples, batch 32, {args.threads} threads")
    print(f"{'padding':<26}{'batches':>8}{'mean len':>9}{'s/step':>8}{'epoch s':>9}{'speed-up':>9}")
    baseline = None
    for name, options in MODES.items():
        dataset = data.make_dataset(examples, encoder, 32, shuffle=True, seed=0, **options)
        lengths = [int(batch["token_ids"].shape[1]) for batch, _ in dataset]
        sample = dataset.take(args.steps + 3).cache()
        model.fit(sample.take(3), verbose=0)  # trace the shapes out of the timing
        start = time.perf_counter()
        model.fit(sample.skip(3), verbose=0)
        per_step = (time.perf_counter() - start) / args.steps
        sample_len = np.mean([b["token_ids"].shape[1] for b, _ in sample.skip(3)])
        # Step time scales ~linearly with sequence length here; project by padded tokens.
        epoch = per_step * len(lengths) * np.mean(lengths) / sample_len
        baseline = baseline or epoch
        print(f"{name:<26}{len(lengths):>8}{np.mean(lengths):>9.1f}{per_step:>8.2f}"
              f"{epoch:>9.0f}{baseline / epoch:>8.1f}x")


if __name__ == "__main__":
    main()
