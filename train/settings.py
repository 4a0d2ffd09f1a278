"""What one training run needs to know, grouped by concern: the one source of every setting.

    Data          task, data files, tokenization and batching of the examples
    Model         init checkpoint, vocabulary, dropout
    Optimisation  batch sizes, learning rate schedule, epochs per stage, seed
    Grid          width / depth / hidden-size multipliers (the cells)
    Distillation  loss weights and the distillation objective of stages width, width_depth
    Ablations     the method switches (paper Tables 3-8): rewiring, distillation, stage 1 ...
    Augmentation  TinyBERT's data augmentation (--augment, --aug_*)
    Run           workdir, stages, checkpoints, display, debugging, distribution

Each field carries its default, its help text and, where it differs, its flag name (`_setting`);
train/run.py defines the absl flags from these fields. Each concern checks its own fields when
it is made (`__post_init__`), and `Settings`, every concern's fields in one frozen dataclass
(flags, `dataclasses.replace` and the benchmarks' records see one flat namespace), checks them
all and then the rules between concerns. `settings.data`, `settings.model`, ... give one concern
alone, for code that needs only it. Defaults are the paper's hyper-parameters (Hou et al. 2020,
Appendix).

Which stages run in which order, and their seeds, are `train/pipeline.py`'s table; where the
checkpoint and vocabulary files are, `train/sources.py`. Nothing here reads the filesystem.
"""

import dataclasses
import math
import os

from dynabert_tf.data import tasks as task_registry
from dynabert_tf.core import grid as grid_lib
from dynabert_tf.core.choices import DISTILL_OBJECTIVES, MINILM_RELATIONS, PRECISIONS
from train import pipeline as pipeline_lib
from train.cluster import DISTRIBUTIONS, cluster_spec_error

# The pipeline table's stage names (train/pipeline.py), here for the flag checks.
STAGES = pipeline_lib.NAMES
DEFAULT_STAGES = pipeline_lib.DEFAULT_STAGES


def _setting(default, help, flag=None, choices=None, item=None):
    """A settings field: `flag` its flag name (default: the field name), `choices` an enum,
    `item` the element type of a list flag."""
    metadata = {"help": help, "flag": flag, "choices": choices, "item": item}
    return dataclasses.field(default=default, metadata=metadata)


def flag_name(field):
    """The flag of a settings field."""
    return field.metadata["flag"] or field.name


def _check_fields(settings, concern):
    """The checks every field shares: the required ones given, enums among their choices."""
    for field in dataclasses.fields(concern):
        value, choices = getattr(settings, field.name), field.metadata["choices"]
        if field.name in _REQUIRED and not value:
            raise ValueError(f"--{field.name} is required")
        if choices and value not in choices:
            raise ValueError(f"{field.name} must be one of {', '.join(choices)}, "
                             f"got {value!r}")


_REQUIRED = ("task", "workdir")


def _at_least(settings, minimum, *names):
    for name in names:
        if getattr(settings, name) < minimum:
            raise ValueError(f"{name} must be at least {minimum}, got {getattr(settings, name)}")


def _not_negative(settings, *names):
    for name in names:
        if getattr(settings, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(settings, name)}")


