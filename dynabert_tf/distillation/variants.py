"""The paper's other ways of training the grid (its ablations), as GridTrainer variants.

    InplaceGridTrainer       Table 7: inplace distillation. No fixed teacher: the widest
                             sub-network learns the labels and teaches the narrower widths
                             in the same step (Yu & Huang 2019).
    SlimmableGridTrainer     Table 8 "US": universally slimmable training. Each step trains
                             the largest and the smallest width and n - 2 widths drawn at
                             random from the range between them (the sandwich rule).
    DepthTeacherGridTrainer  Table 6: depth first. A depth-adaptive DynaBERT_D teaches every
                             cell from its sub-network at the cell's depth (full width).

Progressive rewiring (Table 8 "PR") changes the stage, not the step: `train/stages.py`.
Every variant keeps `GridTrainer.compute_gradients`' contract, so the training loop
(`train/loop.py`) runs them unchanged.
"""

import functools
import types

import tensorflow as tf

from dynabert_tf.distillation import losses
from dynabert_tf.distillation.grid_trainer import GridTrainer
from dynabert_tf.core import grid as grid_lib


def _targets(head, outputs):
    """The outputs a student cell learns from (head outputs, hidden states), gradient-free."""
    keep = (*head.output_names, "hidden_states")
    return tf.nest.map_structure(tf.stop_gradient, {name: outputs[name] for name in keep})


class InplaceGridTrainer(GridTrainer):
    """Inplace distillation (paper Table 7), in place of the fixed teacher of DynaBERT_W.

    The widest width at full depth is trained on the labels (the head's `label_loss`); every
    other cell distils from that widest sub-network's outputs of the same step (eq. 2: the
    head's output term and the hidden-state MSE, weighted by lambda_logits, lambda_hidden),
    taken through `tf.stop_gradient`: the narrower widths move towards the widest, never the
    widest towards them.

    Args:
      As GridTrainer's; `teacher`, `loss_mode` and `teacher_width` are not used (there is
      no fixed teacher). `depth_mults` must hold 1.0.
    """

    def __init__(self, student, teacher=None, width_mults=(1.0,), depth_mults=(1.0,),
                 loss_mode=None, lambda_logits=1.0, lambda_hidden=0.1, teacher_width=None,
                 **kwargs):
        del teacher, loss_mode, teacher_width  # the widest sub-network is the teacher
        losses.check_lambdas(lambda_logits, lambda_hidden)
        super().__init__(student, None, width_mults, depth_mults, loss_mode="labels",
                         lambda_logits=lambda_logits, lambda_hidden=lambda_hidden, **kwargs)
        if 1.0 not in self.depth_mults:
            raise ValueError("inplace distillation needs depth_mult 1.0: the widest "
                             "full-depth sub-network is the teacher")
        self.widest = (self.width_mults[0], 1.0)
        self._step_state = types.SimpleNamespace(widest_targets=None)  # untracked by Keras

    def _losses_of(self, outputs, labels, teacher_outputs):
        """{cell: loss}. Cells come widths-major, largest first (all at once, or one width
        per call), so the widest cell's outputs are seen before any other cell needs them."""
        head, num_layers = self.student.head, self.student.bert_config.num_layers
        if self.widest in outputs:
            self._step_state.widest_targets = _targets(head, outputs[self.widest])
        mse_cache, result = {}, {}
        for (width_mult, depth_mult), out in outputs.items():
            if (width_mult, depth_mult) == self.widest:
                result[self.widest] = head.label_loss(out, labels)
            else:
                result[(width_mult, depth_mult)] = losses.distillation_loss(
                    head, out, self._step_state.widest_targets, depth_mult, num_layers,
                    self.lambda_logits, self.lambda_hidden, mse_cache=mse_cache)
        return result


def sample_head_counts(seed, step, num_heads, width_range, count):
    """The head counts one universally slimmable step trains, int32 [count]:
    [largest, smallest, then count - 2 random ones].

    A random width m is drawn uniformly from [smallest, largest] by a stateless generator
    seeded (seed, step) and keeps round(m * num_heads) heads (halves up, as `grid.num_kept`),
    clipped to the range's head counts. Same (seed, step), same draw: a resumed run repeats
    the uninterrupted one.

    Args:
      seed: int; step: int scalar (tensor or Python), the optimizer's step count.
      width_range: (smallest, largest) width multipliers.
    """
    low, high = (grid_lib.num_kept(num_heads, w) for w in width_range)
    seeds = tf.stack([tf.constant(seed, tf.int64), tf.cast(step, tf.int64)])
    mults = tf.random.stateless_uniform([count - 2], seeds, minval=width_range[0],
                                        maxval=width_range[1], dtype=tf.float64)
    random = tf.cast(tf.floor(mults * num_heads + 0.5), tf.int32)
    return tf.concat([[high, low], tf.clip_by_value(random, low, high)], axis=0)


