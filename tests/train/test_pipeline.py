"""The pipeline table (train/pipeline.py) and the settings grouped by concern
(train/settings.py): stage order, seeds by name, and the one source of every flag."""

import dataclasses
import itertools

import pytest

from train import pipeline
from train import settings as settings_lib
from train.settings import Settings

# The stage runner table of the code that trained the committed results (train/stages.py
# before the pipeline table): a stage's seed was --seed + 1000 * its position here.
OLD_RUNNERS_ORDER = ["teacher", "rewire", "width", "width_depth", "finetune", "evaluate",
                     "separate", "augment", "depth"]
OLD_STAGES = ("teacher", "rewire", "augment", "width", "depth", "width_depth", "finetune",
              "evaluate", "separate")
OLD_DEFAULT_STAGES = ("teacher", "rewire", "width", "width_depth", "finetune", "evaluate")


def _old_pipeline(stages, first_stage, augment):
    """`Settings.pipeline` as it was written before the table."""
    wanted = set(stages)
    if first_stage == "depth" and "width" in wanted:
        wanted = (wanted - {"width"}) | {"depth"}
    if augment and wanted & {"width", "width_depth"}:
        wanted.add("augment")
    return [stage for stage in OLD_STAGES if stage in wanted]


@pytest.mark.parametrize("seed", [0, 42, 2 ** 32 - 1])
def test_every_stage_keeps_the_seed_it_had(seed):
    for index, stage in enumerate(OLD_RUNNERS_ORDER):
        assert pipeline.stage_seed(seed, stage) == seed + 1000 * index, stage
    assert sorted(OLD_RUNNERS_ORDER) == sorted(pipeline.NAMES)


def test_stages_runners_and_seeds_come_from_the_table():
    from train import stages

    assert list(stages.RUNNERS) == list(pipeline.NAMES)
    settings = Settings(task="rt_polarity", workdir="w", seed=7)
    for index, stage in enumerate(OLD_RUNNERS_ORDER):
        assert stages._stage_seed(settings, stage) == 7 + 1000 * index, stage


def test_order_and_defaults_are_the_table():
    assert pipeline.NAMES == OLD_STAGES == settings_lib.STAGES
    assert pipeline.DEFAULT_STAGES == OLD_DEFAULT_STAGES == settings_lib.DEFAULT_STAGES
    assert Settings(task="rt_polarity", workdir="w").stages == OLD_DEFAULT_STAGES
    with pytest.raises(ValueError, match="do not match the pipeline table"):
        pipeline.runners({name: None for name in pipeline.NAMES[1:]})


def test_flags_add_and_replace_stages_as_before():
    for count in range(len(OLD_STAGES) + 1):
        for stages in itertools.combinations(OLD_STAGES, count):
            for first_stage, augment in itertools.product(("width", "depth"), (False, True)):
                assert pipeline.resolve(stages, first_stage=first_stage, augment=augment) \
                    == _old_pipeline(stages, first_stage, augment), (stages, first_stage, augment)
    settings = Settings(task="rt_polarity", workdir="w", augment=True)
    assert settings.pipeline == ["teacher", "rewire", "augment", "width", "width_depth",
                                 "finetune", "evaluate"]


def test_each_field_is_declared_once_in_one_concern():
    names = [f.name for concern in settings_lib.CONCERNS for f in dataclasses.fields(concern)]
    assert len(names) == len(set(names)) == 58
    assert names == [f.name for f in dataclasses.fields(Settings)]
    flags = [settings_lib.flag_name(f) for f in dataclasses.fields(Settings)]
    assert len(set(flags)) == len(flags)
    assert {"width_mult_list", "depth_mult_list", "hidden_mults"} <= set(flags)


def test_concern_views_hold_the_settings_values():
    settings = Settings(task="rt_polarity", workdir="w", aug_copies=3, augment=True,
                        learning_rate=1e-4, width_mults=(1.0, 0.5))
    assert settings.augmentation == settings_lib.Augmentation(augment=True, aug_copies=3)
    assert settings.optimisation.learning_rate == 1e-4
    assert settings.multipliers.grid == settings.grid
    assert settings.run.stage_dir("teacher") == settings.stage_dir("teacher")
    assert settings.model.init_checkpoint == "minilm_l6"
    assert settings.data.task == "rt_polarity"
    with pytest.raises(ValueError, match="aug_copies must be at least 1"):
        settings_lib.Augmentation(aug_copies=0)  # a concern checks its fields alone too
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.seed = 1
