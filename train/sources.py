"""Where a run's model and tokenizer files are: the settings name them, this module finds them.

    sources.checkpoint_dir(settings.model)   # --init_checkpoint: a named checkpoint or a dir
    sources.vocab_path(settings.model)       # --vocab_file, or the init checkpoint's vocabulary

Named checkpoints (`minilm_l6`) resolve through `dynabert_tf.presets.named` (fetched once).
Both raise FileNotFoundError with one line naming the flag. No TensorFlow: preflight calls
them before it starts, the stages and the task data after.
"""

import os

from dynabert_tf.core import files, layout
from dynabert_tf.presets import named


def checkpoint_dir(model):
    """The init checkpoint's directory (a named asset such as `minilm_l6`, or a path).

    Args:
      model: `train.settings.Model` (or settings holding its fields).
    """
    if named.is_named(model.init_checkpoint):
        return named.resolve(model.init_checkpoint)
    if not os.path.isdir(model.init_checkpoint):
        raise FileNotFoundError(f"--init_checkpoint {model.init_checkpoint} is neither a "
                                f"directory nor one of {sorted(named.NAMED_CHECKPOINTS)}")
    return model.init_checkpoint


def vocab_path(model):
    """The tokenizer's vocabulary: vocab.txt (BERT WordPiece) or vocab.json (RoBERTa
    byte-level BPE, merges.txt beside it), from --vocab_file (a path or a named checkpoint)
    or the init checkpoint.

    Args:
      model: `train.settings.Model` (or settings holding its fields).
    """
    source = model.vocab_file or checkpoint_dir(model)
    if named.is_named(source):
        source = named.resolve(source)
    if os.path.isdir(source) and _model_type(source) == "roberta":
        missing = [name for name in (layout.BPE_VOCAB, layout.BPE_MERGES)
                   if not os.path.isfile(os.path.join(source, name))]
        if missing:
            raise FileNotFoundError(f"RoBERTa checkpoint {source} lacks "
                                    f"{', '.join(missing)}; pass --vocab_file")
        return os.path.join(source, layout.BPE_VOCAB)
    if os.path.isdir(source):
        candidates = [os.path.join(source, layout.WORDPIECE_VOCAB),
                      os.path.join(source, "assets", "tokenizer", "vocabulary.txt")]
        found = [path for path in candidates if os.path.isfile(path)]
        if not found:
            raise FileNotFoundError(f"no vocab.txt in {source}; pass --vocab_file")
        source = found[0]
    if not os.path.isfile(source):
        raise FileNotFoundError(f"vocab file {source} does not exist")
    return source


def recorded_checkpoint(model, resolved_dir):
    """How a workdir's run.json names the init checkpoint: a named checkpoint by its name,
    a path by its real path (`resolved_dir`, what `checkpoint_dir` returned)."""
    if named.is_named(model.init_checkpoint):
        return model.init_checkpoint
    return os.path.realpath(resolved_dir)


def _model_type(path):
    """The `model_type` of the Hugging Face config.json in `path` (None if unreadable)."""
    try:
        return files.read_json(os.path.join(path, layout.CONFIG)).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None
