"""The ablation flags at the stage level (train/stages.py): each changes what it should.

Tiny random 2-layer models on 16 real rt_polarity examples, tf.functions run eagerly (a
step or two per stage): the plumbing, not accuracy. The trainers' arithmetic is checked
in test_variants.py.
"""

import dataclasses
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from dynabert_tf.distillation import variants
from dynabert_tf.distillation.grid_trainer import GridTrainer
from dynabert_tf.elastic import rewiring
from dynabert_tf.core import files
from dynabert_tf.io import checkpoint
from dynabert_tf.models.backbone import DynaBertBackbone
from dynabert_tf.models.task_model import classifier
from dynabert_tf.presets import hf_config
from train import sources, stages, task_data
from train.runtime import Runtime
from train.settings import Settings
from tests.helpers import REPO_ROOT

TINY_2L = os.path.join(REPO_ROOT, "configs", "tiny_bert_2l")


def _random_model(seed):
    keras.utils.set_random_seed(seed)
    return classifier(DynaBertBackbone.from_config_object(
        hf_config.read_config(TINY_2L)), 2)


def _save_stage(model, workdir, stage, vocab):
    checkpoint.save_task_model(model, os.path.join(workdir, stage), vocab)
    files.write_json(os.path.join(workdir, stage, "stage.json"), {})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(settings, data): a workdir holding a finished teacher and rewire stage (random
    weights) and a 'pretrained' checkpoint of other random weights."""
    root = tmp_path_factory.mktemp("ablation_stages")
    base = Settings(
        task="rt_polarity", workdir=str(root / "base"), init_checkpoint=str(root / "pretrained"),
        vocab_file="minilm_l6", max_seq_length=16, batch_size=8, eval_batch_size=16,
        max_train_examples=16, max_eval_examples=8, importance_batches=1, pad_to="max",
        bucket_boundaries=(), learning_rate=1e-3, width_mults=(1.0, 0.5, 0.25),
        depth_mults=(1.0, 0.5), width_epochs=1, width_depth_epochs=0.5, separate_epochs=0.5,
        checkpoint_every=0, progress="0", run_eagerly=True, stages=("width",))
    vocab = sources.vocab_path(base.model)
    _random_model(1).save_to_preset(str(root / "pretrained"), vocab)
    teacher = _random_model(2)
    _save_stage(teacher, base.workdir, "teacher", vocab)
    _save_stage(teacher, base.workdir, "rewire", vocab)
    data = task_data.load(base)
    yield base, data
    tf.config.run_functions_eagerly(False)  # run_stages set it for this process


def _workdir(base, name, **flags):
    """A copy of the base workdir (teacher, rewire) with `flags` set."""
    workdir = os.path.join(os.path.dirname(base.workdir), name)
    shutil.copytree(base.workdir, workdir)
    return dataclasses.replace(base, workdir=workdir, **flags)


@pytest.fixture
def trainers(monkeypatch):
    """Every trainer a stage builds: its class, grid, and its student's and teacher's
    weights when it was built (before training)."""
    made, build = [], stages._grid_trainer

    def spy(runtime, student, teacher=None, **kwargs):
        made.append({"class": kwargs.get("trainer_class", GridTrainer),
                     "widths": tuple(kwargs.get("width_mults", (1.0,))),
                     "depths": tuple(kwargs.get("depth_mults", (1.0,))),
                     "student": student.get_weights(),
                     "teacher": teacher.get_weights() if teacher is not None else None})
        return build(runtime, student, teacher, **kwargs)

    monkeypatch.setattr(stages, "_grid_trainer", spy)
    return made


def _weights(path):
    return checkpoint.load_task_model(path).get_weights()


def _assert_same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("start", ["pretrained", "teacher"])
def test_separate_cell_starts_from_the_chosen_checkpoint(run, start):
    base, data = run
    settings = dataclasses.replace(base, separate_init=start)
    model = stages._separate_start(settings, data, Runtime.create("none"), index=3)
    source = base.init_checkpoint if start == "pretrained" else os.path.join(base.workdir,
                                                                             "teacher")
    # The whole encoder, unrewired (a cell keeps its leading heads, neurons and layers);
    # run_separate trains and scores each cell from here (test_fidelity's end-to-end run).
    _assert_same(model.backbone.get_weights(), checkpoint.load_backbone(source).get_weights())


def test_depth_first_trains_dynabert_d_and_it_teaches_stage_2(run, trainers):
    base, data = run
    settings = _workdir(base, "depth_first", first_stage="depth", width_epochs=0.5,
                        stages=("width", "width_depth"))
    assert settings.pipeline == ["depth", "width_depth"]  # "width" is stage 1: DynaBERT_D
    stages.run_stages(settings, data, settings.pipeline)
    depth, width_depth = trainers
    assert (depth["class"], depth["widths"], depth["depths"]) == (GridTrainer, (1.0,),
                                                                  (1.0, 0.5))
    _assert_same(depth["teacher"], _weights(os.path.join(base.workdir, "rewire")))
    assert width_depth["class"] is variants.DepthTeacherGridTrainer
    dynabert_d = _weights(os.path.join(settings.workdir, "depth"))
    _assert_same(width_depth["teacher"], dynabert_d)
    _assert_same(width_depth["student"], dynabert_d)
    assert not os.path.exists(os.path.join(settings.workdir, "width"))


def test_progressive_rewiring_rewires_the_student_before_each_added_width(run, trainers):
    base, data = run
    settings = _workdir(base, "progressive", progressive_rewiring=True)
    summary = stages.run_stages(settings, data, ["width"])["width"]
    assert [phase["widths"] for phase in summary["phases"]] == [[1.0, 0.5], [1.0, 0.5, 0.25]]
    assert [made["widths"] for made in trainers] == [(1.0, 0.5), (1.0, 0.5, 0.25)]
    phase1 = checkpoint.load_task_model(os.path.join(settings.workdir, "width", "phase1"))
    start = os.path.join(settings.workdir, "width", "phase2", "start")
    saved = rewiring.load_importance(os.path.join(start, "importance.npz"))
    # The scores are the phase-1 student's (not the teacher's), on the importance data ...
    fresh = rewiring.compute_importance(phase1, data.importance_dataset(), progress=False)
    np.testing.assert_allclose(saved["neuron"], fresh["neuron"], rtol=1e-5)
    # ... and phase 2 starts from the phase-1 student permuted by them.
    order = saved["neuron_order"][0]
    assert not np.array_equal(order, np.arange(len(order)))
    kernel = phase1.backbone.transformer_layers[0].feedforward.intermediate_kernel
    layer0 = checkpoint.load_task_model(start).backbone.transformer_layers[0]
    np.testing.assert_array_equal(np.asarray(layer0.feedforward.intermediate_kernel),
                                  np.asarray(kernel)[order])
    _assert_same(trainers[1]["student"], checkpoint.load_task_model(start).get_weights())
    _assert_same(_weights(os.path.join(settings.workdir, "width")),
                 _weights(os.path.join(settings.workdir, "width", "phase2")))


@pytest.mark.parametrize("flags, stage, trainer_class", [
    ({"width_teacher": "inplace"}, "width", variants.InplaceGridTrainer),
    ({"width_sampling": "universal"}, "width", variants.SlimmableGridTrainer),
    ({"first_stage": "depth"}, "width_depth", variants.DepthTeacherGridTrainer),
    ({"first_stage": "depth"}, "depth", GridTrainer),
    ({}, "width", GridTrainer),
    ({"width_sampling": "universal"}, "width_depth", GridTrainer),
])
def test_each_flag_picks_its_trainer(run, flags, stage, trainer_class):
    assert stages._trainer_class(dataclasses.replace(run[0], **flags), stage) is trainer_class


@pytest.mark.parametrize("flags, phrase", [
    ({"width_teacher": "inplace", "distillation": False},
     "width_teacher=inplace is a distillation"),
    ({"width_sampling": "universal", "progressive_rewiring": True},
     "--width_sampling=universal and --progressive_rewiring are separate ablations"),
    ({"progressive_rewiring": True, "rewiring": False}, "progressive_rewiring needs --rewiring"),
    ({"width_sampling": "universal", "width_mults": (0.5,)},
     "needs at least two widths in width_mult_list"),
    ({"first_stage": "depth", "direct": True}, "cannot run with --direct"),
    ({"first_stage": "depth", "width_teacher": "inplace"},
     "cannot run with --width_teacher=inplace"),
    ({"stages": ("depth",)}, "stage depth (DynaBERT_D) runs with --first_stage=depth"),
])
def test_bad_combinations_are_one_line_naming_the_flag(run, flags, phrase):
    with pytest.raises(ValueError) as error:
        dataclasses.replace(run[0], **flags)
    assert phrase in str(error.value) and "\n" not in str(error.value)
