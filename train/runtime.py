"""Where a run's training happens: one process, several local devices, or several workers.

    runtime = Runtime.create("multi_worker")    # reads TF_CONFIG, the standard way
    with runtime.scope():
        model = ...; optimizer = ...            # variables mirrored on every replica
    dataset = runtime.distribute(make_batches)  # each replica gets its rows of each batch
    if runtime.is_chief: write outputs
    runtime.barrier()                           # nobody reads a stage before the chief wrote it

Every worker runs the same program in lockstep (model building, checkpoint saves and
training steps are collective); only the chief writes stage outputs, summaries and grids.
Multi-worker runs need a WORKDIR every worker sees at the same path (a shared filesystem):
the non-chief workers read the chief's stage outputs and checkpoints.
"""

import functools
import os
import shutil

import tensorflow as tf

from train.cluster import DISTRIBUTIONS, cluster_spec_error


class Runtime:
    """A tf.distribute strategy and what the training code needs to know about it."""

    def __init__(self, strategy, kind="none"):
        self.strategy = strategy
        self.kind = kind

    @classmethod
    def create(cls, distribution="none", devices=None):
        """The runtime of `--distribution`.

        Args:
          distribution: "none" (the default strategy), "mirrored" (every local GPU, or
            `devices`), "multi_worker" (collective all-reduce between the TF_CONFIG workers).
          devices: the replicas' devices for "mirrored" (default: every visible GPU, else
            the CPU).
        """
        if distribution == "none":
            return cls(tf.distribute.get_strategy(), distribution)
        if distribution == "mirrored":
            return cls(tf.distribute.MirroredStrategy(devices), distribution)
        if distribution == "multi_worker":
            error = cluster_spec_error(os.environ.get("TF_CONFIG"))
            if error:
                raise ValueError(error)
            # RING: the collective implementation that also works between CPU-only workers.
            options = tf.distribute.experimental.CommunicationOptions(
                implementation=tf.distribute.experimental.CommunicationImplementation.RING)
            return cls(tf.distribute.MultiWorkerMirroredStrategy(
                communication_options=options), distribution)
        raise ValueError(f"unknown distribution {distribution!r}; expected one of "
                         f"{', '.join(DISTRIBUTIONS)}")

    @property
    def num_replicas(self):
        return self.strategy.num_replicas_in_sync

    @property
    def worker_id(self):
        """("chief" | "worker", index) of this process; ("chief", 0) without a cluster."""
        resolver = getattr(self.strategy, "cluster_resolver", None)
        if resolver is None or not resolver.task_type:
            return "chief", 0
        return resolver.task_type, resolver.task_id

    @property
    def is_chief(self):
        """The one process that writes: the chief, or worker 0 of a cluster without one."""
        task_type, task_id = self.worker_id
        if task_type == "chief":
            return True
        has_chief = "chief" in self.strategy.cluster_resolver.cluster_spec().as_dict()
        return task_type == "worker" and task_id == 0 and not has_chief

    def scope(self):
        """Model and optimizer variables created here are mirrored on every replica."""
        return self.strategy.scope()

    def barrier(self):
        """Returns once every worker got here (a collective sum); a no-op in one process."""
        if self.kind == "multi_worker":
            self._collective_sum()

    @functools.cached_property
    def _collective_sum(self):
        strategy = self.strategy
        return tf.function(lambda: strategy.reduce(
            tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None))

    def private_dir(self, path):
        """`path` for the chief; a scratch dir under it for the other workers, whose copies
        of collective writes (checkpoints) must go somewhere and are thrown away."""
        if self.is_chief:
            return path
        task_type, task_id = self.worker_id
        return os.path.join(path, f".{task_type}_{task_id}")

    def discard_private(self, path):
        if not self.is_chief:
            shutil.rmtree(self.private_dir(path), ignore_errors=True)

    def distribute(self, make_batches):
        """Splits each global batch between the replicas.

        Args:
          make_batches: () -> dataset of global batches, (features, labels) of [batch, ...]
            tensors; called once per input pipeline, so every worker reads the same batches
            in the same order with the same padding.
        Returns:
          A (distributed) dataset of (features, labels, weight) per replica: each replica
          keeps a contiguous slice of the batch's rows, so a step sees exactly the batch one
          process would see, and `weight` = its rows / the batch's rows. Scaling a
          replica's mean loss by `weight` makes the summed gradients those of the global
          batch's mean loss, whatever the number of replicas. A replica whose slice would be
          empty (a last batch smaller than the replica count) gets one row with weight 0.
        """
        if self.kind == "none":
            return make_batches().map(lambda features, labels: (features, labels, 1.0))
        replicas = self.num_replicas

        def dataset_fn(context):
            per_pipeline = replicas // context.num_input_pipelines
            first = context.input_pipeline_id * per_pipeline

            def replica_slices(features, labels):
                rows = tf.shape(tf.nest.flatten(features)[0])[0]
                slices = None
                for replica in range(first, first + per_pipeline):
                    start, stop = replica * rows // replicas, (replica + 1) * rows // replicas
                    weight = tf.cast(stop - start, tf.float32) / tf.cast(rows, tf.float32)
                    start = tf.where(stop > start, start, 0)
                    stop = tf.maximum(stop, start + 1)
                    part = tf.data.Dataset.from_tensors(
                        (tf.nest.map_structure(lambda t: t[start:stop], features),
                         tf.nest.map_structure(lambda t: t[start:stop], labels), weight))
                    slices = part if slices is None else slices.concatenate(part)
                return slices

            return make_batches().flat_map(replica_slices)

        options = tf.distribute.InputOptions(experimental_fetch_to_device=False)
        return self.strategy.distribute_datasets_from_function(dataset_fn, options)
