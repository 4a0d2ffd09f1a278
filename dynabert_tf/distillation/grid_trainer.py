"""The width x depth grid training step: every cell's loss, one gradient, one update.

    trainer = GridTrainer(student, teacher, width_mults=(1.0, 0.75, 0.5, 0.25),
                          teacher_width="full", lambda_hidden=0.1)          # DynaBERT_W
    trainer.compile(optimizer=optimization.create_optimizer(2e-5, total_steps))
    trainer.fit(dataset)                   # dataset yields (features dict, labels)

Stages (paper, section 3): DynaBERT_W distils the fixed full-size (rewired) teacher into
widths (1, .75, .5, .25) at depth 1 (`teacher_width="full"`, lambda_hidden 0.1); DynaBERT
distils DynaBERT_W into widths x depths (1, .75, .5), the teacher run at the student's width
(`teacher_width="same"`, lambda_hidden 1.0); `loss_mode="labels"` trains every cell on the
labels with no teacher (the final fine-tune, or a no-distillation baseline).

Hidden-size elasticity (`hidden_mults`, default (1.0,): off): every (width, depth) cell is
also trained at each hidden_mult; a cell at hidden_mult != 1 is keyed (w, d, h)
(`grid.cell_key`). Its hidden states [batch, seq, kept units] are matched to the SAME
leading units of the teacher's (after hidden rewiring, the most important ones); with
teacher_width="same" the teacher runs at the student's width and hidden size.

What one step computes, per batch:
  * the teacher (frozen, training=False, full depth) once per teacher width, outside the tape;
  * the student at every cell in one shared forward (`DynaBertTaskModel.call_grid`): the
    embeddings once for all widths, and per width the leading layers common to several
    depths once;
  * each distinct (student, teacher) hidden-state pair's MSE once, however many cells use it;
  * the sum of all cells' losses, whose gradient equals the sum of the per-cell gradients
    the official code accumulates: one backward pass per width, widths in turn (peak memory
    of one width, not of the grid), summed; one optimizer update.
"""

import functools

import keras
import tensorflow as tf

from dynabert_tf.core import grid as grid_lib
from dynabert_tf.distillation import losses
from dynabert_tf.distillation import relations as relations_lib
from dynabert_tf.layers.common import at_least_float32

LOSS_MODES = ("distill", "labels")
TEACHER_WIDTHS = ("same", "full")


