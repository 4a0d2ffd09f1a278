r"""Attention maps, teacher beside student, for every grid cell (the paper's Figure 5).

    python -m train.attention_maps --model_dir=WORKDIR --sentence="a gripping , funny film" \
        --layers=0,5 --heads=0,1 --output_dir=OUT [--teacher_dir=WORKDIR/rewire] \
        [--cells=all|w0.50_d0.75,...] [--sentence_b=...] [--max_seq_length=N]

`--model_dir` is a trained model dir (`WORKDIR/final`, any stage's dir) or a workdir (its
`final/` is used, and its `rewire/` is the default teacher). Its vocabulary (vocab.txt, or
vocab.json + merges.txt) tokenizes the sentence. For each cell one PNG,
`OUT/attention_<cell>.png`: a row per (layer, head), the teacher at full width and depth on
the left, the cell on the right, tokens on both axes. Layers and heads are numbered as in the
full network; one a cell does not run (a dropped layer, a head beyond its round(m_w * heads))
is drawn as a note and printed. `--cells=all` (default) is the grid recorded in the model's
config.json (the standard 12 cells if none). Inputs are checked before TensorFlow starts
(--max_seq_length against both models' positions); an error is one line (its traceback with
--verbose). OUT is locked while written (`OUT/.lock`): a second writer is refused in one line.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from dynabert_tf import attention_maps as maps_lib  # noqa: E402
from dynabert_tf.core import cli, errors  # noqa: E402
from dynabert_tf.core import grid as grid_lib  # noqa: E402
from dynabert_tf.core import files, layout, locks  # noqa: E402
from dynabert_tf.presets import hf_config  # noqa: E402

DEFAULT_MAX_SEQ_LENGTH = 128


def define_flags(flag_values):
    """The command's flags, defined on `flag_values`."""
    define = dict(flag_values=flag_values)
    flags.DEFINE_string("model_dir", None, "Trained model dir, or a workdir (its final/).",
                        **define)
    flags.DEFINE_string("teacher_dir", None, "Teacher model dir (default: the workdir's "
                        "rewire/ when --model_dir is a workdir).", **define)
    flags.DEFINE_string("sentence", None, "The text whose attention is drawn.", **define)
    flags.DEFINE_string("sentence_b", None, "Optional second segment (sentence pairs).",
                        **define)
    flags.DEFINE_list("layers", [], "Layer indices of the full network (default: the first "
                      "and the last).", **define)
    flags.DEFINE_list("heads", ["0"], "Head indices of the full network.", **define)
    flags.DEFINE_string("cells", "all", "'all' (the model's grid) or cell names such as "
                        "w0.50_d0.75,w1.00_d1.00.", **define)
    flags.DEFINE_string("output_dir", None, "Where the PNGs go.", **define)
    flags.DEFINE_integer("max_seq_length", None, "Tokens kept, [CLS] and [SEP] included "
                         f"(default: {DEFAULT_MAX_SEQ_LENGTH}, or the models' positions if "
                         "fewer; at most those).",
                         **define)
    flags.DEFINE_boolean("verbose", False, "On an error, show the full traceback.", **define)
    return flag_values


def resolve_dirs(model_dir, teacher_dir=None):
    """(student dir, teacher dir), each holding a config.json; ValueError naming the flag."""
    if not model_dir:
        raise ValueError("--model_dir is required")
    workdir = None
    if layout.final_model_dir(model_dir):  # a training workdir: its chosen model
        workdir, model_dir = model_dir, layout.final_model_dir(model_dir)
    if teacher_dir is None and workdir is not None:
        teacher_dir = os.path.join(workdir, "rewire")
    if not teacher_dir:
        raise ValueError("--teacher_dir is required when --model_dir is not a workdir")
    for flag, path in (("model_dir", model_dir), ("teacher_dir", teacher_dir)):
        if not layout.is_model_dir(path):
            raise ValueError(f"--{flag} {path} holds no config.json (a trained model dir)")
    return model_dir, teacher_dir


def vocab_of(model_dir):
    """The model dir's vocabulary file: vocab.txt (WordPiece) or vocab.json (byte-level BPE)."""
    path = layout.vocab_file(model_dir)
    if path:
        return path
    raise ValueError(f"{model_dir} holds no vocab.txt or vocab.json to tokenize --sentence")


def select_cells(hf_config, spec):
    """'all' (the grid config.json records, else the standard one) or cell names -> [(w, d)]."""
    recorded = hf_config.get("dynabert") or {}
    if spec.strip() == "all":
        return grid_lib.grid(recorded.get("width_mults", grid_lib.WIDTH_MULTS),
                             recorded.get("depth_mults", grid_lib.DEPTH_MULTS))
    cells = []
    for name in (part.strip() for part in spec.split(",")):
        try:
            cells.append(grid_lib.parse_cell_name(name))
        except ValueError:
            raise ValueError(f"--cells: bad cell name {name!r}; expected 'all' or names like "
                             f"w0.50_d0.75") from None
        if len(cells[-1]) == 3:
            raise ValueError(f"--cells: {name} is a hidden-size cell; attention maps are "
                             f"drawn for cells at hidden_mult 1 (names like w0.50_d0.75)")
    return cells


