"""The checks of a run's inputs that need no TensorFlow, made before it starts: a bad
checkpoint, vocabulary, data file or workdir is reported in a second, not after a stage.

    inputs = preflight.check(settings)   # ValueError / FileNotFoundError naming the problem
    inputs.checkpoint_dir, inputs.architecture, inputs.vocab_path

Flag values themselves are checked by `train.settings`; the checkpoint and vocabulary are
found by `train.sources`.
"""

import dataclasses
import os
import tempfile

from dynabert_tf import data
from dynabert_tf.data import squad_json
from dynabert_tf.core import grid as grid_lib
from dynabert_tf.core import files, layout, safetensors_header
from dynabert_tf.presets import hf_config, vocab
from train import sources

# The special tokens keras-hub's tokenizers require: BertTokenizer (and its WordPiece
# out-of-vocabulary token) for a vocab.txt, RobertaTokenizer for a vocab.json.
_SPECIAL_TOKENS = {False: ("[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]"),
                   True: ("<s>", "</s>", "<pad>", "<mask>")}


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What the checks found: the init checkpoint's directory, its architecture (BertConfig
    fields, or a keras-hub preset's config) and the vocabulary file."""

    checkpoint_dir: str
    architecture: dict
    vocab_path: str


def check(settings):
    """Checks the workdir, the init checkpoint, the vocabulary and the data the requested
    stages read; returns `Inputs`. Raises ValueError / FileNotFoundError with one line."""
    check_workdir(settings.workdir)
    checkpoint_dir = sources.checkpoint_dir(settings.model)
    architecture, vocab_size = _check_checkpoint(checkpoint_dir, settings)
    _check_relation_heads(settings, architecture)
    vocab_path = sources.vocab_path(settings.model)
    _check_vocab(vocab_path, vocab_size)
    if "augment" in settings.pipeline:
        from train import augment

        augment.check_inputs(settings.augmentation, vocab_path)
    _check_data(settings)
    return Inputs(checkpoint_dir, architecture, vocab_path)


def check_workdir(path):
    """The workdir, or its nearest existing parent, is a writable directory."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"--workdir {path} is a file, not a directory")
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"--workdir {path} cannot be made: {existing} is a file")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=existing)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise ValueError(f"--workdir {path} is not writable: cannot create a file in "
                         f"{existing} ({e.strerror})") from None


def _check_checkpoint(path, settings):
    """(architecture dict, vocab_size or None) of the init checkpoint's config.json; checks
    max_seq_length fits its position embeddings and that its weights file is readable."""
    config_path = os.path.join(path, layout.CONFIG)
    config = files.read_json(config_path, layout.CONFIG)
    if isinstance(config, dict) and "class_name" in config:  # a keras-hub preset
        architecture = config.get("config") or {}
        positions = architecture.get("max_sequence_length")
        vocab_size = None
    else:
        bert = hf_config.read_config(config_path)
        architecture, vocab_size = bert.to_dict(), bert.vocab_size
        positions = bert.max_position_embeddings - bert.position_offset
        if not settings.random_init:
            _check_safetensors(os.path.join(path, layout.WEIGHTS))
    if isinstance(positions, int) and settings.max_seq_length > positions:
        raise ValueError(f"max_seq_length {settings.max_seq_length} is more than the "
                         f"{positions} positions of {config_path}")
    return architecture, vocab_size


def _check_relation_heads(settings, architecture):
    """--relation_heads divides every width's query/key/value columns (MiniLM objectives)."""
    distilling = settings.distillation and {"width", "width_depth"} & set(settings.stages)
    if settings.distill_objective == "dynabert" or not distilling \
            or "num_heads" not in architecture or "hidden_size" not in architecture:
        return  # a keras-hub preset's config is checked when the model is built
    num_heads = architecture["num_heads"]
    head_dim = architecture.get("attention_head_dim") or architecture["hidden_size"] // num_heads
    grid_lib.check_relation_heads(settings.relation_heads or num_heads, num_heads, head_dim,
                                  (*settings.width_mults, 1.0))


def _check_safetensors(path):
    """The weights file exists and its header reads (the tensors are read later)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {layout.WEIGHTS} at {path} (pass --random_init to train "
                                f"the architecture from scratch)")
    safetensors_header.check(path)


def _check_vocab(path, vocab_size):
    """The vocabulary is UTF-8, lists each token once, holds the special tokens its tokenizer
    needs and no id beyond the embedding table."""
    if path.endswith(".json"):
        try:
            tokens = files.read_json(path, "vocab.json")
        except UnicodeDecodeError:
            raise ValueError(f"vocabulary {path} is not UTF-8 text") from None
        tokens = list(tokens) if isinstance(tokens, dict) else []
    else:
        tokens = vocab.read_wordpiece_vocab(path)  # UTF-8, each token once
    if not tokens:
        raise ValueError(f"vocabulary {path} holds no tokens")
    known = set(tokens)
    missing = [t for t in _SPECIAL_TOKENS[path.endswith(".json")] if t not in known]
    if missing:
        raise ValueError(f"vocabulary {path} lacks the special token(s) {' '.join(missing)}")
    if vocab_size is not None and len(tokens) > vocab_size:
        raise ValueError(f"vocabulary {path} has {len(tokens)} tokens, more than the model's "
                         f"vocab_size {vocab_size}")


def _check_data(settings):
    """Every split the requested stages read exists, parses and holds examples (the readers
    need no TensorFlow)."""
    if settings.data_source == "tfds":
        return  # tensorflow-datasets: prepared or downloaded when loaded
    task = data.get_task(settings.task)
    training = any(stage != "evaluate" for stage in settings.stages)
    if task.source == "squad":
        if not settings.data_dir:
            raise ValueError(f"task {task.name!r} needs --data_dir (the folder holding "
                             f"train-{task.squad_version}.json and dev-{task.squad_version}"
                             f".json), or --data_source=tfds")
        for split in ("train",) * training + ("dev",):
            path = squad_json.json_path(task.squad_version, split, settings.data_dir)
            if not squad_json.read_squad_json(path):
                raise ValueError(f"{path} holds no questions")
        return
    splits = ("train",) * training + task.dev_splits
    splits += task.test_splits if task.has_test_labels else ()
    for split in splits:
        data.load_examples(task, split, data_dir=settings.data_dir,
                           data_source=settings.data_source)