@dataclasses.dataclass(frozen=True)
class Data:
    """The task's examples: where they come from, how they are tokenized and batched."""

    task: str = _setting(None, "Task name: a GLUE task (cola, sst2, mrpc, qqp, stsb, mnli, "
                         "qnli, rte, wnli), SQuAD (squad_v1, squad_v2) or a built-in one "
                         "(rt_polarity, rt_rating).")
    data_dir: str = _setting(None, "Task data: the GLUE folder (SST-2/train.tsv, ...) or the "
                             "folder of the official SQuAD json files.")
    data_source: str = _setting("tsv", "Where GLUE/SQuAD data come from: files in --data_dir "
                                "or tensorflow-datasets.", choices=("tsv", "tfds"))
    max_seq_length: int = _setting(128, "Tokens per example, [CLS] and [SEP] included.")
    doc_stride: int = _setting(128, "SQuAD: tokens between the starts of two context windows.")
    max_query_length: int = _setting(64, "SQuAD: question tokens kept.")
    pad_to: str = _setting("longest", "Pad each batch to its longest example, or always to "
                           "max_seq_length.", choices=("longest", "max"))
    bucket_boundaries: tuple = _setting(
        (), "Sequence lengths bounding the buckets training batches are drawn from (less "
        "padding); empty: no bucketing.", item=int)
    max_train_examples: int = _setting(0, "Use only the first N training examples (0 = all).")
    max_eval_examples: int = _setting(0, "Use only the first N dev/test examples (0 = all).")

    def __post_init__(self):
        _check_fields(self, Data)
        if self.bucket_boundaries and self.pad_to != "longest":
            raise ValueError("bucket_boundaries needs pad_to='longest'")
        if self.max_seq_length < 8:
            raise ValueError(f"max_seq_length must be at least 8, got {self.max_seq_length}")
        _at_least(self, 1, "doc_stride", "max_query_length")
        task_registry.get_task(self.task)  # unknown task: the registry's message
        _not_negative(self, "max_train_examples", "max_eval_examples")
        bounds = self.bucket_boundaries
        if any(b < 1 for b in bounds) or list(bounds) != sorted(set(bounds)):
            raise ValueError(f"bucket_boundaries must be increasing positive lengths, got "
                             f"{','.join(map(str, bounds))}")


@dataclasses.dataclass(frozen=True)
class Model:
    """The pretrained encoder the run starts from, its vocabulary and the head's dropout."""

    init_checkpoint: str = _setting(
        "minilm_l6", "Pretrained encoder: a Hugging Face BERT/RoBERTa dir (config.json, "
        "model.safetensors, tokenizer files), a keras-hub preset dir, or 'minilm_l6' (the real "
        "MiniLM-L6 from the package registry).")
    random_init: bool = _setting(False, "Build the architecture of --init_checkpoint's "
                                 "config.json with random weights (smoke tests).")
    vocab_file: str = _setting(None, "vocab.txt (default: the init checkpoint's).")
    dropout: float = _setting(0.1, "Dropout of the classifier head.")

    def __post_init__(self):
        _check_fields(self, Model)
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclasses.dataclass(frozen=True)
class Optimisation:
    """Batches, the AdamW schedule, each stage's epochs and the run's seed."""

    batch_size: int = _setting(32, "Training batch size.")
    eval_batch_size: int = _setting(64, "Evaluation batch size.")
    learning_rate: float = _setting(2e-5, "Peak learning rate (AdamW, linear warm-up/decay).")
    warmup_proportion: float = _setting(0.1, "Fraction of steps of linear warm-up.")
    weight_decay: float = _setting(0.01, "AdamW weight decay (not on LayerNorm or biases).")
    teacher_epochs: float = _setting(3.0, "Epochs of the teacher stage (fractions allowed).")
    width_epochs: float = _setting(3.0, "Epochs of stage 1 (DynaBERT_w, or DynaBERT_D with "
                                  "--first_stage=depth).")
    width_depth_epochs: float = _setting(3.0, "Epochs of stage 2 (DynaBERT).")
    finetune_epochs: float = _setting(3.0, "Epochs of the optional final fine-tune.")
    separate_epochs: float = _setting(3.0, "Epochs per cell of the 'separate' baseline.")
    seed: int = _setting(42, "Seed of data order and initialisation.")
    precision: str = _setting(
        "float32", "Keras dtype policy of the training stages (teacher to separate): "
        "mixed_bfloat16 computes in bfloat16 (fast on CPUs with AMX / AVX-512 BF16 and on "
        "TPUs/GPUs), mixed_float16 in float16 with loss scaling (GPUs); weights stay float32, "
        "and evaluate and the exports run float32. A workdir keeps the precision it was "
        "started with.", choices=PRECISIONS)

    def __post_init__(self):
        _check_fields(self, Optimisation)
        if not math.isfinite(self.learning_rate) or self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be a finite number > 0, got "
                             f"{self.learning_rate}")
        _at_least(self, 1, "batch_size", "eval_batch_size")
        if not 0 <= self.seed < 2 ** 32:
            raise ValueError(f"seed must be in [0, 2**32), got {self.seed}")
        for name in ("teacher_epochs", "width_epochs", "width_depth_epochs", "finetune_epochs",
                     "separate_epochs"):
            if not math.isfinite(getattr(self, name)) or getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got "
                                 f"{getattr(self, name)}")
        if not 0 <= self.warmup_proportion <= 1:
            raise ValueError(f"warmup_proportion must be in [0, 1], got {self.warmup_proportion}")
        if not 0 <= self.weight_decay < math.inf:
            raise ValueError(f"weight_decay must be a finite number >= 0, got "
                             f"{self.weight_decay}")


