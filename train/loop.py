"""A `model.fit` loop that survives being killed: resumes at the exact step it stopped.

Every `checkpoint_every` steps and at each epoch end, the weights, the optimizer (with its
step count) and the position in the epoch go to a `tf.train.CheckpointManager`. A restarted
run restores them and skips the batches of the current epoch it has already trained on;
each epoch's data order depends only on (seed, epoch), so the skipped batches are the same.
"""

import os

import keras
import tensorflow as tf


class _ResumeCheckpoint(keras.callbacks.Callback):
    """Saves the run's state every N steps and at the end of each epoch."""

    def __init__(self, manager, epoch, step_in_epoch, every_steps):
        super().__init__()
        self._manager, self._epoch, self._step = manager, epoch, step_in_epoch
        self._every = every_steps

    def on_train_batch_end(self, batch, logs=None):
        self._step.assign_add(1)
        if self._every and int(self.model.optimizer.iterations) % self._every == 0:
            self._manager.save(checkpoint_number=int(self.model.optimizer.iterations))

    def on_epoch_end(self, epoch, logs=None):
        self._epoch.assign(epoch + 1)
        self._step.assign(0)
        self._manager.save(checkpoint_number=int(self.model.optimizer.iterations))


class _StepScalars(keras.callbacks.Callback):
    """Writes the batch logs and the learning rate to TensorBoard against the global step
    (Keras' own TensorBoard callback restarts its batch count at every `fit` call)."""

    def __init__(self, log_dir, every_steps=20):
        super().__init__()
        self._writer = tf.summary.create_file_writer(os.path.join(log_dir, "steps"))
        self._every = every_steps

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations)
        if step % self._every:
            return
        with self._writer.as_default(step=step):
            for name, value in (logs or {}).items():
                tf.summary.scalar(name, value)
            lr = self.model.optimizer.learning_rate
            tf.summary.scalar("learning_rate", lr(step) if callable(lr) else lr)
        self._writer.flush()


def fit_resumable(model, make_epoch_dataset, epochs, steps_per_epoch, state_dir,
                  weights=None, checkpoint_every=200, callbacks=(), verbose="auto"):
    """Trains `model` (compiled) for `epochs`, resuming from `state_dir` if a run was cut off.

    Args:
      model: a compiled keras.Model (its optimizer is checkpointed too).
      make_epoch_dataset: epoch index -> dataset of (features, labels), same order for the
        same epoch on every call (shuffle seeded by the epoch).
      steps_per_epoch: batches per epoch (the dataset may be longer; it is cut).
      state_dir: where checkpoints and TensorBoard logs go.
      weights: the trackable whose variables are saved (default `model`; a distillation
        trainer passes its student so the frozen teacher is not copied every time).
    Returns:
      The optimizer's final step count.
    """
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="step_in_epoch")
    model.optimizer.build(model.trainable_variables)
    state = tf.train.Checkpoint(weights=weights or model, optimizer=model.optimizer,
                                epoch=epoch, step_in_epoch=step_in_epoch)
    manager = tf.train.CheckpointManager(state, os.path.join(state_dir, "checkpoints"),
                                         max_to_keep=2)
    if manager.latest_checkpoint:
        state.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        print(f"resuming from {manager.latest_checkpoint}: epoch {int(epoch)}, "
              f"step {int(step_in_epoch)} of {steps_per_epoch}")
    log_dir = os.path.join(state_dir, "logs")
    all_callbacks = [_ResumeCheckpoint(manager, epoch, step_in_epoch, checkpoint_every),
                     _StepScalars(log_dir),
                     keras.callbacks.TensorBoard(log_dir, update_freq="epoch"), *callbacks]
    while int(epoch) < epochs:
        done = int(step_in_epoch)
        if done >= steps_per_epoch:  # cut off between its last batch and its end
            epoch.assign_add(1)
            step_in_epoch.assign(0)
            continue
        dataset = make_epoch_dataset(int(epoch)).take(steps_per_epoch).skip(done)
        model.fit(dataset, initial_epoch=int(epoch), epochs=int(epoch) + 1,
                  steps_per_epoch=steps_per_epoch - done, callbacks=all_callbacks,
                  shuffle=False, verbose=verbose)
    return int(model.optimizer.iterations)
