"""A killed training run resumes at the exact step and ends where an unbroken run ends."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import random_inputs, tiny_classifier
from train.loop import fit_resumable

STEPS_PER_EPOCH, EPOCHS = 4, 2


def _epoch_dataset(epoch):
    inputs = random_inputs(batch_size=16, seq_len=6, pad_last=0, seed=7)
    labels = (inputs["token_ids"][:, 1] % 2).astype("int32")
    return (tf.data.Dataset.from_tensor_slices((inputs, labels))
            .shuffle(16, seed=epoch, reshuffle_each_iteration=False).batch(4))


def _compiled_model():
    keras.utils.set_random_seed(0)
    model = tiny_classifier(dropout=0.0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


class _Kill(keras.callbacks.Callback):
    def __init__(self, at_step):
        super().__init__()
        self.at_step = at_step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations) == self.at_step:
            raise KeyboardInterrupt("simulated kill")


@pytest.mark.parametrize("kill_at", [3, 5])  # mid first epoch; mid second epoch
def test_resume_after_kill_matches_an_unbroken_run(tmp_path, kill_at):
    unbroken = _compiled_model()
    fit_resumable(unbroken, _epoch_dataset, EPOCHS, STEPS_PER_EPOCH, str(tmp_path / "a"),
                  checkpoint_every=1, verbose=0)

    killed = _compiled_model()
    with pytest.raises(KeyboardInterrupt):
        fit_resumable(killed, _epoch_dataset, EPOCHS, STEPS_PER_EPOCH, str(tmp_path / "b"),
                      checkpoint_every=1, callbacks=[_Kill(kill_at)], verbose=0)
    resumed = _compiled_model()  # a fresh process: new model, state only from disk
    steps = fit_resumable(resumed, _epoch_dataset, EPOCHS, STEPS_PER_EPOCH,
                          str(tmp_path / "b"), checkpoint_every=1, verbose=0)

    assert steps == EPOCHS * STEPS_PER_EPOCH
    for got, want in zip(resumed.get_weights(), unbroken.get_weights()):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_finished_run_does_not_train_again(tmp_path):
    model = _compiled_model()
    fit_resumable(model, _epoch_dataset, 1, STEPS_PER_EPOCH, str(tmp_path), verbose=0)
    again = _compiled_model()
    assert fit_resumable(again, _epoch_dataset, 1, STEPS_PER_EPOCH, str(tmp_path),
                         verbose=0) == STEPS_PER_EPOCH
    for got, want in zip(again.get_weights(), model.get_weights()):
        np.testing.assert_allclose(got, want)