@dataclasses.dataclass(frozen=True)
class Grid:
    """The multipliers whose combinations are the cells trained, evaluated and exported."""

    width_mults: tuple = _setting(grid_lib.WIDTH_MULTS, "Width multipliers.",
                                  flag="width_mult_list", item=float)
    depth_mults: tuple = _setting(grid_lib.DEPTH_MULTS, "Depth multipliers.",
                                  flag="depth_mult_list", item=float)
    hidden_mults: tuple = _setting(
        grid_lib.HIDDEN_MULTS, "Hidden-size multipliers (off: 1.0 only). Others add a third "
        "grid axis: the leading hidden units of the residual stream, rewired by importance, "
        "trained with every width in stage width and every cell after it, evaluated and "
        "exported as cells named w.._d.._h...", item=float)

    def __post_init__(self):
        _check_fields(self, Grid)
        for name, flag in (("width_mults", "width_mult_list"),
                           ("depth_mults", "depth_mult_list"), ("hidden_mults", "hidden_mults")):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"{flag} is empty; give at least one multiplier in (0, 1]")
            for value in values:
                grid_lib.check_multiplier(f"{flag} value", value)
            if len(set(values)) != len(values):
                raise ValueError(f"{flag} repeats a multiplier: {','.join(map(str, values))}")

    @property
    def hidden_on(self):
        """Whether the hidden size is a grid axis (a hidden multiplier other than 1)."""
        return any(h != 1.0 for h in self.hidden_mults)

    @property
    def grid(self):
        return grid_lib.grid(self.width_mults, self.depth_mults, self.hidden_mults)


@dataclasses.dataclass(frozen=True)
class Distillation:
    """The losses of the distilling stages (width / depth and width_depth)."""

    width_lambdas: tuple = _setting((1.0, 0.1), "Stage 1 loss weights (lambda1 logits, "
                                    "lambda2 hidden states).", item=float)
    width_depth_lambdas: tuple = _setting((1.0, 1.0), "Stage 2 loss weights.", item=float)
    teacher_width: str = _setting("same", "Stage 2 teacher width: the student's (paper) or "
                                  "full width (the official code).", choices=("same", "full"))
    distill_objective: str = _setting(
        "dynabert", "Intermediate distillation term of stages width and width_depth: DynaBERT's "
        "hidden-state MSE, MiniLM's last-layer self-attention relations instead (the logits "
        "term kept), or both.", choices=DISTILL_OBJECTIVES)
    lambda_relation: float = _setting(1.0, "Weight of the MiniLM relation term (objectives "
                                      "minilm and both).")
    relation_heads: int = _setting(0, "MiniLM relation heads: queries/keys/values of the kept "
                                   "heads concatenated and re-split into this many (0 = the "
                                   "model's attention heads); must divide every width's "
                                   "columns.")
    minilm_relations: tuple = _setting(
        ("qq", "kk", "vv"), "MiniLM relations: qq, kk, vv (MiniLMv2, default), qk (attention "
        "distributions; qk,vv is MiniLM v1).", item=str)

    def __post_init__(self):
        _check_fields(self, Distillation)
        for name in ("width_lambdas", "width_depth_lambdas"):
            if len(getattr(self, name)) != 2:
                raise ValueError(f"{name} needs two weights (logits, hidden states), got "
                                 f"{getattr(self, name)}")
        for name in ("width_lambdas", "width_depth_lambdas"):
            weights = getattr(self, name)
            if not all(math.isfinite(w) and w >= 0 for w in weights) or not any(weights):
                raise ValueError(f"{name} must be finite, >= 0 and not all 0, got "
                                 f"{','.join(map(str, weights))}")
        self._check_minilm()

    def _check_minilm(self):
        """The MiniLM relation flags (one ValueError line naming the flag)."""
        if not math.isfinite(self.lambda_relation) or self.lambda_relation < 0:
            raise ValueError(f"lambda_relation must be a finite number >= 0, got "
                             f"{self.lambda_relation}")
        if self.relation_heads < 0:
            raise ValueError(f"relation_heads must be >= 0 (0: the model's attention heads), "
                             f"got {self.relation_heads}")
        names = self.minilm_relations
        if not names or len(set(names)) != len(names) or \
                any(name not in MINILM_RELATIONS for name in names):
            raise ValueError(f"minilm_relations must be distinct names among "
                             f"{', '.join(MINILM_RELATIONS)}, got {','.join(names) or 'none'}")
        if self.distill_objective == "minilm" and self.lambda_relation == 0:
            for name in ("width_lambdas", "width_depth_lambdas"):
                if getattr(self, name)[0] == 0:
                    raise ValueError(f"distill_objective minilm with lambda_relation 0 and "
                                     f"{name} logits weight 0: nothing to distil")


