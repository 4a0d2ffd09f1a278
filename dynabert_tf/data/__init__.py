"""Tasks, their examples (GLUE TSV, tensorflow-datasets, movie reviews) and tf.data pipelines.

    task = data.get_task("sst2")
    examples = data.load_examples(task, "train", data_dir="glue_data")  # glue_data/SST-2/train.tsv
    dataset = data.make_dataset(examples, encoder, batch_size=32, shuffle=True)
"""

from dynabert_tf.data.loading import load_examples
from dynabert_tf.data.movie_reviews import movie_review_splits
from dynabert_tf.data.pipeline import batches, encode, make_dataset
from dynabert_tf.data.tasks import TASKS, Example, Task, get_task

__all__ = ["TASKS", "Example", "Task", "batches", "encode", "get_task", "load_examples",
           "make_dataset", "movie_review_splits"]