class GridTrainer(keras.Model):
    """Trains `student` (a DynaBertTaskModel) on all (width, depth) cells at once.

    The losses come from the student's task head (`tasks/heads.py`), so one trainer serves
    classification, regression and span extraction.

    Args:
      student: DynaBertTaskModel being trained.
      teacher: DynaBertTaskModel with the same kind of head, frozen here
        (`trainable=False`); required for "distill",
        ignored by "labels".
      width_mults, depth_mults: the grid; cells run widths-major, largest first.
      loss_mode: "distill" (teacher logits + hidden states) or "labels" (labels only).
      lambda_logits, lambda_hidden: weights of the two distillation terms.
      teacher_width: "same" runs the teacher at each student width (the paper's stage 2);
        "full" runs it once at width 1 (stage 1, and the official code's stage 2).
      share_depth_prefix: run the grid through `call_grid`: embeddings computed once for all
        widths, leading layers once per width, and with them their dropout masks (one
        embedding mask per step for all cells, where the official code draws one per cell);
        False runs each cell separately (the official way).
      track_cell_losses: also report each cell's loss as metric `loss_<cell name>`.
      distill_objective: "dynabert" (hidden-state MSE), "minilm" (last-layer MiniLM relations
        instead) or "both" (`losses.distillation_loss`); the logits term is always kept.
      lambda_relation: weight of the relation term ("minilm", "both").
      relation_heads: MiniLM relation heads R (default: the teacher's attention heads); must
        divide every width's query/key/value columns (`relations.py` explains the choice).
      relations: relation names (`relations.RELATIONS`), default MiniLMv2's qq, kk, vv.
      hidden_mults: hidden-size multipliers (module doc); (1.0,) trains as without them.
    """

    def __init__(self, student, teacher=None, width_mults=(1.0,), depth_mults=(1.0,),
                 loss_mode="distill", lambda_logits=1.0, lambda_hidden=0.1,
                 teacher_width="same", share_depth_prefix=True,
                 track_cell_losses=False, distill_objective="dynabert", lambda_relation=1.0,
                 relation_heads=None, relations=relations_lib.MINILM_V2, hidden_mults=(1.0,),
                 **kwargs):
        super().__init__(**kwargs)
        if loss_mode not in LOSS_MODES:
            raise ValueError(f"unknown loss_mode {loss_mode!r}; expected one of {LOSS_MODES}")
        if teacher_width not in TEACHER_WIDTHS:
            raise ValueError(f"unknown teacher_width {teacher_width!r}; "
                             f"expected one of {TEACHER_WIDTHS}")
        if not width_mults or not depth_mults or not hidden_mults:
            raise ValueError("width_mults, depth_mults and hidden_mults must each hold at "
                             "least one value")
        if loss_mode == "distill":
            losses.check_lambdas(lambda_logits, lambda_hidden, distill_objective,
                                 lambda_relation)
            if teacher is None:
                raise ValueError('loss_mode="distill" needs a teacher')
            if teacher is student:
                raise ValueError("teacher and student must be different models")
            if teacher.bert_config.num_layers != student.bert_config.num_layers or \
                    teacher.bert_config.hidden_size != student.bert_config.hidden_size:
                raise ValueError("teacher and student must have the same num_layers and "
                                 "hidden_size (hidden states are matched layer by layer)")
            if teacher.head.kind != student.head.kind:
                raise ValueError(f"teacher has a {teacher.head.kind} head, the student a "
                                 f"{student.head.kind} head")
            teacher.trainable = False
        self.student = student
        self.teacher = teacher if loss_mode == "distill" else None
        self.width_mults = tuple(sorted({grid_lib.check_multiplier("width_mult", w)
                                         for w in width_mults}, reverse=True))
        self.depth_mults = tuple(sorted({grid_lib.check_multiplier("depth_mult", d)
                                         for d in depth_mults}, reverse=True))
        self.hidden_mults = tuple(sorted({grid_lib.check_multiplier("hidden_mult", h)
                                          for h in hidden_mults}, reverse=True))
        self.loss_mode = loss_mode
        self.lambda_logits = lambda_logits
        self.lambda_hidden = lambda_hidden
        self.teacher_width = teacher_width
        self.share_depth_prefix = share_depth_prefix
        self.cells = [grid_lib.cell_key(w, d, h) for h in self.hidden_mults
                      for w in self.width_mults for d in self.depth_mults]
        self.distill_objective = distill_objective
        self.lambda_relation = lambda_relation
        self.relations = relations_lib.check_relations(relations)
        self.needs_qkv = loss_mode == "distill" and distill_objective != "dynabert"
        self.relation_heads = None
        if self.needs_qkv:
            self.relation_heads = relation_heads or teacher.bert_config.num_heads
            for model, widths in ((student, self.width_mults), (teacher, self.teacher_widths())):
                cfg = model.bert_config
                grid_lib.check_relation_heads(
                    self.relation_heads, cfg.num_heads,
                    cfg.attention_head_dim or cfg.hidden_size // cfg.num_heads, widths)
        # A keras.optimizers.LossScaleOptimizer (mixed_float16) whose loss scale multiplies
        # the loss before each backward pass; its `apply` unscales. Set by the training loop;
        # `fit` uses the compiled optimizer when it is one (Keras wraps it under float16).
        self.scaling_optimizer = None
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.cell_trackers = {
            cell: keras.metrics.Mean(name="loss_" + grid_lib.cell_name(*cell))
            for cell in self.cells} if track_cell_losses else {}
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker, *self.cell_trackers.values()]

    def call(self, inputs, training=None):
        """The student's full-size head output."""
        return self.student(inputs, training=training)

    def teacher_widths(self):
        """Widths the teacher runs at in one step: each student width, or only 1.0."""
        return self.width_mults if self.teacher_width == "same" else (1.0,)

    def _teacher_keys(self):
        """(width_mult, hidden_mult) pairs the teacher runs at in one step."""
        hiddens = self.hidden_mults if self.teacher_width == "same" else (1.0,)
        return [(w, h) for h in hiddens for w in self.teacher_widths()]

    def teacher_outputs(self, features):
        """{(teacher width, teacher hidden_mult): teacher head outputs + hidden states at full
        depth}, gradient-free."""
        keep = (*self.teacher.head.output_names, "hidden_states",
                *("last_layer_qkv",) * self.needs_qkv)
        outputs = {}
        for width_mult, hidden_mult in self._teacher_keys():
            out = self.teacher(features, width_mult=width_mult, depth_mult=1.0, training=False,
                               return_dict=True, return_qkv=self.needs_qkv,
                               hidden_mult=hidden_mult)
            outputs[(width_mult, hidden_mult)] = tf.nest.map_structure(
                tf.stop_gradient, {name: out[name] for name in keep})
        return outputs

    def _teacher_for(self, width_mult, depth_mult, teacher_outputs, hidden_mult=1.0):
        """The entry of `teacher_outputs` that cell (width_mult, depth_mult, hidden_mult)
        learns from (`distillation/variants.py` overrides it with `teacher_outputs`)."""
        if self.teacher_width == "same":
            return teacher_outputs[(width_mult, hidden_mult)]
        return teacher_outputs[(1.0, 1.0)]

    def _student_outputs(self, features, training):
        """{cell: student outputs} for every cell."""
        if self.share_depth_prefix:
            return self.student.call_grid(features, width_mults=self.width_mults,
                                          depth_mults=self.depth_mults, training=training,
                                          return_qkv=self.needs_qkv,
                                          hidden_mults=self.hidden_mults)
        return {cell: self.student(features, width_mult=w, depth_mult=d, training=training,
                                   return_dict=True, return_qkv=self.needs_qkv, hidden_mult=h)
                for cell in self.cells for w, d, h in [grid_lib.cell_mults(cell)]}

    def cell_losses(self, features, labels, teacher_outputs=None, training=True):
        """{cell: scalar loss} for every cell (`grid.cell_key`), widths-major, largest first.

        Args:
          features: dict of int [batch, seq] inputs.
          labels: what the head's `label_loss` takes (unused by "distill").
          teacher_outputs: `teacher_outputs(features)` ("distill" only).
          training: dropout on for the student.
        """
        return self._losses_of(self._student_outputs(features, training), labels, teacher_outputs)

    def _losses_of(self, outputs, labels, teacher_outputs):
        """{cell: loss} of the student `outputs` ({cell: outputs}) of some cells."""
        num_layers = self.student.bert_config.num_layers
        head = self.student.head
        mse_cache = {}  # cells sharing a layer (or the embeddings) share its MSE term
        result = {}
        for cell, out in outputs.items():
            if self.loss_mode == "labels":
                result[cell] = head.label_loss(out, labels)
                continue
            width_mult, depth_mult, hidden_mult = grid_lib.cell_mults(cell)
            teacher_out = self._teacher_for(width_mult, depth_mult, teacher_outputs,
                                            hidden_mult)
            result[cell] = losses.distillation_loss(
                head, out, teacher_out, depth_mult, num_layers, self.lambda_logits,
                self.lambda_hidden, mse_cache=mse_cache, objective=self.distill_objective,
                lambda_relation=self.lambda_relation, relation_heads=self.relation_heads,
                relations=self.relations)
        return result

    def compute_gradients(self, features, labels):
        """The gradient of the sum of all cells' losses.

        Returns:
          (sum of the cells' losses, gradients matching `student.trainable_variables`,
          {cell: loss}).
        """
        teacher_outputs = self.teacher_outputs(features) if self.teacher is not None else None
        variables = self.student.trainable_variables
        if self.share_depth_prefix:
            results = [self._gradients_width_by_width(
                features, self.width_mults,
                lambda width_mult, width_input, hidden_mult=hidden_mult: self._width_gradients(
                    width_mult, features, labels, teacher_outputs, width_input, hidden_mult),
                hidden_mult) for hidden_mult in self.hidden_mults]
            if len(results) == 1:
                return results[0]
            return (tf.add_n([total for total, _, _ in results]),
                    [functools.reduce(_accumulate, per_variable)
                     for per_variable in zip(*(gradients for _, gradients, _ in results))],
                    {cell: loss for _, _, per_cell in results for cell, loss in per_cell.items()})
        with tf.GradientTape() as tape:
            per_cell = self.cell_losses(features, labels, teacher_outputs, training=True)
            total = tf.add_n(list(per_cell.values()))
            scaled = self._scaled(total)  # on the tape
        return total, tape.gradient(scaled, variables), per_cell

    def _scaled(self, loss):
        """`loss` times the loss scale of float16 training (module doc of `TrainingLoop`),
        else `loss`: the gradients come out scaled and the optimizer unscales them."""
        optimizer = self.scaling_optimizer or getattr(self, "optimizer", None)
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return optimizer.scale_loss(loss)
        return loss

    def _width_gradients(self, width_mult, features, labels, teacher_outputs, width_input,
                         hidden_mult=1.0):
        """One width's forward and backward on `width_input` (the output of `backbone.embed`
        at `hidden_mult`).

        Returns:
          (loss summed over its depths, [gradient per trainable variable or None], gradient
          to the embeddings, [loss per depth, in `depth_mults` order]).
        """
        variables = self.student.trainable_variables
        with tf.GradientTape() as tape:
            tape.watch(width_input["embeddings"])
            width_losses = self._losses_of(
                self.student.call_grid(features, (width_mult,), self.depth_mults,
                                       training=True, embedded=width_input,
                                       return_qkv=self.needs_qkv, hidden_mults=(hidden_mult,)),
                labels, teacher_outputs)
            total = tf.add_n(list(width_losses.values()))
            scaled = self._scaled(total)  # on the tape
        *gradients, to_embeddings = tape.gradient(scaled, [*variables, width_input["embeddings"]])
        return total, gradients, to_embeddings, [
            width_losses[grid_lib.cell_key(width_mult, d, hidden_mult)] for d in self.depth_mults]

    def _gradients_width_by_width(self, features, width_keys, run_width, hidden_mult=1.0):
        """Embeddings once; then each width's forward and backward in turn, the next width
        waiting for the last one's gradients, so that only one width's activations are held
        at a time (one backward pass through the whole grid would hold all of them; the
        official code holds one cell's). The widths' gradients with respect to the shared
        embeddings are summed and sent through the embeddings once.

        Args:
          width_keys: one key per width run this step, in order (a width multiplier, or a
            sampled width's slot).
          run_width: (key, width_input) -> `_width_gradients`' four results.
          hidden_mult: the hidden size every width of this call runs at (embedded at it).
        Returns:
          (sum of the losses, gradients matching `student.trainable_variables`,
          {`grid.cell_key(key, depth_mult, hidden_mult)`: loss}).
        """
        variables = self.student.trainable_variables
        with tf.GradientTape() as embedding_tape:
            embedded = self.student.backbone.embed(features, training=True,
                                                   hidden_mult=hidden_mult)
        per_cell, gradients, embedding_gradient, previous = {}, [None] * len(variables), None, []
        for key in width_keys:
            with tf.control_dependencies(previous):
                width_input = {**embedded, "embeddings": tf.identity(embedded["embeddings"])}
            total, width_gradients, to_embeddings, per_depth = run_width(key, width_input)
            gradients = list(map(_accumulate, gradients, width_gradients))
            # Summed in float32 (a mixed policy's embeddings are bfloat16 / float16).
            embedding_gradient = _accumulate(embedding_gradient,
                                             at_least_float32(to_embeddings))
            per_cell.update({grid_lib.cell_key(key, d, hidden_mult): loss
                             for d, loss in zip(self.depth_mults, per_depth)})
            previous = [total, *(g for g in width_gradients if g is not None)]
        from_embeddings = embedding_tape.gradient(
            embedded["embeddings"], variables,
            output_gradients=tf.cast(embedding_gradient, embedded["embeddings"].dtype))
        gradients = list(map(_accumulate, gradients, from_embeddings))
        return tf.add_n(list(per_cell.values())), gradients, per_cell

    def _update_metrics(self, total, per_cell):
        self.loss_tracker.update_state(total / len(per_cell))
        for cell, tracker in self.cell_trackers.items():
            tracker.update_state(per_cell[cell])
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        features, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        total, gradients, per_cell = self.compute_gradients(features, labels)
        # Weights no cell uses get no gradient (a span head leaves the pooler unused; a
        # single shallow cell skips layers): they are left out of the update, not zeroed.
        used = [(g, v) for g, v in zip(gradients, self.student.trainable_variables)
                if g is not None]
        self.optimizer.apply(*zip(*used))
        return self._update_metrics(total, per_cell)

    def test_step(self, data):
        features, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        teacher_outputs = self.teacher_outputs(features) if self.teacher is not None else None
        per_cell = self.cell_losses(features, labels, teacher_outputs, training=False)
        return self._update_metrics(tf.add_n(list(per_cell.values())), per_cell)


def _accumulate(total, gradient):
    """total + gradient, where None means no gradient (IndexedSlices kept when alone)."""
    if gradient is None:
        return total
    if total is None:
        return gradient
    return tf.convert_to_tensor(total) + tf.convert_to_tensor(gradient)