@dataclasses.dataclass(frozen=True)
class Ablations:
    """The method's switches, each an ablation of the paper when changed (Tables 3-8)."""

    rewiring: bool = _setting(True, "Permute heads/neurons by importance (off: ablation).")
    distillation: bool = _setting(True, "Distil from a teacher in stages width and "
                                  "width_depth (off: label loss only, an ablation).")
    direct: bool = _setting(False, "Stage width_depth starts from and is taught by the "
                            "rewired teacher, skipping DynaBERT_w (ablation, paper Table 5).")
    first_stage: str = _setting(
        "width", "Stage 1 adapts the width (DynaBERT_w, the paper's order) or the depth: "
        "'depth' trains DynaBERT_D instead (stage 'depth', in the place of 'width': the rewired "
        "teacher distilled into every depth at full width, stage 1's epochs and lambdas), which "
        "then starts stage width_depth and teaches each cell at its own depth (ablation, paper "
        "Table 6).", choices=("width", "depth"))
    width_teacher: str = _setting(
        "fixed", "Teacher of stage width: the fixed rewired teacher (paper), or 'inplace': the "
        "widest sub-network learns the labels and teaches the narrower widths in the same step "
        "(inplace distillation, ablation, paper Table 7).", choices=("fixed", "inplace"))
    width_sampling: str = _setting(
        "list", "Widths of each stage-width step: all of width_mult_list, or 'universal': its "
        "largest, its smallest and len - 2 widths drawn at random between them, rounded to "
        "whole heads (universally slimmable training, ablation, paper Table 8 US).",
        choices=("list", "universal"))
    progressive_rewiring: bool = _setting(
        False, "Stage width adds the widths one at a time (1 and the next first) and re-scores "
        "and rewires the student's heads and neurons before each added width; the stage's "
        "epochs are split evenly between these phases (ablation, paper Table 8 PR).")
    separate_init: str = _setting(
        "pretrained", "Start of each cell of the 'separate' baseline: the pretrained "
        "checkpoint (paper Table 3; the leading heads, neurons and layers, no rewiring) or the "
        "fine-tuned teacher (a pruning baseline).", choices=("pretrained", "teacher"))
    importance_split: str = _setting("train", "Data for the Taylor importance scores (the "
                                     "paper's code used dev).", choices=("train", "dev"))
    importance_batches: int = _setting(0, "Batches for importance; 0 = the whole split.")

    def __post_init__(self):
        _check_fields(self, Ablations)
        _not_negative(self, "importance_batches")

    @property
    def width_ablations(self):
        """The flags of the ablations of stage width that are on (at most one may be)."""
        return [flag for flag, on in (
            ("width_teacher=inplace", self.width_teacher == "inplace"),
            ("width_sampling=universal", self.width_sampling == "universal"),
            ("progressive_rewiring", self.progressive_rewiring)) if on]


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """TinyBERT's data augmentation of the training split (stage augment)."""

    augment: bool = _setting(False, "TinyBERT's data augmentation: stage 'augment' writes "
                             "WORKDIR/augment/augmented.tsv and stages width and width_depth "
                             "train on the original plus augmented examples (teacher and "
                             "finetune stay on the original data).")
    aug_replace_prob: float = _setting(0.4, "Augmentation: probability of replacing each "
                                       "replaceable word (TinyBERT's p_t).")
    aug_candidates: int = _setting(15, "Augmentation: candidates per word (TinyBERT's K).")
    aug_copies: int = _setting(20, "Augmentation: augmented copies drawn per example "
                               "(TinyBERT's N_a; duplicates are dropped).")
    aug_mlm_checkpoint: str = _setting(
        "", "Augmentation: a Hugging Face BERT dir with its masked-LM head (cls.predictions.*)"
        " proposing one-piece words' candidates; empty: nearest words by the init "
        "checkpoint's input embeddings.")

    def __post_init__(self):
        _check_fields(self, Augmentation)
        if self.aug_mlm_checkpoint and not self.augment:
            raise ValueError("aug_mlm_checkpoint needs --augment")
        if not 0 < self.aug_replace_prob <= 1:
            raise ValueError(f"aug_replace_prob must be in (0, 1], got {self.aug_replace_prob}")
        _at_least(self, 1, "aug_candidates", "aug_copies")


