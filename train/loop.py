"""The training loop of every stage: distributed, resumable bit for bit, stopped by a bad loss.

    loop = TrainingLoop(trainer, optimizer, runtime, state_dir, checkpoint_every=200)
    steps = loop.fit(make_epoch_dataset, epochs, steps_per_epoch)

`trainer` is a `GridTrainer` (its `compute_gradients` gives the grid's loss and gradients);
each step runs on every replica under `runtime.strategy` (train/runtime.py) with the loss
reduced over the global batch, and the optimizer all-reduces the gradients.

Every `checkpoint_every` steps and at each epoch end the student's weights, the optimizer
(with its step count), the dropout seed states and the position in the epoch go to a
`tf.train.CheckpointManager`. A restarted run restores them and skips the batches of the
current epoch it has trained on; each epoch's data order depends only on (seed, epoch), so
a killed run that resumes ends with the same weights as one that was never stopped.
A NaN or infinite loss stops the stage before anything more is saved: the last checkpoint,
from before the bad step, stays. A save that fails (a full disk) is one line naming the
checkpoint directory, not TensorFlow's op text; the `ckpt-N_temp` directory such a save leaves
is removed when the loop starts again and when it finishes.
"""

import math
import os
import re
import shutil

import keras
import tensorflow as tf

from dynabert_tf.core import files
from train.runtime import Runtime


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the stage stopped and kept its last good checkpoint."""


_TEMPORARY = re.compile(r"ckpt-\d+_temp")  # a sharded save's parts before they are merged


def seed_states(model):
    """The dropout layers' seed-generator states: not part of `model`'s checkpoint, but
    the next dropout masks depend on them."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def _scaled(gradient, weight):
    """`gradient` * `weight`, an embedding's sparse gradient kept sparse."""
    if isinstance(gradient, tf.IndexedSlices):
        return tf.IndexedSlices(gradient.values * weight, gradient.indices,
                                gradient.dense_shape)
    return gradient * weight


