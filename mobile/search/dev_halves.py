"""The dev split in two seeded halves: one to search on, one to report on.

A search that picks the best of many sub-networks by their dev metric overrates its pick on
the examples it was picked on (selection bias). `split_dev` therefore halves the dev split
by a seeded permutation: `mobile.search` scores candidates on the search half only and
reports the found configurations and the grid cells on the report half, where none of them
was chosen. The report half's noise is the bootstrap standard deviation of the metric.

Each half is tokenized once and batched by length (sorted, padded to each batch's longest
example, not to seq_len), so evaluating a candidate costs what its real sentences cost.

    search, report = dev_halves.split_dev("rt_polarity", vocab_path)
    logits = dev_halves.predict(model, config, search)          # [n, classes]
    dev_halves.metric(task, logits, search.labels, "accuracy")
"""

import collections
import dataclasses

import numpy as np

from dynabert_tf.models import config as model_config

INPUT_NAMES = model_config.INPUT_NAMES


@dataclasses.dataclass(frozen=True)
class Half:
    """One half of the dev split.

    name: "search" or "report".
    indices: int [n], the examples' positions in the dev split, in batch order.
    batches: list of {name: int32 [batch, longest in batch]} model inputs.
    labels: [n] class indices or regression targets, in batch order.
    """

    name: str
    indices: np.ndarray
    batches: list
    labels: np.ndarray

    def __len__(self):
        return len(self.labels)


def split_dev(task, vocab_path, seq_len=128, seed=0, batch_size=64, data_dir=None):
    """(search half, report half) of the task's first dev split (MNLI: dev_matched).

    The halves come from `numpy.random.default_rng(seed).permutation` (the search half gets
    the first ceil(n / 2)); sentences longer than `seq_len` tokens are truncated.
    Raises ValueError for a task without a labelled classification / regression dev split.
    """
    import tensorflow as tf

    from dynabert_tf import data
    from dynabert_tf.data import pipeline
    from dynabert_tf.models.bert import tokenizer as tokenization

    task = data.get_task(task)
    if task.head_kind not in ("classification", "regression"):
        raise ValueError(f"the search scores classification or regression tasks, not "
                         f"{task.name} ({task.head_kind})")
    examples = data.load_examples(task, task.dev_splits[0], data_dir=data_dir)
    if len(examples) < 2 or any(e.label is None for e in examples):
        raise ValueError(f"{task.name} {task.dev_splits[0]}: the search needs at least two "
                         f"labelled dev examples")
    encoded = pipeline.encode(examples, tokenization.BertInputEncoder(vocab_path, seq_len))
    order = np.random.default_rng(seed).permutation(len(examples))
    cut = -(-len(examples) // 2)
    lengths = encoded.features["token_ids"].row_lengths().numpy()
    halves = []
    for name, part in (("search", order[:cut]), ("report", order[cut:])):
        part = part[np.argsort(lengths[part], kind="stable")]
        batches = []
        for start in range(0, len(part), batch_size):
            rows = tf.constant(part[start:start + batch_size])
            batches.append({key: tf.gather(encoded.features[key], rows).to_tensor(
                default_value=encoded.pad_id if key == "token_ids" else 0)
                for key in INPUT_NAMES})
        halves.append(Half(name, part, batches, encoded.labels[part]))
    return tuple(halves)


def predict(model, config, half):
    """float32 [n, outputs]: `model(inputs, subnetwork=config)` over the half, in its order."""
    return np.concatenate([np.asarray(model(batch, subnetwork=config, training=False))
                           for batch in half.batches])


class PrefixCachedPredictor:
    """`predict(model, config, half)` for many configurations, faster: the hidden states after
    each prefix of kept layers (layer, heads, neurons) are kept (the `max_states` most recently
    used), and a configuration starts from the longest prefix already computed. An
    evolutionary search's children share most of their layers with a parent.

    Runs the backbone's public pieces as `DynaBertBackbone.call_subnetwork` does (`embed`
    once per batch, then each kept layer, the pooler and the head); tests check it equals
    `model(inputs, subnetwork=config)`.
    """

    def __init__(self, model, half, max_states=24):
        self.model, self.half, self.max_states = model, half, max_states
        self.embedded = [model.backbone.embed(batch, training=False) for batch in half.batches]
        self.states = collections.OrderedDict()  # prefix -> [[batch, seq, hidden] per batch]
        self.layers_run = 0

    def __call__(self, config):
        """float32 [n, outputs] of `config` over the half, in its order."""
        from dynabert_tf.elastic import layerwise

        backbone = self.model.backbone
        layerwise.check(config, backbone.bert_config)
        genes = tuple(zip(config.layers, config.heads, config.neurons))
        start = max((k for k in range(1, len(genes) + 1) if genes[:k] in self.states),
                    default=0)
        hidden = (self.states[genes[:start]] if start
                  else [e["embeddings"] for e in self.embedded])
        if start:
            self.states.move_to_end(genes[:start])
        for k in range(start, len(genes)):
            layer, heads, neurons = genes[k]
            hidden = [backbone.transformer_layers[layer](
                x, e["attention_bias"], num_heads=heads, num_neurons=neurons,
                training=False)[0] for x, e in zip(hidden, self.embedded)]
            self.layers_run += 1
            self.states[genes[:k + 1]] = hidden
            while len(self.states) > self.max_states:
                self.states.popitem(last=False)
        name = self.model.head.output_names[0]
        return np.concatenate([np.asarray(self.model.head(
            {"sequence_output": x, "pooled_output": backbone.pooler(x[:, 0])},
            training=False)[name]) for x in hidden])


def metric(task, predictions, labels, name):
    """One metric (`tasks.metrics.compute_metrics`) of predictions [n, outputs]."""
    from dynabert_tf.tasks import metrics as metrics_lib

    return float(metrics_lib.compute_metrics(task, predictions, labels)[name])


def bootstrap(task, name, labels, *predictions, samples=1000, seed=0):
    """{"std": [per prediction set], "difference_std"}: the bootstrap standard deviation of the
    metric of each prediction set, and (two sets) of the first's minus the second's metric,
    resampling the same examples for both (a paired bootstrap), over `samples` resamples."""
    rng = np.random.default_rng(seed)
    values = np.empty((samples, len(predictions)))
    for s in range(samples):
        rows = rng.integers(0, len(labels), len(labels))
        values[s] = [metric(task, p[rows], labels[rows], name) for p in predictions]
    result = {"std": [float(v) for v in values.std(axis=0, ddof=1)]}
    if len(predictions) == 2:
        result["difference_std"] = float((values[:, 0] - values[:, 1]).std(ddof=1))
    return result