@dataclasses.dataclass(frozen=True)
class Run:
    """Where the run writes, which stages it runs, and how it is driven and shown."""

    workdir: str = _setting(None, "Run directory; each stage writes WORKDIR/<stage>/.")
    stages: tuple = _setting(DEFAULT_STAGES, "Stages to run, in pipeline order; the baseline "
                             "'separate' (each cell fine-tuned alone) runs only when listed.",
                             item=str)
    checkpoint_every: int = _setting(200, "Save a resumable checkpoint every N steps.")
    progress: str = _setting("auto", "Keras progress display (model.fit's verbose).",
                             choices=("auto", "0", "1", "2"))
    verbose: bool = _setting(False, "On an error, show the full traceback (default: one "
                             "line naming the problem).")
    run_eagerly: bool = _setting(False, "Run tf.functions eagerly (no graph tracing): for "
                                 "debugging, and tiny smoke runs that tracing would dominate.")
    distribution: str = _setting(
        "none", "tf.distribute strategy of every stage: one process, 'mirrored' over the "
        "local GPUs, or 'multi_worker' over the workers of TF_CONFIG (run the same command "
        "on each; WORKDIR must be shared).", choices=DISTRIBUTIONS)

    def __post_init__(self):
        _check_fields(self, Run)
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown:
            raise ValueError(f"unknown stage(s) {', '.join(unknown)}; known: "
                             f"{', '.join(STAGES)}")
        if self.distribution == "multi_worker":
            error = cluster_spec_error(os.environ.get("TF_CONFIG"))
            if error:
                raise ValueError(error)
        if not self.stages:
            raise ValueError(f"stages is empty; name at least one of {', '.join(STAGES)}")
        _not_negative(self, "checkpoint_every")

    @property
    def keras_verbose(self):
        """`progress` as `model.fit`'s `verbose` takes it."""
        return self.progress if self.progress == "auto" else int(self.progress)

    def stage_dir(self, stage):
        return os.path.join(self.workdir, stage)


CONCERNS = (Data, Model, Optimisation, Grid, Distillation, Ablations, Augmentation, Run)


def _view(concern):
    """A property giving `concern` alone, made from the settings' values."""
    def get(self):
        return concern(**{f.name: getattr(self, f.name) for f in dataclasses.fields(concern)})
    get.__doc__ = f"The {concern.__name__} settings alone."
    return property(get)


