"""Fine-tuned teacher vs a frozen-feature baseline on the real MiniLM-L6 and rt_polarity.

    python benchmarks/teacher.py [--workdir=workdirs/demo] [--flagfile=configs/demo.flags]

1. Runs (or reuses) the `teacher` stage of `train.run` with the flagfile; reports its wall
   time and dev/test accuracy.
2. Baseline: the pretrained MiniLM-L6, frozen, mean-pooled over tokens, then L2-regularised
   logistic regression (scipy L-BFGS), the regularisation chosen on dev, reported on test.
"""

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import scipy.optimize  # noqa: E402
import scipy.special  # noqa: E402
import tensorflow as tf  # noqa: E402

from dynabert_tf.io import assets  # noqa: E402
from dynabert_tf.io import checkpoint  # noqa: E402
from dynabert_tf import data  # noqa: E402
from dynabert_tf.evaluation import FEATURE_SPEC  # noqa: E402
from dynabert_tf.models.bert.tokenizer import BertInputEncoder  # noqa: E402


def mean_pooled_features(backbone, examples, encoder, batch_size=64):
    dataset = data.make_dataset(examples, encoder, batch_size, pad_to="longest")
    embed = tf.function(lambda x: backbone(x)["sequence_output"],
                        input_signature=[FEATURE_SPEC])
    features, labels = [], []
    for batch, batch_labels in dataset:
        mask = tf.cast(batch["padding_mask"], tf.float32)[..., None]
        pooled = tf.reduce_sum(embed(batch) * mask, 1) / tf.reduce_sum(mask, 1)
        features.append(pooled.numpy())
        labels.append(batch_labels.numpy())
    return np.concatenate(features), np.concatenate(labels)


def fit_logistic_regression(x, y, l2):
    """Binary logistic regression with an intercept; returns the weight vector."""
    x = np.hstack([x, np.ones((len(x), 1))])

    def loss_and_grad(w):
        z = x @ w
        loss = np.mean(np.logaddexp(0, z) - y * z) + 0.5 * l2 * w[:-1] @ w[:-1]
        grad = x.T @ (scipy.special.expit(z) - y) / len(y)
        grad[:-1] += l2 * w[:-1]
        return loss, grad

    return scipy.optimize.minimize(loss_and_grad, np.zeros(x.shape[1]), jac=True,
                                   method="L-BFGS-B").x


def lr_accuracy(w, x, y):
    return float(np.mean(((np.hstack([x, np.ones((len(x), 1))]) @ w) > 0) == y))


def frozen_baseline():
    task = data.get_task("rt_polarity")
    backbone = checkpoint.load_backbone(assets.minilm_dir())
    encoder = BertInputEncoder(os.path.join(assets.minilm_dir(), "vocab.txt"), 128)
    splits = {split: mean_pooled_features(backbone, data.load_examples(task, split), encoder)
              for split in ("train", "dev", "test")}
    scores = {}
    for l2 in (1e-4, 1e-3, 1e-2, 1e-1):
        w = fit_logistic_regression(*splits["train"], l2)
        scores[l2] = (lr_accuracy(w, *splits["dev"]), lr_accuracy(w, *splits["test"]))
    best = max(scores, key=lambda l2: scores[l2][0])
    return {"l2": best, "dev": scores[best][0], "test": scores[best][1]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="workdirs/demo")
    parser.add_argument("--flagfile", default="configs/demo.flags")
    args = parser.parse_args()

    start = time.time()
    subprocess.run([sys.executable, "-m", "train.run", f"--flagfile={args.flagfile}",
                    f"--workdir={args.workdir}", "--stages=teacher"], check=True)
    with open(os.path.join(args.workdir, "teacher", "stage.json")) as f:
        teacher = json.load(f)
    print(f"teacher stage: {teacher['wall_seconds']} s of training "
          f"({time.time() - start:.0f} s this call; 0 training if it was already complete)")
    baseline = frozen_baseline()
    print(f"{'model':<44}{'dev acc':>9}{'test acc':>10}")
    print(f"{'frozen MiniLM-L6 mean-pool + logistic reg.':<44}{100 * baseline['dev']:>9.2f}"
          f"{100 * baseline['test']:>10.2f}")
    print(f"{'fine-tuned teacher (' + args.flagfile + ')':<44}"
          f"{100 * teacher['dev']['accuracy']:>9.2f}{100 * teacher['test']['accuracy']:>10.2f}")


if __name__ == "__main__":
    main()