def parse_indices(flag, values):
    try:
        return tuple(int(v) for v in values)
    except ValueError:
        raise ValueError(f"--{flag} must be a list of integers, got {','.join(values)}") from None


def draw(model_dir, teacher_dir, sentence, output_dir, layers=(), heads=(0,), cells="all",
         sentence_b=None, max_seq_length=None, log=print):
    """Checks the inputs (no TensorFlow yet), then writes one PNG per cell.

    Returns:
      [{"cell": name, "path": png, "panels": [attention_maps.Panel], "drawn": what
        `plots.attention_pairs` drew}], one per cell in grid order.
    """
    model_dir, teacher_dir = resolve_dirs(model_dir, teacher_dir)
    if not sentence or not sentence.strip():
        raise ValueError("--sentence is required (the text whose attention is drawn)")
    if max_seq_length is not None and max_seq_length < 3:
        raise ValueError(f"--max_seq_length must be at least 3, got {max_seq_length}")
    if not output_dir:
        raise ValueError("--output_dir is required")
    vocab_path = vocab_of(model_dir)
    student_config = hf_config.read_config(os.path.join(model_dir, layout.CONFIG))
    teacher_config = hf_config.read_config(os.path.join(teacher_dir, layout.CONFIG))
    for field in ("num_layers", "num_heads"):
        if getattr(student_config, field) != getattr(teacher_config, field):
            raise ValueError(f"teacher and student differ in {field}: "
                             f"{getattr(teacher_config, field)} and "
                             f"{getattr(student_config, field)}")
    positions = {flag: (path, config.max_position_embeddings - config.position_offset)
                 for flag, path, config in (("model_dir", model_dir, student_config),
                                            ("teacher_dir", teacher_dir, teacher_config))}
    if max_seq_length is None:
        max_seq_length = min(DEFAULT_MAX_SEQ_LENGTH, *(n for _, n in positions.values()))
    for flag, (path, limit) in positions.items():
        if max_seq_length > limit:
            raise ValueError(f"--max_seq_length {max_seq_length} exceeds the {limit} "
                             f"positions of --{flag} {path}")
    layers = tuple(layers) or tuple(sorted({0, student_config.num_layers - 1}))
    maps_lib.check_selection(student_config, layers, heads)
    chosen = select_cells(files.read_json(os.path.join(model_dir, layout.CONFIG)), cells)
    with locks.output_lock(output_dir, "train.attention_maps"):  # one writer at a time
        return _draw_cells(model_dir, teacher_dir, vocab_path, sentence, sentence_b,
                           max_seq_length, chosen, layers, heads, output_dir, log)


def _draw_cells(model_dir, teacher_dir, vocab_path, sentence, sentence_b, max_seq_length,
                cells, layers, heads, output_dir, log):
    import tensorflow as tf

    from dynabert_tf import plots
    from dynabert_tf.io import checkpoint
    from train.task_data import make_encoder

    encoder = make_encoder(vocab_path, max_seq_length)
    batch = encoder(tf.constant([sentence]),
                    None if sentence_b is None else tf.constant([sentence_b]))
    length = int(tf.reduce_sum(batch["padding_mask"][0]))
    inputs = {name: values[:, :length].numpy() for name, values in batch.items()}
    tokens = [encoder.id_to_token(int(i)) for i in inputs["token_ids"][0]]
    student = checkpoint.load_task_model(model_dir)
    teacher_maps = maps_lib.layer_attention(checkpoint.load_task_model(teacher_dir), inputs)
    results = []
    for width_mult, depth_mult in cells:
        name = grid_lib.cell_name(width_mult, depth_mult)
        panels = maps_lib.cell_panels(student, teacher_maps, inputs, width_mult, depth_mult,
                                      layers, heads)
        for note in dict.fromkeys(panel.note for panel in panels if panel.note):
            log(f"{name}: {note}")
        path = os.path.join(output_dir, f"attention_{name}.png")
        drawn = plots.attention_pairs(panels, tokens, path, title=(
            f"{name}: teacher ({os.path.basename(os.path.normpath(teacher_dir))}) beside "
            f"student ({os.path.basename(os.path.normpath(model_dir))})"))
        log(f"wrote {path}")
        results.append({"cell": name, "path": path, "panels": panels, "drawn": drawn})
    return results


def main(argv, flag_values=None):
    """Parses `argv` (argv[0] the program name) and returns what `draw` returns; any error
    ends with one line, exit 1 (2 for a bad flag)."""
    flag_values = flag_values or define_flags(flags.FlagValues())
    with cli.usage_errors():
        cli.no_arguments(cli.parse(flag_values, argv))
    with errors.one_line_errors(flag_values.verbose):
        return draw(flag_values.model_dir, flag_values.teacher_dir, flag_values.sentence,
             flag_values.output_dir, layers=parse_indices("layers", flag_values.layers),
             heads=parse_indices("heads", flag_values.heads), cells=flag_values.cells,
             sentence_b=flag_values.sentence_b, max_seq_length=flag_values.max_seq_length)


if __name__ == "__main__":
    main(sys.argv)