# Fields are gathered from the bases last first: listed in reverse, Settings' fields keep the
# order of CONCERNS.
@dataclasses.dataclass(frozen=True)
class Settings(*reversed(CONCERNS)):
    """Every concern's fields in one flat, frozen dataclass: the run's settings.

    `Settings(task=..., workdir=..., ...)` checks each concern's fields, then the rules
    between concerns (`_check_across`); each check raises ValueError with one line naming
    the flag.
    """

    def __post_init__(self):
        for name in _REQUIRED:
            if not getattr(self, name):
                raise ValueError(f"--{name} is required")
        for concern in CONCERNS:
            concern.__post_init__(self)
        self._check_across()

    data = _view(Data)
    model = _view(Model)
    optimisation = _view(Optimisation)
    multipliers = _view(Grid)
    distill = _view(Distillation)
    ablations = _view(Ablations)
    augmentation = _view(Augmentation)
    run = _view(Run)

    @property
    def pipeline(self):
        """The stages to run, in pipeline order: `stages`, with the stages the flags switch
        on (train/pipeline.py): 'augment' added under --augment when a stage that reads its
        output (width, width_depth) is listed, "depth" in the place of "width" with
        --first_stage=depth."""
        return pipeline_lib.resolve(self.stages,
                                    **{flag: getattr(self, flag) for flag in pipeline_lib.FLAGS})

    def _check_across(self):
        """The rules between concerns (one ValueError line naming the flag)."""
        if "augment" in self.stages and not self.augment:
            raise ValueError("stage augment needs --augment")
        if self.augment and task_registry.get_task(self.task).source == "squad":
            raise ValueError(f"--augment: task {self.task} is span extraction, which is not "
                             f"augmented (TinyBERT augments GLUE sentences only)")
        self._check_ablations()
        self._check_hidden()

    def _check_ablations(self):
        """The ablation flags of stage 1 (one ValueError line naming the flag)."""
        width_flags = self.width_ablations
        if len(width_flags) > 1:
            raise ValueError(f"--{' and --'.join(width_flags)} are separate ablations of stage "
                             f"width; choose one")
        if width_flags and len(self.width_mults) < 2:
            raise ValueError(f"--{width_flags[0]} needs at least two widths in "
                             f"width_mult_list, got {','.join(map(str, self.width_mults))}")
        if self.width_teacher == "inplace" and not self.distillation:
            raise ValueError("width_teacher=inplace is a distillation; it cannot run with "
                             "--nodistillation")
        if self.progressive_rewiring and not self.rewiring:
            raise ValueError("progressive_rewiring needs --rewiring")
        if self.progressive_rewiring and self.augment:
            raise ValueError("progressive_rewiring trains its phases on the original data; "
                             "it cannot run with --augment")
        if width_flags and self.distill_objective != "dynabert":
            raise ValueError(f"--{width_flags[0]} distils with DynaBERT's objective; it needs "
                             f"distill_objective=dynabert")
        if self.first_stage == "depth":
            for flag, on in (("direct", self.direct), ("augment", self.augment),
                             *((f, True) for f in width_flags)):
                if on:
                    raise ValueError(f"first_stage=depth trains no stage width; it cannot run "
                                     f"with --{flag}")
            if self.distill_objective != "dynabert":
                raise ValueError("first_stage=depth distils with DynaBERT's objective; it "
                                 "needs distill_objective=dynabert")
        elif "depth" in self.stages:
            raise ValueError("stage depth (DynaBERT_D) runs with --first_stage=depth")

    def _check_hidden(self):
        """--hidden_mults runs with the paper's stage 1 only (one ValueError line)."""
        if not self.hidden_on:
            return
        for flag, on in (("width_teacher=inplace", self.width_teacher == "inplace"),
                         ("width_sampling=universal", self.width_sampling == "universal"),
                         ("progressive_rewiring", self.progressive_rewiring),
                         ("first_stage=depth", self.first_stage == "depth")):
            if on:
                raise ValueError(f"--hidden_mults trains the hidden sizes in the paper's stage "
                                 f"width; it cannot run with --{flag}")
