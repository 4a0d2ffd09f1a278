"""Tasks, their examples (GLUE TSV, tensorflow-datasets, movie reviews) and tf.data pipelines.

    task = data.get_task("sst2")
    examples = data.load_examples(task, "train", data_dir="glue_data")  # glue_data/SST-2/train.tsv
    dataset = data.make_dataset(examples, encoder, batch_size=32, shuffle=True)

Names are imported on first use, so the task registry and the file readers (`get_task`,
`load_examples`) work without importing TensorFlow: the training CLI checks its inputs
before TensorFlow starts.
"""

import importlib

_HOME = {"load_examples": "loading", "movie_review_splits": "movie_reviews",
         "batches": "pipeline", "encode": "pipeline", "make_dataset": "pipeline",
         "TASKS": "tasks", "Example": "tasks", "Task": "tasks", "get_task": "tasks"}

__all__ = sorted(_HOME)


def __getattr__(name):
    if name in _HOME:
        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    try:
        return importlib.import_module(f"{__name__}.{name}")  # a submodule, e.g. data.squad
    except ModuleNotFoundError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
