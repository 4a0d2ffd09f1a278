"""The training pipeline in one table: the stages in the order they run, which flags add a
stage or put one in another's place, and the seed of each stage.

    pipeline.NAMES                          every stage, in pipeline order
    pipeline.DEFAULT_STAGES                 what --stages lists by default
    pipeline.resolve(stages, first_stage="width", augment=False)   the stages a run runs
    pipeline.stage_seed(seed, "width")      the seed a stage starts from

A stage's seed is `--seed + seed_offset`, the offset recorded here by name, so adding a
stage (anywhere in the order) changes no other stage's seed. The offsets of the first nine
stages are `1000 * i` for their position i in the runner table of the code that trained the
committed results (teacher, rewire, width, width_depth, finetune, evaluate, separate,
augment, depth): kept as they were, so those results stay reproducible. A new stage takes
an offset of its own (the next free multiple of 1000); a stage that seeds several parts
(progressive rewiring's phases, the 'separate' cells) adds the part's number to its seed.

No TensorFlow: the settings (flag checks, before TensorFlow starts) read this table too.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Stage:
    """One row of the pipeline table.

    Attributes:
      name: the stage, and its directory WORKDIR/<name>.
      seed_offset: added to --seed: the seed the stage starts from.
      default: in the default --stages.
      flag: (flag, value) that switches the stage on: it joins the run only with it.
      replaces: with `flag` set, the stage runs in the place of this one when it is listed.
      feeds: with `flag` set, the stage joins the run when one of these is listed (they
        read its output).
      what: one line for the docs.
    """

    name: str
    seed_offset: int
    default: bool = True
    flag: tuple = None
    replaces: str = None
    feeds: tuple = ()
    what: str = ""


TABLE = (
    Stage("teacher", 0, what="fine-tune the pretrained checkpoint on the task"),
    Stage("rewire", 1000, what="Taylor importance; heads and neurons permuted by it"),
    Stage("augment", 7000, default=False, flag=("augment", True), feeds=("width", "width_depth"),
          what="TinyBERT's augmented copies of the training split (--augment)"),
    Stage("width", 2000, what="DynaBERT_w: the rewired teacher distilled into every width"),
    Stage("depth", 8000, default=False, flag=("first_stage", "depth"), replaces="width",
          what="DynaBERT_D, in the place of width with --first_stage=depth"),
    Stage("width_depth", 3000, what="DynaBERT: stage 1's model distilled into every cell"),
    Stage("finetune", 4000, what="label loss over the grid"),
    Stage("evaluate", 5000, what="every cell's metrics; keeps the better of width_depth and "
                                 "finetune in WORKDIR/final"),
    Stage("separate", 6000, default=False,
          what="baseline, on request: every cell fine-tuned alone"),
)

BY_NAME = {stage.name: stage for stage in TABLE}
NAMES = tuple(BY_NAME)
DEFAULT_STAGES = tuple(stage.name for stage in TABLE if stage.default)
# The flags that switch stages on (`resolve` takes their values).
FLAGS = tuple(dict.fromkeys(stage.flag[0] for stage in TABLE if stage.flag))


def resolve(stages, **flags):
    """The stages a run runs, in pipeline order: `stages` (the --stages list), each stage
    that `flags` (flag name -> value, e.g. first_stage="depth", augment=True) switch on put
    in the place of the stage it replaces, then added where a stage it feeds is listed."""
    wanted = set(stages)
    switched_on = [stage for stage in TABLE
                   if stage.flag and flags.get(stage.flag[0]) == stage.flag[1]]
    for stage in switched_on:
        if stage.replaces in wanted:
            wanted = (wanted - {stage.replaces}) | {stage.name}
    for stage in switched_on:
        if wanted & set(stage.feeds):
            wanted.add(stage.name)
    return [name for name in NAMES if name in wanted]


def stage_seed(seed, stage):
    """The seed `stage` starts from: `seed` + its offset in the table."""
    return seed + BY_NAME[stage].seed_offset


def runners(functions):
    """{stage: function} in pipeline order; ValueError unless `functions` names exactly the
    table's stages."""
    if set(functions) != set(NAMES):
        raise ValueError(f"stage runners {sorted(functions)} do not match the pipeline "
                         f"table {sorted(NAMES)}")
    return {name: functions[name] for name in NAMES}


def _check_table():
    offsets = [stage.seed_offset for stage in TABLE]
    if len(set(offsets)) != len(offsets) or len(NAMES) != len(TABLE):
        raise ValueError("pipeline table: stage names and seed offsets must be unique")


_check_table()
