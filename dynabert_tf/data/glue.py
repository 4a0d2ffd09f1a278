"""GLUE tasks from the official TSV layout or from tensorflow-datasets.

    examples = glue_tsv_examples(task, "train", "glue_data")   # glue_data/SST-2/train.tsv
    examples = tfds_examples(task, "train", data_dir=None)     # needs network unless prepared
"""

import os

from dynabert_tf.core import text_files
from dynabert_tf.data import tfds_source
from dynabert_tf.data.tasks import Example, parse_finite


def glue_tsv_examples(task, split, data_dir):
    path = os.path.join(data_dir, task.glue_dir, f"{split}.tsv")
    if not os.path.exists(path) and os.path.isfile(os.path.join(data_dir, f"{split}.tsv")):
        path = os.path.join(data_dir, f"{split}.tsv")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {split}.tsv for task {task.name!r} at {path}")
    where = f"{task.glue_dir}/{split}.tsv"
    header = task.headerless_columns if split in ("train", *task.dev_splits) else None
    examples = []
    rows = text_files.tsv_rows(path, where)
    if header is None:
        first = next(rows, None)  # (line number, fields) of the first non-empty line
        if first is None:
            raise ValueError(f"{where} line 1: empty file, expected a header row")
        header = first[1]
    has_labels = split not in task.test_splits
    wanted = [task.text_a] + [task.text_b] * (task.text_b is not None)
    wanted += [task.label_column] * has_labels
    missing = [name for name in wanted if name not in header]
    if missing:
        raise ValueError(f"{where} line 1: header lacks column(s) {', '.join(missing)}; "
                         f"got {', '.join(header)}")
    column = {name: header.index(name) for name in wanted}
    for line_number, row in rows:
        if len(row) != len(header):
            raise ValueError(f"{where} line {line_number}: expected {len(header)} "
                             f"columns, got {len(row)}")
        label = (_parse_label(task, row[column[task.label_column]],
                              f"{where} line {line_number}") if has_labels else None)
        examples.append(Example(row[column[task.text_a]],
                                row[column[task.text_b]] if task.text_b else None, label))
    if not examples:
        raise ValueError(f"{where} has no examples" + ("" if task.headerless_columns
                                                       else " (at most a header row)"))
    return examples


def _parse_label(task, value, where):
    if task.is_regression:
        return parse_finite(value, where, task.label_column)
    if value not in task.label_names:
        raise ValueError(f"{where}: bad label {value!r}; expected one of "
                         f"{', '.join(task.label_names)}")
    return task.label_names.index(value)


_TFDS_SPLITS = {"dev": "validation", "dev_matched": "validation_matched",
                "dev_mismatched": "validation_mismatched"}


def tfds_examples(task, split, data_dir):
    import tensorflow_datasets as tfds  # imported here: only this path needs it

    builder = tfds_source.prepared_builder(
        f"glue/{task.name}", data_dir,
        f"use --data_source=tsv --data_dir=<GLUE folder holding {task.glue_dir}/>",
        default_url="https://dl.fbaipublicfiles.com")
    tfds_names = builder.info.features["label"].names if not task.is_regression else None
    examples = []
    for record in tfds.as_numpy(builder.as_dataset(split=_TFDS_SPLITS.get(split, split))):
        texts = [record[name].decode("utf-8") for name in task.tfds_text]
        label = record["label"]
        if split in task.test_splits or label == -1:
            label = None
        elif task.is_regression:
            label = float(label)
        else:  # tfds orders labels its own way (MNLI: entailment, neutral, contradiction)
            label = task.label_names.index(str(tfds_names[label]))
        examples.append(Example(texts[0], texts[1] if len(texts) > 1 else None, label))
    return examples
