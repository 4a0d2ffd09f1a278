"""The training loop under mixed precision: a killed bfloat16 / float16 run resumes bit for
bit (the float16 loss scale is in the checkpoint), and float16 with loss scaling learns a
tiny task as well as float32."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from dynabert_tf import precision
from dynabert_tf.distillation.grid_trainer import GridTrainer
from tests.helpers import random_inputs, tiny_classifier
from train.loop import TrainingLoop

STEPS_PER_EPOCH, EPOCHS = 2, 2  # killed at step 3: mid second epoch


@pytest.fixture(autouse=True)
def _float32_after():
    yield
    keras.mixed_precision.set_global_policy("float32")


def _epoch_dataset(epoch, examples=16, seed=7, batch_size=4):
    """A learnable task: the label is the parity of the second token."""
    inputs = random_inputs(batch_size=examples, seq_len=6, pad_last=0, seed=seed)
    labels = (inputs["token_ids"][:, 1] % 2).astype("int32")
    return (tf.data.Dataset.from_tensor_slices((inputs, labels))
            .shuffle(examples, seed=epoch, reshuffle_each_iteration=False).batch(batch_size))


def _loop(state_dir, policy, on_step=None, learning_rate=1e-3, dropout=0.1,
          checkpoint_every=1):
    """A fresh process's view under `policy`: new model and optimizer, state from disk."""
    keras.utils.set_random_seed(0)
    with precision.policy(policy):
        model = tiny_classifier(dropout=dropout)
        trainer = GridTrainer(model, None, width_mults=(1.0, 0.5), loss_mode="labels")
        optimizer = precision.for_policy(keras.optimizers.Adam(learning_rate), policy)
    return TrainingLoop(trainer, optimizer, str(state_dir), checkpoint_every=checkpoint_every,
                        verbose=0, on_step=on_step)


def _kill_at(step):
    def on_step(at, loss):
        if at == step:
            raise KeyboardInterrupt("simulated kill")
    return on_step


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_resume_after_kill_is_bit_exact(tmp_path, policy):
    unbroken = _loop(tmp_path / "a", policy)
    unbroken.fit(_epoch_dataset, EPOCHS, STEPS_PER_EPOCH)
    with pytest.raises(KeyboardInterrupt):
        _loop(tmp_path / "b", policy, on_step=_kill_at(3)).fit(_epoch_dataset, EPOCHS,
                                                               STEPS_PER_EPOCH)
    resumed = _loop(tmp_path / "b", policy)
    assert resumed.fit(_epoch_dataset, EPOCHS, STEPS_PER_EPOCH) == EPOCHS * STEPS_PER_EPOCH
    assert resumed.trainer.student.compute_dtype == policy.split("_")[1]
    for got, want in zip(resumed.trainer.student.get_weights(),
                         unbroken.trainer.student.get_weights()):
        np.testing.assert_array_equal(got, want)
    if policy == "mixed_float16":
        names = [name for name, _ in tf.train.list_variables(str(tmp_path / "b" / "checkpoints"))]
        assert any("dynamic_scale" in name for name in names), names
        assert float(resumed.optimizer.dynamic_scale) == float(unbroken.optimizer.dynamic_scale)


def _accuracy(model, dataset):
    right = total = 0
    for features, labels in dataset:
        predicted = np.argmax(model(features), axis=-1)
        right, total = right + int((predicted == labels.numpy()).sum()), total + len(predicted)
    return right / total


def test_float16_with_loss_scaling_learns_as_well_as_float32(tmp_path):
    """The same tiny task trained in float32 and in mixed_float16 (dynamic loss scale): the
    float16 model's accuracy, read in float32 as `evaluate` reads it, matches float32's."""
    accuracies = {}
    data = lambda epoch: _epoch_dataset(epoch, examples=64, seed=11, batch_size=16)
    for policy in ("float32", "mixed_float16"):
        loop = _loop(tmp_path / policy, policy, learning_rate=3e-3, dropout=0.0,
                     checkpoint_every=0)
        loop.fit(data, 10, 4)
        reader = tiny_classifier(dropout=0.0)  # float32, as evaluation builds it
        reader.set_weights(loop.trainer.student.get_weights())
        accuracies[policy] = _accuracy(reader, data(0))
    assert accuracies["float32"] >= 0.9, accuracies  # the task is learned
    assert accuracies["mixed_float16"] >= accuracies["float32"] - 0.05, accuracies
