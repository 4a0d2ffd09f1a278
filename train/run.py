r"""Trains a DynaBERT: python -m train.run --flagfile=configs/rt_polarity.flags --workdir=DIR

Stages (default all, in this order): teacher, rewire, width, width_depth, finetune, evaluate.
A complete stage is skipped and an interrupted one resumes, so re-running the same command
after a kill continues where it stopped. The only place flags are defined.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

flags.DEFINE_string("task", None, "Task name: a GLUE task (cola, sst2, mrpc, qqp, stsb, mnli, "
                    "qnli, rte, wnli) or a built-in one (rt_polarity, rt_rating).")
flags.DEFINE_string("workdir", None, "Run directory; each stage writes WORKDIR/<stage>/.")
flags.DEFINE_list("stages", ["teacher", "rewire", "width", "width_depth", "finetune",
                             "evaluate"], "Stages to run, in pipeline order; the baseline "
                  "'separate' (each cell fine-tuned alone) runs only when listed.")
flags.DEFINE_string("init_checkpoint", "minilm_l6", "Pretrained BERT: a Hugging Face dir "
                    "(config.json, model.safetensors, vocab.txt), a keras-hub preset dir, or "
                    "'minilm_l6' (the real MiniLM-L6 from the package registry).")
flags.DEFINE_bool("random_init", False, "Build the architecture of --init_checkpoint's "
                  "config.json with random weights (smoke tests).")
flags.DEFINE_string("vocab_file", None, "vocab.txt (default: the init checkpoint's).")
flags.DEFINE_string("data_dir", None, "GLUE-format directory (SST-2/train.tsv, ...).")
flags.DEFINE_enum("data_source", "tsv", ["tsv", "tfds"], "Where GLUE tasks come from.")
flags.DEFINE_integer("max_seq_length", 128, "Tokens per example, [CLS] and [SEP] included.")
flags.DEFINE_enum("pad_to", "longest", ["longest", "max"],
                  "Pad each batch to its longest example, or always to max_seq_length.")
flags.DEFINE_list("bucket_boundaries", [], "Sequence lengths bounding the buckets training "
                  "batches are drawn from (less padding); empty: no bucketing.")
flags.DEFINE_integer("batch_size", 32, "Training batch size.")
flags.DEFINE_integer("eval_batch_size", 64, "Evaluation batch size.")
flags.DEFINE_float("learning_rate", 2e-5, "Peak learning rate (AdamW, linear warm-up/decay).")
flags.DEFINE_float("warmup_proportion", 0.1, "Fraction of steps of linear warm-up.")
flags.DEFINE_float("weight_decay", 0.01, "AdamW weight decay (not on LayerNorm or biases).")
flags.DEFINE_float("teacher_epochs", 3, "Epochs of the teacher stage (fractions allowed).")
flags.DEFINE_float("width_epochs", 3, "Epochs of stage 1 (DynaBERT_w).")
flags.DEFINE_float("width_depth_epochs", 3, "Epochs of stage 2 (DynaBERT).")
flags.DEFINE_float("finetune_epochs", 3, "Epochs of the optional final fine-tune.")
flags.DEFINE_float("separate_epochs", 3, "Epochs per cell of the 'separate' baseline.")
flags.DEFINE_list("width_mult_list", ["1.0", "0.75", "0.5", "0.25"], "Width multipliers.")
flags.DEFINE_list("depth_mult_list", ["1.0", "0.75", "0.5"], "Depth multipliers.")
flags.DEFINE_list("width_lambdas", ["1.0", "0.1"],
                  "Stage 1 loss weights (lambda1 logits, lambda2 hidden states).")
flags.DEFINE_list("width_depth_lambdas", ["1.0", "1.0"], "Stage 2 loss weights.")
flags.DEFINE_enum("teacher_width", "same", ["same", "full"], "Stage 2 teacher width: the "
                  "student's (paper) or full width (the official code).")
flags.DEFINE_bool("rewiring", True, "Permute heads/neurons by importance (off: ablation).")
flags.DEFINE_bool("distillation", True, "Distil from a teacher in stages width and "
                  "width_depth (off: label loss only, an ablation).")
flags.DEFINE_bool("direct", False, "Stage width_depth starts from and is taught by the "
                  "rewired teacher, skipping DynaBERT_w (ablation, paper Table 5).")
flags.DEFINE_enum("importance_split", "train", ["train", "dev"],
                  "Data for the Taylor importance scores (the paper's code used dev).")
flags.DEFINE_integer("importance_batches", 0, "Batches for importance; 0 = the whole split.")
flags.DEFINE_float("dropout", 0.1, "Dropout of the classifier head.")
flags.DEFINE_integer("seed", 42, "Seed of data order and initialisation.")
flags.DEFINE_integer("max_train_examples", 0, "Use only the first N training examples (0 = all).")
flags.DEFINE_integer("max_eval_examples", 0, "Use only the first N dev/test examples (0 = all).")
flags.DEFINE_integer("checkpoint_every", 200, "Save a resumable checkpoint every N steps.")
flags.DEFINE_enum("verbose", "auto", ["auto", "0", "1", "2"], "Keras progress display.")
flags.mark_flags_as_required(["task", "workdir"])

FLAGS = flags.FLAGS


class BadInput(Exception):
    """A flag value that cannot work; reported as one line, without the flag help."""


def _floats(name, values):
    try:
        return tuple(float(v) for v in values)
    except ValueError:
        raise BadInput(f"--{name} must be numbers, got {','.join(values)}") from None


def settings_from_flags():
    from train.settings import STAGES, Settings

    unknown = [s for s in FLAGS.stages if s not in STAGES]
    if unknown:
        raise BadInput(f"unknown stage(s) {', '.join(unknown)}; known: {', '.join(STAGES)}")
    verbose = FLAGS.verbose if FLAGS.verbose == "auto" else int(FLAGS.verbose)
    try:
        return Settings(
            task=FLAGS.task, workdir=FLAGS.workdir, init_checkpoint=FLAGS.init_checkpoint,
            data_dir=FLAGS.data_dir, data_source=FLAGS.data_source,
            random_init=FLAGS.random_init, vocab_file=FLAGS.vocab_file,
            max_seq_length=FLAGS.max_seq_length, pad_to=FLAGS.pad_to,
            bucket_boundaries=tuple(int(b) for b in _floats("bucket_boundaries",
                                                            FLAGS.bucket_boundaries)),
            batch_size=FLAGS.batch_size, eval_batch_size=FLAGS.eval_batch_size,
            learning_rate=FLAGS.learning_rate, warmup_proportion=FLAGS.warmup_proportion,
            weight_decay=FLAGS.weight_decay, teacher_epochs=FLAGS.teacher_epochs,
            width_epochs=FLAGS.width_epochs, width_depth_epochs=FLAGS.width_depth_epochs,
            finetune_epochs=FLAGS.finetune_epochs, separate_epochs=FLAGS.separate_epochs,
            width_mults=_floats("width_mult_list", FLAGS.width_mult_list),
            depth_mults=_floats("depth_mult_list", FLAGS.depth_mult_list),
            width_lambdas=_floats("width_lambdas", FLAGS.width_lambdas),
            width_depth_lambdas=_floats("width_depth_lambdas", FLAGS.width_depth_lambdas),
            teacher_width=FLAGS.teacher_width, rewiring=FLAGS.rewiring,
            distillation=FLAGS.distillation, direct=FLAGS.direct,
            importance_split=FLAGS.importance_split,
            importance_batches=FLAGS.importance_batches, dropout=FLAGS.dropout,
            seed=FLAGS.seed, max_train_examples=FLAGS.max_train_examples,
            max_eval_examples=FLAGS.max_eval_examples, checkpoint_every=FLAGS.checkpoint_every,
            verbose=verbose)
    except ValueError as e:
        raise BadInput(str(e)) from None


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        settings = settings_from_flags()
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    logging.set_verbosity(logging.WARNING)  # TensorFlow's checkpoint chatter
    import keras

    from train.settings import STAGES
    from train.stages import run_stages
    from train.task_data import TaskData

    keras.utils.set_random_seed(settings.seed)
    try:
        data = TaskData(settings)
        run_stages(settings, data, [s for s in STAGES if s in FLAGS.stages])
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        # Bad input: one clear line, no traceback; finished stages stay on disk.
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
