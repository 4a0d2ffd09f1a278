"""File names of model dirs, training workdirs and exports, and finding a workdir's model.

A model dir is a Hugging Face-style directory (`config.json`, `model.safetensors`,
`vocab.txt` or `vocab.json` [+ `merges.txt`]); a training workdir holds one per stage
(`WORKDIR/<stage>/`, with `stage.json`), the chosen model in `WORKDIR/final/` and the 12-cell
evaluation in `WORKDIR/eval_grid.json`; an export directory holds `manifest.json` beside its
`.tflite` files.
"""

import os

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
WORDPIECE_VOCAB = "vocab.txt"
BPE_VOCAB = "vocab.json"
BPE_MERGES = "merges.txt"
VOCABS = (WORDPIECE_VOCAB, BPE_VOCAB)

STAGE_SUMMARY = "stage.json"
EVAL_GRID = "eval_grid.json"
FINAL = "final"
RUN_RECORD = "run.json"
LOCK = ".lock"

MANIFEST = "manifest.json"


def is_model_dir(path):
    """True if `path` holds a config.json (a model dir of any kind this project reads)."""
    return os.path.isfile(os.path.join(path, CONFIG))


def final_model_dir(workdir):
    """`WORKDIR/final` if `workdir` is a training workdir with a chosen model, else None."""
    final = os.path.join(workdir, FINAL)
    return final if is_model_dir(final) else None


def resolve_model_dir(path):
    """(model dir, workdir or None): `path` is a training workdir (its `final/` is the model)
    or a model dir itself. Raises FileNotFoundError naming both places looked at."""
    if not path:
        raise FileNotFoundError("no model directory given")
    final = final_model_dir(path)
    if final:
        return final, path
    if is_model_dir(path):
        return path, None
    raise FileNotFoundError(f"no trained DynaBERT in {path}: expected "
                            f"{os.path.join(path, FINAL, CONFIG)} or {os.path.join(path, CONFIG)}")


def vocab_file(model_dir):
    """The model dir's vocabulary (vocab.txt for WordPiece, vocab.json for byte-level BPE),
    or None."""
    for name in VOCABS:
        if os.path.isfile(os.path.join(model_dir, name)):
            return os.path.join(model_dir, name)
    return None
