"""The training loop: a killed run resumes bit for bit, a bad loss stops it, replicas add up."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from dynabert_tf.distillation.grid_trainer import GridTrainer
from dynabert_tf.models import task_model
from dynabert_tf.tasks import heads
from tests.helpers import REPO_ROOT, random_inputs, tiny_backbone, tiny_classifier
from train.loop import NonFiniteLoss, TrainingLoop

STEPS_PER_EPOCH, EPOCHS = 4, 2


def _epoch_dataset(epoch):
    inputs = random_inputs(batch_size=16, seq_len=6, pad_last=0, seed=7)
    labels = (inputs["token_ids"][:, 1] % 2).astype("int32")
    return (tf.data.Dataset.from_tensor_slices((inputs, labels))
            .shuffle(16, seed=epoch, reshuffle_each_iteration=False).batch(4))


def _loop(state_dir, on_step=None):
    """A fresh process's view: new model and optimizer, state only from disk."""
    keras.utils.set_random_seed(0)
    model = tiny_classifier(dropout=0.1)
    trainer = GridTrainer(model, None, width_mults=(1.0, 0.5), loss_mode="labels")
    return TrainingLoop(trainer, keras.optimizers.Adam(1e-3), str(state_dir),
                        checkpoint_every=1, verbose=0, on_step=on_step)


def _kill_at(step):
    def on_step(at, loss):
        if at == step:
            raise KeyboardInterrupt("simulated kill")
    return on_step


@pytest.mark.parametrize("kill_at", [3, 5])  # mid first epoch; mid second epoch
def test_resume_after_kill_is_bit_exact_with_dropout_on(tmp_path, kill_at):
    unbroken = _loop(tmp_path / "a")
    unbroken.fit(_epoch_dataset, EPOCHS, STEPS_PER_EPOCH)

    with pytest.raises(KeyboardInterrupt):
        _loop(tmp_path / "b", on_step=_kill_at(kill_at)).fit(_epoch_dataset, EPOCHS,
                                                              STEPS_PER_EPOCH)
    resumed = _loop(tmp_path / "b")
    assert resumed.fit(_epoch_dataset, EPOCHS, STEPS_PER_EPOCH) == EPOCHS * STEPS_PER_EPOCH
    for got, want in zip(resumed.trainer.student.get_weights(),
                         unbroken.trainer.student.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_finished_run_does_not_train_again(tmp_path):
    first = _loop(tmp_path)
    first.fit(_epoch_dataset, 1, STEPS_PER_EPOCH)
    again = _loop(tmp_path)
    assert again.fit(_epoch_dataset, 1, STEPS_PER_EPOCH) == STEPS_PER_EPOCH
    for got, want in zip(again.trainer.student.get_weights(),
                         first.trainer.student.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_nan_loss_stops_the_stage_and_keeps_the_last_good_checkpoint(tmp_path):
    keras.utils.set_random_seed(0)
    model = task_model.DynaBertTaskModel(tiny_backbone(), heads.make_head("regression", 1, 0.0))
    loop = TrainingLoop(GridTrainer(model, None, loss_mode="labels"),
                        keras.optimizers.Adam(1e-3), str(tmp_path), checkpoint_every=1,
                        verbose=0)
    inputs = random_inputs(batch_size=16, seq_len=6, pad_last=0, seed=7)
    targets = np.where(np.arange(16) // 4 == 2, np.nan, 0.5).astype("float32")  # batch 3
    with pytest.raises(NonFiniteLoss, match="loss is nan at step 3"):
        loop.fit(lambda epoch: tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(4),
                 1, STEPS_PER_EPOCH)
    kept = tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
    assert kept.endswith("ckpt-2")
    values = [np.asarray(tf.train.load_variable(kept, name))
              for name, _ in tf.train.list_variables(kept)]
    assert all(np.isfinite(v).all() for v in values if v.dtype.kind == "f")


MIRRORED = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np
from dynabert_tf.distillation.grid_trainer import GridTrainer
from tests.helpers import random_inputs, tiny_classifier
from train.loop import TrainingLoop
from train.runtime import Runtime

def epoch_dataset(epoch):  # 9 examples in batches of 4: the last one has one row
    inputs = random_inputs(batch_size=9, seq_len=6, pad_last=0, seed=7)
    labels = (inputs["token_ids"][:, 1] % 2).astype("int32")
    return tf.data.Dataset.from_tensor_slices((inputs, labels)).shuffle(
        9, seed=epoch, reshuffle_each_iteration=False).batch(4)

def train(runtime, state_dir):
    with runtime.scope():
        keras.utils.set_random_seed(0)
        model = tiny_classifier(dropout=0.0)
        trainer = GridTrainer(model, None, width_mults=(1.0, 0.5), loss_mode="labels")
        optimizer = keras.optimizers.Adam(1e-2)
    TrainingLoop(trainer, optimizer, state_dir, runtime, verbose=0).fit(epoch_dataset, 2, 3)
    return model.get_weights()

one = train(Runtime.create("none"), "{tmp}/one")
two = Runtime.create("mirrored", devices=["/cpu:0", "/cpu:1"])
assert two.num_replicas == 2
mirrored = train(two, "{tmp}/two")
print("max_diff", max(float(np.abs(a - b).max()) for a, b in zip(one, mirrored)))
"""


def test_mirrored_two_replicas_train_like_one_process(tmp_path):
    """Two replicas (two logical CPUs) on global batches of 4, 4 and 1 rows (the last one
    leaves a replica an empty slice, weighted 0) end where one process ends."""
    result = subprocess.run([sys.executable, "-c", MIRRORED.replace("{tmp}", str(tmp_path))],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    max_diff = float(result.stdout.split("max_diff")[1])
    assert max_diff < 1e-5
