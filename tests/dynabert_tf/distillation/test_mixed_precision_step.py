"""One training step of each stage in bfloat16 and float16: the grid's loss on one batch
against float32's (same weights, same batch), then the update (float16 through Keras'
LossScaleOptimizer)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from dynabert_tf import precision
from dynabert_tf.distillation.grid_trainer import GridTrainer
from tests.helpers import TINY_DEEP, random_inputs, tiny_classifier

WIDTHS = (1.0, 0.75, 0.5, 0.25)
STAGES = {  # the trainer arguments of stages teacher, width (stage 1), width_depth (stage 2)
    "teacher": dict(loss_mode="labels"),
    "width": dict(width_mults=WIDTHS, teacher_width="full", lambda_hidden=0.1),
    "width_depth": dict(width_mults=WIDTHS, depth_mults=(1.0, 0.75, 0.5),
                        teacher_width="same", lambda_hidden=1.0),
}
# Relative difference of the summed grid loss to float32's on the same batch (bfloat16 keeps
# 8 significant bits, float16 11; the losses themselves are float32): measured at most 6e-5
# (bfloat16) and 6e-6 (float16) over the three stages.
LOSS_TOLERANCE = {"mixed_bfloat16": 1e-3, "mixed_float16": 1e-4}


@pytest.fixture(autouse=True)
def _float32_after():
    yield
    keras.mixed_precision.set_global_policy("float32")


def _models(policy, weights=None):
    """A dropout-free student and teacher built under `policy` (given `weights` to copy)."""
    with precision.policy(policy):
        models = [tiny_classifier(3, TINY_DEEP, dropout=0.0) for _ in range(2)]
    for model, values in zip(models, weights or ()):
        model.set_weights(values)
    return models


@pytest.fixture(scope="module")
def reference():
    """Float32 weights with non-zero biases, one batch, and the float32 loss of each stage."""
    keras.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    models = _models("float32")
    for model in models:
        for variable in model.weights:
            if "bias" in variable.path or "beta" in variable.path:
                variable.assign(rng.normal(0, 0.1, variable.shape).astype("float32"))
    inputs = random_inputs(batch_size=6, seq_len=9, pad_last=3, seed=5)
    labels = np.array([0, 1, 2, 0, 1, 2], "int32")
    losses = {stage: float(GridTrainer(*models, **kwargs).compute_gradients(inputs, labels)[0])
              for stage, kwargs in STAGES.items()}
    return [m.get_weights() for m in models], inputs, labels, losses


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("stage", list(STAGES))
def test_one_step_of_each_stage_matches_float32(reference, stage, policy):
    weights, inputs, labels, want = reference
    student, teacher = _models(policy, weights)
    trainer = GridTrainer(student, teacher, **STAGES[stage])
    optimizer = precision.for_policy(keras.optimizers.Adam(1e-3), policy)
    trainer.scaling_optimizer = (optimizer if precision.needs_loss_scaling(policy) else None)
    optimizer.build(student.trainable_variables)
    before = [v.numpy() for v in student.trainable_variables]
    # float16: a step whose scaled gradients overflow is skipped and the scale halved
    # (Keras' dynamic loss scaling); the first ones at the initial 2^15 may be.
    for attempt in range(8):
        loss, gradients, _ = trainer.compute_gradients(inputs, labels)
        if attempt == 0:
            assert student.compute_dtype == policy.split("_")[1]
            np.testing.assert_allclose(float(loss), want[stage], rtol=LOSS_TOLERANCE[policy])
        used = [(g, v) for g, v in zip(gradients, student.trainable_variables)
                if g is not None]
        assert all(g.dtype == tf.float32 for g, _ in used)  # as the float32 weights
        optimizer.apply(*zip(*used))
        if int(optimizer.iterations) == 1:
            break
    after = [v.numpy() for v in student.trainable_variables]
    assert int(optimizer.iterations) == 1, "no step applied"
    assert all(np.isfinite(a).all() for a in after)
    assert any((a != b).any() for a, b in zip(after, before))  # the step updated the weights
