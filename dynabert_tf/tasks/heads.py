"""Task heads: one interface for every task the elastic backbone serves.

A head is a Keras layer on the backbone's outputs that also owns everything task-specific
the pipeline needs, so no other module asks "which task is this?":

    outputs = head(backbone_outputs)                 # {name: tensor} for `head.output_names`
    head.label_loss(outputs, labels)                 # training on the original labels
    head.distillation_loss(student_outputs, teacher_outputs)   # the output term of eq. 2
    head.importance_loss(outputs, labels)            # what Taylor rewiring differentiates

Checkpoint names and `config.json` fields of each head kind live with the other Hugging Face
knowledge in `presets/hf_tensors.py` and `presets/hf_config.py`.

Implementations: `ClassificationHead` (softmax over classes on the pooled output),
`RegressionHead` (one score on the pooled output), `SpanHead` (start/end logits per token).
Metrics live in `dynabert_tf.tasks.scoring`, keyed by the same `kind`.
"""

import keras
from keras import ops

from dynabert_tf.layers import weight_layout
from dynabert_tf.layers.common import at_least_float32, initializer


def soft_cross_entropy(student_logits, teacher_logits):
    """Mean over the batch of -sum_c softmax(teacher)_c * log_softmax(student)_c.

    Args:
      student_logits, teacher_logits: [batch, classes] (or [batch, seq] for span positions).
    Returns:
      scalar. (The official code takes `.mean()` over batch AND classes, i.e. this divided by
      the number of classes; we keep the textbook per-example sum.)
    """
    teacher_probs = ops.softmax(at_least_float32(teacher_logits), axis=-1)
    student_log_probs = ops.log_softmax(at_least_float32(student_logits), axis=-1)
    return ops.mean(-ops.sum(teacher_probs * student_log_probs, axis=-1))


class TaskHead(keras.layers.Layer):
    """Base class: a dense layer on the backbone outputs plus the task's losses.

    Subclasses set `kind`, `output_names`, `dense_name` and implement `call`, `label_loss`,
    `distillation_loss`.
    """

    kind = None
    output_names = ("logits",)
    dense_name = None  # the dense layer's name (Hugging Face's, so weight paths read alike)

    def __init__(self, units, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dropout_rate = dropout
        self.dropout = keras.layers.Dropout(dropout)
        self.dense = keras.layers.Dense(units, kernel_initializer=initializer(),
                                        name=self.dense_name)

    def build(self, hidden_size):
        self.dense.build((None, hidden_size))
        self.built = True

    def _apply_dense(self, x):
        """The dense layer on x [..., hidden]; a sub-network of a smaller hidden size (its
        static last dimension) uses the kernel's leading input rows. A mixed policy's 16-bit
        result is cast to float32 (Keras' advice for a model's outputs; the losses read
        float32 logits)."""
        hidden = x.shape[-1]
        if hidden is None or hidden == self.dense.kernel.shape[0]:
            return at_least_float32(self.dense(x))
        kernel = weight_layout.sliced(self.dense, "kernel", None, hidden,
                                      weight_layout.HEAD_HIDDEN_AXES)
        return at_least_float32(ops.matmul(x, ops.cast(kernel, x.dtype))
                                + ops.cast(self.dense.bias, x.dtype))

    def importance_loss(self, outputs, labels):
        """The loss whose gradients score heads and neurons (rewiring): the label loss."""
        return self.label_loss(outputs, labels)

    def get_config(self):
        return {**super().get_config(), "dropout": self.dropout_rate}


class PooledHead(TaskHead):
    """Dropout + dense on the pooled ([CLS]) output -> `logits` [batch, units]."""

    dense_name = "classifier"

    def call(self, backbone_outputs, training=None):
        pooled = self.dropout(backbone_outputs["pooled_output"], training=training)
        return {"logits": self._apply_dense(pooled)}


@keras.saving.register_keras_serializable(package="dynabert_tf")
class ClassificationHead(PooledHead):
    """`logits` [batch, num_classes] on the pooled output."""

    kind = "classification"

    def __init__(self, num_classes, dropout=0.1, **kwargs):
        if num_classes < 2:
            raise ValueError(f"a classification head needs >= 2 classes, got {num_classes}")
        super().__init__(num_classes, dropout, **kwargs)
        self.num_classes = num_classes

    def label_loss(self, outputs, labels):
        """Mean sparse cross-entropy; labels: int [batch] class ids."""
        return ops.mean(ops.sparse_categorical_crossentropy(labels, outputs["logits"],
                                                            from_logits=True))

    def distillation_loss(self, student_outputs, teacher_outputs):
        return soft_cross_entropy(student_outputs["logits"], teacher_outputs["logits"])

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="dynabert_tf")
class RegressionHead(PooledHead):
    """`logits` [batch, 1] on the pooled output: one score per example."""

    kind = "regression"

    def __init__(self, dropout=0.1, **kwargs):
        super().__init__(1, dropout, **kwargs)
        self.num_classes = 1

    def label_loss(self, outputs, labels):
        """Mean squared error; labels: float [batch] targets."""
        predictions = ops.reshape(outputs["logits"], (-1,))
        targets = ops.cast(ops.reshape(labels, (-1,)), predictions.dtype)
        return ops.mean(ops.square(predictions - targets))

    def distillation_loss(self, student_outputs, teacher_outputs):
        """MSE between the student's and the teacher's scores."""
        return ops.mean(ops.square(ops.reshape(student_outputs["logits"], (-1,))
                                   - ops.reshape(teacher_outputs["logits"], (-1,))))



