"""SQuAD's official JSON files (`train-v1.1.json`, `dev-v2.0.json`, ...) read into validated
examples, without TensorFlow: `data.squad` builds features from them, and the training CLI
reads them before TensorFlow starts.

    examples = read_squad_json(json_path("v1.1", "dev", "squad"))  # squad/dev-v1.1.json
"""

import dataclasses
import os

from dynabert_tf.core import text_files


def json_path(version, split, data_dir):
    """The official file of `split` ("train" or "dev") of SQuAD `version` in `data_dir`."""
    return os.path.join(data_dir, f"{split}-{version}.json")


@dataclasses.dataclass(frozen=True)
class SquadExample:
    """One question on one context.

    Attributes:
      qas_id: the question's id (unique within a file).
      answers: tuple of (text, answer_start) gold answers, answer_start a character index in
        `context`; empty for an unanswerable (v2.0) question.
    """
    qas_id: str
    question: str
    context: str
    answers: tuple
    is_impossible: bool
    title: str


def example_from_qa(qa, context, title, where):
    """A validated `SquadExample` from a question dict of the official layout."""
    answers = tuple((answer["text"], int(answer["answer_start"])) for answer in qa["answers"])
    for text, start in answers:
        if context[start:start + len(text)] != text:
            raise ValueError(f"{where}: answer {text!r} is not at answer_start {start} of its "
                             f"context (found {context[start:start + len(text)]!r})")
    is_impossible = bool(qa.get("is_impossible", False))
    if is_impossible and answers:
        raise ValueError(f"{where}: an unanswerable question has answers")
    if not is_impossible and not answers:
        raise ValueError(f"{where}: no answers, and is_impossible is not true")
    return SquadExample(str(qa["id"]), qa["question"], context, answers, is_impossible, title)


def read_squad_json(path):
    """Examples of a SQuAD JSON file (`{"data": [{"title", "paragraphs": [{"context", "qas"}]}]}`).

    Raises:
      FileNotFoundError: no file at `path`.
      ValueError: invalid JSON, a missing key, a misplaced answer or a repeated question id;
        the message names the file and the question.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no SQuAD file at {path}")
    content = text_files.strict_json(text_files.read_utf8(path, path), path)
    examples, where = [], path
    try:
        for i, article in enumerate(content["data"]):
            where = f"{path}: data[{i}]"
            for j, paragraph in enumerate(article["paragraphs"]):
                where = f"{path}: data[{i}].paragraphs[{j}]"
                context = paragraph["context"]
                for k, qa in enumerate(paragraph["qas"]):
                    where = f"{path}: data[{i}].paragraphs[{j}].qas[{k}]"
                    examples.append(example_from_qa(qa, context, article.get("title", ""), where))
    except (KeyError, TypeError) as e:
        problem = f"missing key {e}" if isinstance(e, KeyError) else f"unexpected layout ({e})"
        raise ValueError(f"{where}: {problem}") from None
    check_unique_ids(examples, path)
    return examples


def check_unique_ids(examples, where):
    seen = set()
    for example in examples:
        if example.qas_id in seen:
            raise ValueError(f"{where}: question id {example.qas_id!r} appears twice")
        seen.add(example.qas_id)
