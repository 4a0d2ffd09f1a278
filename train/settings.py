"""What one training run needs to know, as a plain dataclass (flags are parsed in run.py)."""

import dataclasses
import os

from dynabert_tf import assets
from dynabert_tf import config as config_lib

STAGES = ("teacher", "rewire", "width", "width_depth", "finetune", "evaluate", "separate")
DEFAULT_STAGES = STAGES[:-1]  # "separate" is a baseline, run on request
# Named checkpoints that resolve to a real asset instead of a path.
NAMED_CHECKPOINTS = {"minilm_l6": assets.minilm_dir}


@dataclasses.dataclass(frozen=True)
class Settings:
    task: str
    workdir: str
    init_checkpoint: str
    data_dir: str = None
    data_source: str = "tsv"
    random_init: bool = False
    vocab_file: str = None
    max_seq_length: int = 128
    pad_to: str = "longest"
    bucket_boundaries: tuple = ()  # training batches drawn from these length buckets
    batch_size: int = 32
    eval_batch_size: int = 64
    learning_rate: float = 2e-5
    warmup_proportion: float = 0.1
    weight_decay: float = 0.01
    # Epochs per training stage; the paper uses 3 everywhere.
    teacher_epochs: float = 3
    width_epochs: float = 3
    width_depth_epochs: float = 3
    finetune_epochs: float = 3
    separate_epochs: float = 3
    width_mults: tuple = config_lib.WIDTH_MULTS
    depth_mults: tuple = config_lib.DEPTH_MULTS
    width_lambdas: tuple = (1.0, 0.1)        # (logits, hidden states) in stage "width"
    width_depth_lambdas: tuple = (1.0, 1.0)  # in stage "width_depth"
    teacher_width: str = "same"
    # Ablations (paper Tables 3-5): switch off rewiring or distillation, or skip DynaBERT_w.
    rewiring: bool = True
    distillation: bool = True
    direct: bool = False
    importance_split: str = "train"
    importance_batches: int = 0  # 0 = the whole split
    dropout: float = 0.1
    seed: int = 42
    max_train_examples: int = 0  # 0 = all
    max_eval_examples: int = 0
    checkpoint_every: int = 200
    verbose: str = "auto"

    def __post_init__(self):
        for value in (*self.width_mults, *self.depth_mults):
            config_lib.check_multiplier("width/depth multiplier", value)
        if self.teacher_width not in ("same", "full"):
            raise ValueError(f"teacher_width must be 'same' or 'full', got {self.teacher_width!r}")
        if self.pad_to not in ("longest", "max"):
            raise ValueError(f"pad_to must be 'longest' or 'max', got {self.pad_to!r}")
        if self.bucket_boundaries and self.pad_to != "longest":
            raise ValueError("bucket_boundaries needs pad_to='longest'")
        if self.importance_split not in ("train", "dev"):
            raise ValueError(f"importance_split must be 'train' or 'dev', got "
                             f"{self.importance_split!r}")
        if self.max_seq_length < 8:
            raise ValueError(f"max_seq_length must be at least 8, got {self.max_seq_length}")

    def stage_dir(self, stage):
        return os.path.join(self.workdir, stage)

    @property
    def grid(self):
        return config_lib.grid(self.width_mults, self.depth_mults)

    def resolved_checkpoint(self):
        """The init checkpoint's directory (a named asset such as `minilm_l6`, or a path)."""
        if self.init_checkpoint in NAMED_CHECKPOINTS:
            return NAMED_CHECKPOINTS[self.init_checkpoint]()
        if not os.path.isdir(self.init_checkpoint):
            raise FileNotFoundError(f"--init_checkpoint {self.init_checkpoint} is neither a "
                                    f"directory nor one of {sorted(NAMED_CHECKPOINTS)}")
        return self.init_checkpoint

    def resolved_vocab(self):
        """vocab.txt: --vocab_file (a path or a named checkpoint) or the init checkpoint's."""
        source = self.vocab_file or self.resolved_checkpoint()
        if source in NAMED_CHECKPOINTS:
            source = NAMED_CHECKPOINTS[source]()
        if os.path.isdir(source):
            candidates = [os.path.join(source, "vocab.txt"),
                          os.path.join(source, "assets", "tokenizer", "vocabulary.txt")]
            found = [path for path in candidates if os.path.isfile(path)]
            if not found:
                raise FileNotFoundError(f"no vocab.txt in {source}; pass --vocab_file")
            source = found[0]
        if not os.path.isfile(source):
            raise FileNotFoundError(f"vocab file {source} does not exist")
        return source