@keras.saving.register_keras_serializable(package="dynabert_tf")
class SpanHead(TaskHead):
    """Dense(2) on every token -> `start_logits`, `end_logits` [batch, seq] (BERT for SQuAD).

    Padding positions get a large negative logit, so no span starts or ends there.
    """

    kind = "span"
    output_names = ("start_logits", "end_logits")
    dense_name = "qa_outputs"

    def __init__(self, dropout=0.0, **kwargs):
        super().__init__(2, dropout, **kwargs)

    def build(self, hidden_size):
        self.dense.build((None, None, hidden_size))
        self.built = True

    def call(self, backbone_outputs, training=None):
        sequence = self.dropout(backbone_outputs["sequence_output"], training=training)
        logits = self._apply_dense(sequence)
        return {"start_logits": logits[..., 0], "end_logits": logits[..., 1]}

    def label_loss(self, outputs, labels):
        """Mean of the start and end position cross-entropies.

        labels: {"start_positions", "end_positions"}: int [batch] token indices (0, the
        [CLS] token, when the window holds no answer).
        """
        loss = 0.0
        for name in ("start", "end"):
            loss += ops.mean(ops.sparse_categorical_crossentropy(
                labels[f"{name}_positions"], outputs[f"{name}_logits"], from_logits=True))
        return loss / 2.0

    def distillation_loss(self, student_outputs, teacher_outputs):
        """Soft cross-entropy on the start and on the end logits, averaged."""
        return (soft_cross_entropy(student_outputs["start_logits"],
                                   teacher_outputs["start_logits"])
                + soft_cross_entropy(student_outputs["end_logits"],
                                     teacher_outputs["end_logits"])) / 2.0


HEADS = {head.kind: head for head in (ClassificationHead, RegressionHead, SpanHead)}


def make_head(kind, num_classes=None, dropout=0.1):
    """A fresh head of `kind` ("classification", "regression" or "span")."""
    if kind == "classification":
        return ClassificationHead(num_classes, dropout=dropout, name="head")
    if kind == "regression":
        return RegressionHead(dropout=dropout, name="head")
    if kind == "span":
        return SpanHead(name="head")
    raise ValueError(f"unknown head kind {kind!r}; expected one of {', '.join(HEADS)}")