class SlimmableGridTrainer(GridTrainer):
    """Universally slimmable training (paper Table 8 "US"; Yu & Huang 2019, sandwich rule).

    Each step trains len(width_mults) widths at every depth: the largest and the smallest of
    `width_mults` and len(width_mults) - 2 random ones between them (`sample_head_counts`);
    the list's other values are not used. A random width keeps k whole heads and
    round(k / num_heads * d_ff) neurons: the multiplier k / num_heads.

    Random widths are tensors, not Python floats: each random slot is a `tf.switch_case` over
    the admissible widths (one per head count in the range), so the training step is traced
    once, not once per draw; only the drawn branch runs. Each width's forward and backward is
    a tf.function of its own, traced once per width for all slots and branches. A branch's
    gradients are dense (all branches return one structure).

    Args:
      As GridTrainer's; the teacher runs at full width (`teacher_width` is not used).
      The draw is seeded by (seed, step): `use_sampler`.
    """

    def __init__(self, student, teacher=None, width_mults=(1.0, 0.25), depth_mults=(1.0,),
                 teacher_width=None, **kwargs):
        del teacher_width
        if len(set(width_mults)) < 2:
            raise ValueError(f"universally slimmable training needs two widths or more (the "
                             f"smallest and the largest), got {tuple(width_mults)}")
        super().__init__(student, teacher, (min(width_mults), max(width_mults)), depth_mults,
                         teacher_width="full", **kwargs)
        self.width_range = (self.width_mults[1], self.width_mults[0])  # (smallest, largest)
        self.widths_per_step = len(set(width_mults))
        num_heads = student.bert_config.num_heads
        self.low_heads = grid_lib.num_kept(num_heads, self.width_range[0])
        # The random slots' widths, one per head count of the range.
        self.admissible = tuple(k / num_heads for k in range(
            self.low_heads, grid_lib.num_kept(num_heads, self.width_range[1]) + 1))
        self.cells = [(slot, d) for slot in range(self.widths_per_step)
                      for d in self.depth_mults]  # one per slot: the loop averages over them
        self.seed, self._step_counter = 0, None
        self._traced = types.SimpleNamespace(functions={})  # untracked by Keras

    def use_sampler(self, step_counter, seed):
        """Draws from (seed, `step_counter`), a scalar int variable (the training loop's
        `optimizer.iterations`); default (0, the compiled optimizer's step count).
        `seed`: int in [0, 2**63)."""
        self.seed = int(seed)
        self._step_counter = lambda: step_counter  # a closure: Keras does not track it

    def _step(self):
        return self._step_counter() if self._step_counter else self.optimizer.iterations

    def step_head_counts(self):
        """int32 [widths_per_step]: the head counts of this step's widths."""
        return sample_head_counts(self.seed, self._step(), self.student.bert_config.num_heads,
                                  self.width_range, self.widths_per_step)

    def _width_function(self, width_mult):
        """`_width_gradients` at `width_mult` as a tf.function of its own, so that a width is
        traced once however many slots (and `switch_case` branches) call it."""
        functions = self._traced.functions
        if width_mult not in functions:
            functions[width_mult] = tf.function(
                functools.partial(self._width_gradients, width_mult), reduce_retracing=True)
        return functions[width_mult]

    def _random_width_gradients(self, head_count, *args):
        """`_width_gradients` of the admissible width with `head_count` heads (a tensor)."""
        variables = self.student.trainable_variables
        unused = {}  # width -> which variables got no gradient (known while tracing)

        def branch(width_mult):
            total, gradients, to_embeddings, per_depth = self._width_function(width_mult)(*args)
            unused[width_mult] = [g is None for g in gradients]
            dense = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                     for g, v in zip(gradients, variables)]
            return total, dense, to_embeddings, per_depth

        total, gradients, to_embeddings, per_depth = tf.switch_case(
            head_count - self.low_heads,
            [functools.partial(branch, w) for w in self.admissible])
        # A variable no width uses (a span head's pooler) stays out of the update.
        gradients = [None if all(u[i] for u in unused.values()) else g
                     for i, g in enumerate(gradients)]
        return total, gradients, to_embeddings, per_depth

    def compute_gradients(self, features, labels):
        """As `GridTrainer.compute_gradients`, over this step's sampled widths; {cell: loss}
        is keyed (slot, depth_mult), slot 0 the largest width, 1 the smallest."""
        teacher_outputs = self.teacher_outputs(features) if self.teacher is not None else None
        head_counts = self.step_head_counts()

        def slot_gradients(slot, width_input):
            args = (features, labels, teacher_outputs, width_input)
            if slot < 2:
                return self._width_function(self.width_range[1 - slot])(*args)
            return self._random_width_gradients(head_counts[slot], *args)

        return self._gradients_width_by_width(features, range(self.widths_per_step),
                                              slot_gradients)


def _at_full_depth(outputs, num_layers, depth_mult):
    """A depth_mult sub-network's targets laid out as a full-depth network's: hidden state
    i + 1 of kept layer i, the embeddings at 0, None where a layer did not run (never read:
    a cell at depth_mult matches exactly the kept layers)."""
    states = [None] * (num_layers + 1)
    kept = grid_lib.kept_layers(num_layers, depth_mult)
    for position, state in zip((-1, *kept), outputs["hidden_states"]):
        states[position + 1] = state
    return {**outputs, "hidden_states": states}


class DepthTeacherGridTrainer(GridTrainer):
    """Distillation from a depth-adaptive teacher (paper Table 6: DynaBERT_D, trained first,
    is the teacher assistant of the width x depth stage).

    Each cell (w, d) learns from the teacher's sub-network at full width and the same depth
    d: the same kept layers, hidden state for hidden state, as DynaBERT_W in the width-first
    order teaches each cell at its own width. The teacher runs once per depth per step.

    Args: as GridTrainer ("distill" mode); `teacher_width` is not used.
    """

    def teacher_outputs(self, features):
        """{depth_mult: the teacher's targets at full width and that depth}, gradient-free,
        hidden states placed at their layers' full-depth positions (`_at_full_depth`)."""
        num_layers = self.teacher.bert_config.num_layers
        by_depth = self.teacher.call_depths(features, 1.0, self.depth_mults, training=False)
        return {d: _at_full_depth(_targets(self.teacher.head, out), num_layers, d)
                for d, out in by_depth.items()}

    def _teacher_for(self, width_mult, depth_mult, teacher_outputs, hidden_mult=1.0):
        return teacher_outputs[depth_mult]
