"""One entry point for a task's examples, whatever their source.

    examples = load_examples(get_task("sst2"), "train", data_dir="glue_data")
"""

from dynabert_tf.data import glue, movie_reviews
from dynabert_tf.data.tasks import get_task


def load_examples(task, split, data_dir=None, data_source="tsv"):
    """Examples of `split` ("train", a dev split, a test split) of `task` (a name or `Task`).

    data_source "tsv": GLUE tasks read `<data_dir>/<glue_dir>/<split>.tsv` (or `<data_dir>/
    <split>.tsv` when data_dir is the task folder); the rt_* tasks read the movie-review file
    from `data_dir` (a folder or the file) or, when None, from `assets.movie_reviews_path()`.
    data_source "tfds": GLUE tasks from tensorflow-datasets `glue/<name>`, `data_dir` being
    the tfds data dir; needs network access unless already prepared there.
    """
    task = get_task(task)
    if split not in task.splits:
        raise ValueError(f"task {task.name!r} has no split {split!r}; known: "
                         f"{', '.join(task.splits)}")
    if task.source == "movie_reviews":
        return movie_reviews.movie_review_examples(task, split, data_dir)
    if task.source == "squad":
        raise ValueError(f"task {task.name!r} is span extraction: its examples come from "
                         f"data.squad.load_squad_examples")
    if data_source == "tfds":
        return glue.tfds_examples(task, split, data_dir)
    if data_source != "tsv":
        raise ValueError(f"unknown data_source {data_source!r}; expected 'tsv' or 'tfds'")
    if data_dir is None:
        raise ValueError(f"task {task.name!r} needs data_dir (the GLUE folder holding "
                         f"{task.glue_dir}/), or data_source='tfds'")
    return glue.glue_tsv_examples(task, split, data_dir)