class TrainingLoop:
    """Trains `trainer.student` with `optimizer` under `runtime`, checkpointing to `state_dir`.

    Args:
      trainer: a GridTrainer (or anything with `student` and
        `compute_gradients(features, labels) -> (loss, gradients, {cell: loss})`), built
        in `runtime.scope()`.
      optimizer: a Keras optimizer built in `runtime.scope()`.
      runtime: train/runtime.py `Runtime` (default: one process).
      state_dir: checkpoints go to state_dir/checkpoints, TensorBoard logs to
        state_dir/logs (chief only).
      checkpoint_every: steps between checkpoints (and at every epoch end); 0: epoch ends only.
      verbose: progress display, as `model.fit` takes it ("auto", 0, 1, 2).
      on_step: optional callable(step, loss) after each step (tests use it to stop a run).
    """

    def __init__(self, trainer, optimizer, state_dir, runtime=None, checkpoint_every=200,
                 verbose="auto", on_step=None, summary_every=20):
        self.trainer, self.optimizer = trainer, optimizer
        self.runtime = runtime or Runtime.create("none")
        self.state_dir = state_dir
        self.checkpoint_every, self.summary_every = checkpoint_every, summary_every
        self.verbose = 1 if verbose == "auto" else int(verbose)
        self.on_step = on_step
        student = trainer.student
        # float16: the trainer scales each loss by the optimizer's loss scale before its
        # backward pass; `optimizer.apply` unscales, skips a step whose gradients overflowed
        # and adapts the scale, which the checkpoint holds with the optimizer's variables.
        trainer.scaling_optimizer = (optimizer if isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer) else None)
        with self.runtime.scope():
            optimizer.build(student.trainable_variables)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False,
                                         name="step_in_epoch")
        self.state = tf.train.Checkpoint(weights=student, optimizer=optimizer,
                                         dropout_seeds=seed_states(student),
                                         epoch=self.epoch, step_in_epoch=self.step_in_epoch)
        self.checkpoint_dir = os.path.join(state_dir, "checkpoints")
        self.manager = tf.train.CheckpointManager(
            self.state, self.runtime.private_dir(self.checkpoint_dir), max_to_keep=2)
        self._train_step = self._make_train_step()

    @property
    def step(self):
        return int(self.optimizer.iterations.numpy())

    def _make_train_step(self):
        trainer, optimizer, strategy = self.trainer, self.optimizer, self.runtime.strategy
        variables = trainer.student.trainable_variables

        def replica_step(features, labels, weight):
            loss, gradients, _ = trainer.compute_gradients(features, labels)
            # Weights no cell uses get no gradient (a span head leaves the pooler unused; a
            # single shallow cell skips layers): left out of the update, not zeroed.
            used = [(_scaled(g, weight), v) for g, v in zip(gradients, variables)
                    if g is not None]
            optimizer.apply(*zip(*used))
            return loss * weight

        @tf.function(reduce_retracing=True)  # batches padded to their longest example
        def train_step(batch):
            per_replica = strategy.run(replica_step, args=batch)
            return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

        return train_step

    def restore(self):
        """Restores the latest checkpoint (the chief's) if there is one; True if it did."""
        latest = tf.train.latest_checkpoint(self.checkpoint_dir)
        if not latest:
            return False
        self.state.restore(latest).assert_existing_objects_matched()
        return True

    def _save(self):
        try:
            self.manager.save(checkpoint_number=self.step)
        except tf.errors.OpError as e:
            raise files.write_error(e, f"a checkpoint in {self.checkpoint_dir}") from None
        self.runtime.discard_private(self.checkpoint_dir)

    def _remove_temporaries(self):
        """Removes the `ckpt-N_temp` directories a failed or interrupted save left."""
        directory = self.runtime.private_dir(self.checkpoint_dir)
        if not os.path.isdir(directory):
            return
        for name in os.listdir(directory):
            if _TEMPORARY.fullmatch(name):
                shutil.rmtree(os.path.join(directory, name), ignore_errors=True)

    def fit(self, make_epoch_dataset, epochs, steps_per_epoch):
        """Trains for `epochs` epochs of `steps_per_epoch` batches, resuming if cut off.

        Args:
          make_epoch_dataset: epoch index -> dataset of global batches (features, labels),
            in the same order for the same epoch on every call and every worker.
        Returns:
          The optimizer's final step count.
        """
        self._remove_temporaries()
        if self.restore():
            self._print(f"resuming from {tf.train.latest_checkpoint(self.checkpoint_dir)}: "
                        f"epoch {int(self.epoch)}, step {int(self.step_in_epoch)} of "
                        f"{steps_per_epoch}")
        writer = (tf.summary.create_file_writer(os.path.join(self.state_dir, "logs", "steps"))
                  if self.runtime.is_chief else None)
        while int(self.epoch) < epochs:
            done = int(self.step_in_epoch)
            if done < steps_per_epoch:
                self._run_epoch(make_epoch_dataset, steps_per_epoch, done, epochs, writer)
            self.epoch.assign_add(1)
            self.step_in_epoch.assign(0)
            self._save()
        self._remove_temporaries()
        return self.step

    def _run_epoch(self, make_epoch_dataset, steps_per_epoch, done, epochs, writer):
        epoch = int(self.epoch)
        dataset = self.runtime.distribute(
            lambda: make_epoch_dataset(epoch).take(steps_per_epoch).skip(done))
        progress = keras.utils.Progbar(steps_per_epoch, verbose=self.verbose,
                                       stateful_metrics=["loss"])
        if self.verbose and self.runtime.is_chief:
            print(f"Epoch {epoch + 1}/{epochs}")
        progress_shown = self.verbose and self.runtime.is_chief
        total, count = 0.0, 0
        for batch in dataset:
            loss = float(self._train_step(batch)) / len(self.trainer.cells)
            if not math.isfinite(loss):
                raise NonFiniteLoss(
                    f"the loss is {loss} at step {self.step}; the stage stopped, its last "
                    f"checkpoint (step {self.manager.latest_checkpoint or 'none'}) is kept — "
                    f"lower --learning_rate or check the data")
            self.step_in_epoch.assign_add(1)
            total, count = total + loss, count + 1
            if writer is not None and self.step % self.summary_every == 0:
                self._summaries(writer, loss)
            if progress_shown:
                progress.update(done + count, [("loss", total / count)])
            if self.on_step is not None:
                self.on_step(self.step, loss)
            if self.checkpoint_every and self.step % self.checkpoint_every == 0:
                self._save()
        if writer is not None and count:
            with writer.as_default(step=self.step):
                tf.summary.scalar("epoch_loss", total / count)
            writer.flush()

    def _summaries(self, writer, loss):
        learning_rate = self.optimizer.learning_rate
        with writer.as_default(step=self.step):
            tf.summary.scalar("loss", loss)
            tf.summary.scalar("learning_rate", learning_rate(self.step)
                              if callable(learning_rate) else learning_rate)
        writer.flush()

    def _print(self, text):
        if self.runtime.is_chief:
            print(text)
