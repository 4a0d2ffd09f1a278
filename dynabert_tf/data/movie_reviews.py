"""The built-in tasks on the 10,605 Rotten Tomatoes snippets of `assets.movie_reviews_path()`.

Each snippet has a mean human rating in [-4, 4]: `rt_polarity` (1 if the rating is > 0, 0 if
< 0, ratings of exactly 0 dropped; accuracy) and `rt_rating` (regression on the rating;
Pearson and Spearman). Rows whose text repeats an earlier row are dropped (2 rows), then
`numpy.random.default_rng(seed=RT_SPLIT_SEED).permutation` orders the rows: the first 80% are
train, the next 10% dev, the rest test. Both tasks share this permutation, so no sentence
crosses splits between them.
"""

import functools
import os

import numpy as np

from dynabert_tf.core import text_files
from dynabert_tf.data.tasks import Example, parse_finite
from dynabert_tf.io import assets

RT_SPLIT_SEED = 2014
RT_SPLIT_FRACTIONS = (0.8, 0.1)  # train, dev; test is the rest


def movie_review_splits(data_dir=None):
    """{"train"|"dev"|"test": [(rating, text), ...]} by the seeded permutation (module doc)."""
    path = assets.movie_reviews_path() if data_dir is None else data_dir
    if os.path.isdir(path):
        path = os.path.join(path, assets.MOVIE_REVIEWS_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no movie-review file at {path}")
    stat = os.stat(path)
    rows = _read_rows(path, stat.st_size, stat.st_mtime_ns)
    order = np.random.default_rng(seed=RT_SPLIT_SEED).permutation(len(rows))
    num_train = round(RT_SPLIT_FRACTIONS[0] * len(rows))
    num_dev = round(RT_SPLIT_FRACTIONS[1] * len(rows))
    bounds = {"train": (0, num_train), "dev": (num_train, num_train + num_dev),
              "test": (num_train + num_dev, len(rows))}
    return {split: [rows[i] for i in order[start:end]] for split, (start, end) in bounds.items()}


@functools.lru_cache(maxsize=2)
def _read_rows(path, size, mtime_ns):
    """((rating, text), ...) of the file's rows, repeated texts dropped; read once per file
    version (size and mtime are part of the key), as every split of a run reads it."""
    rows, seen = [], set()
    name = os.path.basename(path)
    for line_number, row in text_files.tsv_rows(path, name):
        if len(row) != 3:
            raise ValueError(f"{name} line {line_number}: expected 3 columns, got {len(row)}")
        rating = parse_finite(row[1], f"{name} line {line_number}", "rating")
        if row[2] not in seen:
            seen.add(row[2])
            rows.append((rating, row[2]))
    if not rows:
        raise ValueError(f"{path} has no reviews")
    return tuple(rows)


def movie_review_examples(task, split, data_dir):
    rows = movie_review_splits(data_dir)[split]
    if task.is_regression:
        examples = [Example(text, None, rating) for rating, text in rows]
    else:
        examples = [Example(text, None, int(rating > 0)) for rating, text in rows if rating != 0]
    if not examples:
        raise ValueError(f"the movie-review file has too few rows: its {split} split holds "
                         f"no {task.name} examples")
    return examples
