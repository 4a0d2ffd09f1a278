"""The elastic encoder: width and depth are call arguments, never model state.

    backbone = DynaBertBackbone.from_config_object(BertConfig(...))
    outputs = backbone(inputs, width_mult=0.5, depth_mult=0.75)
    outputs = backbone(inputs, subnetwork=LayerwiseConfig(...))   # per-layer sizes


`inputs` is a dict of int32 [batch, seq] tensors: `token_ids`, `segment_ids`, `padding_mask`
(1 for tokens, 0 for padding), the names keras-hub uses.

An optional third multiplier, `hidden_mult`, keeps the leading `grid.num_kept(hidden_size,
hidden_mult)` units of the residual stream: embedding columns, every kernel's hidden axis,
output biases, LayerNorms (statistics over the kept units) and the pooler; head_dim stays.
"""

import keras
from keras import ops

from dynabert_tf.core import grid as grid_lib
from dynabert_tf.elastic import layerwise
from dynabert_tf.layers import weight_layout
from dynabert_tf.layers.embeddings import Embeddings
from dynabert_tf.layers.transformer_layer import TransformerLayer
from dynabert_tf.models import call_checks
from dynabert_tf.models import config as model_config
from dynabert_tf.presets import loader as preset_loader


check_cell_arguments = call_checks.check_cell_arguments  # the task model's __call__ uses it


@keras.saving.register_keras_serializable(package="dynabert_tf")
class DynaBertBackbone(keras.Model):
    """Post-LN BERT encoder that runs any (width_mult, depth_mult) sub-network.

    The constructor takes the fields of `models.config.BertConfig` as keyword arguments; with
    `layer_num_heads` / `layer_intermediate_sizes` each layer has its own size (a standalone
    per-layer sub-network), and a width keeps that share of each layer's own heads / neurons.
    """

    def __init__(self, vocab_size=30522, hidden_size=768, num_layers=12, num_heads=12,
                 intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2,
                 hidden_dropout=0.1, attention_dropout=0.1, layer_norm_epsilon=1e-12,
                 hidden_act="gelu", attention_head_dim=None, model_type="bert",
                 position_offset=0, layer_num_heads=None, layer_intermediate_sizes=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.bert_config = model_config.BertConfig(
            vocab_size=vocab_size, hidden_size=hidden_size, num_layers=num_layers,
            num_heads=num_heads, intermediate_size=intermediate_size,
            max_position_embeddings=max_position_embeddings, type_vocab_size=type_vocab_size,
            hidden_dropout=hidden_dropout, attention_dropout=attention_dropout,
            layer_norm_epsilon=layer_norm_epsilon, hidden_act=hidden_act,
            attention_head_dim=attention_head_dim, model_type=model_type,
            position_offset=position_offset, layer_num_heads=layer_num_heads,
            layer_intermediate_sizes=layer_intermediate_sizes)
        cfg = self.bert_config
        self.embeddings = Embeddings(
            vocab_size, hidden_size, max_position_embeddings, type_vocab_size, hidden_dropout,
            layer_norm_epsilon, position_offset=position_offset, name="embeddings")
        self.transformer_layers = [
            TransformerLayer(hidden_size, heads, neurons, hidden_act, hidden_dropout,
                             attention_dropout, layer_norm_epsilon,
                             head_dim=None if heads * cfg.head_dim == hidden_size
                             else cfg.head_dim, name=f"transformer_layer_{i}")
            for i, (heads, neurons) in enumerate(zip(cfg.heads_per_layer,
                                                     cfg.intermediate_sizes_per_layer))]
        self.pooler = keras.layers.Dense(hidden_size, activation="tanh",
                                         kernel_initializer=keras.initializers.TruncatedNormal(
                                             stddev=0.02), name="pooler")
        self.build()

    @classmethod
    def from_config_object(cls, bert_config, **kwargs):
        return cls(**bert_config.to_dict(), **kwargs)

    def build(self, input_shape=None):
        self.embeddings.build()
        for layer in self.transformer_layers:
            layer.build((None, None, self.bert_config.hidden_size))
        self.pooler.build((None, self.bert_config.hidden_size))
        self.built = True

    def __call__(self, *args, **kwargs):
        check_cell_arguments(kwargs, self.bert_config)
        return super().__call__(*args, **kwargs)

    def call(self, inputs, width_mult=1.0, depth_mult=1.0, head_mask=None, training=None,
             return_qkv=False, subnetwork=None, hidden_mult=1.0):
        """Runs the (width_mult, depth_mult[, hidden_mult]) sub-network, or the per-layer
        `subnetwork`.

        Args:
          inputs: dict of int [batch, seq] `token_ids`, `segment_ids`, `padding_mask`.
          width_mult: Python float in (0, 1]; keeps `grid.num_kept` heads and FFN neurons.
          depth_mult: Python float in (0, 1]; runs the layers `grid.kept_layers` lists.
          head_mask: optional [num_layers, num_heads] float multiplier of each head's output
            (ones, differentiated, give head importance).
          return_qkv: Python bool; also return `last_layer_qkv` (relation distillation).
          subnetwork: optional `elastic.layerwise.LayerwiseConfig` run instead of a grid
            cell (width_mult and depth_mult then stay at their defaults); each kept layer's
            `attention_probs` has that layer's own head count.
          hidden_mult: Python float in (0, 1]; keeps the leading `grid.num_kept(hidden_size,
            hidden_mult)` hidden units (below, `hidden` is that count).
        Returns:
          dict: `sequence_output` [batch, seq, hidden], `pooled_output` [batch, hidden],
          `hidden_states` (embeddings, then each kept layer's output, each [batch, seq, hidden])
          and `attention_probs` (each kept layer's [batch, heads_kept, seq, seq]); with
          return_qkv also `last_layer_qkv`: the last kept layer's attention projections
          {"query", "key", "value"}, each [batch, heads_kept, seq, head_dim], and the
          `padding_mask` [batch, seq] (float, 1 for tokens) they were computed under.
        """
        if subnetwork is not None:
            return self.call_subnetwork(inputs, subnetwork, head_mask=head_mask,
                                        training=training, return_qkv=return_qkv)
        return self.call_depths(inputs, width_mult, (depth_mult,), head_mask=head_mask,
                                training=training, return_qkv=return_qkv,
                                hidden_mult=hidden_mult)[depth_mult]

    def call_depths(self, inputs, width_mult=1.0, depth_mults=(1.0,), head_mask=None,
                    training=None, return_qkv=False, hidden_mult=1.0):
        """{depth_mult: the dict `call(inputs, width_mult, depth_mult, hidden_mult=...)`
        returns}, one width (see `call_grid`)."""
        grid = self.call_grid(inputs, (width_mult,), depth_mults, head_mask=head_mask,
                              training=training, return_qkv=return_qkv,
                              hidden_mults=(hidden_mult,))
        return {depth_mult: grid[grid_lib.cell_key(width_mult, depth_mult, hidden_mult)]
                for depth_mult in depth_mults}

    def num_hidden(self, hidden_mult):
        """Hidden units kept at `hidden_mult` (Python int)."""
        return grid_lib.num_kept(self.bert_config.hidden_size, hidden_mult)

    def embed(self, inputs, training=None, hidden_mult=1.0):
        """The part of every cell that depends on neither width nor depth (it depends on the
        hidden size: `hidden_mult` as `call`'s).

        Returns:
          {"embeddings": [batch, seq, hidden] (LayerNorm and dropout applied),
           "attention_bias": [batch, 1, 1, seq], 0 for tokens, a large negative for padding,
           "padding_mask": [batch, seq], 1.0 for tokens, 0.0 for padding}.
        """
        call_checks.check_inputs(inputs, self.bert_config)
        mask = ops.cast(inputs["padding_mask"], self.compute_dtype)
        return {"embeddings": self.embeddings(inputs["token_ids"], inputs["segment_ids"],
                                              training=training,
                                              hidden_units=self.num_hidden(hidden_mult)),
                "attention_bias": (1.0 - mask[:, None, None, :]) * -10000.0,
                "padding_mask": mask}

    def call_grid(self, inputs, width_mults=(1.0,), depth_mults=(1.0,), head_mask=None,
                  training=None, embedded=None, return_qkv=False, hidden_mults=(1.0,)):
        """Runs every (width, depth[, hidden]) cell, computing each shared computation once.

        The embeddings (with their LayerNorm and dropout) and the attention bias do not depend
        on width or depth: they are computed once for all cells. Within a width, a layer
        applied to the same input is the same computation at every depth that reaches it that
        way, so layer outputs are memoised by the tuple of layer indices run so far.
        6 layers: depth 1 runs (0..5); 0.75 keeps (0,1,2,4) and reuses (0,1,2); 0.5 keeps
        (0,2,4) and reuses (0,): 9 layer calls instead of 13. Shared computations share their
        dropout masks (separate `call`s would draw fresh ones): with training=True every cell
        of one call sees the same embedding dropout mask.

        Args:
          inputs: as `call`.
          width_mults, depth_mults: Python floats in (0, 1].
          head_mask, training, return_qkv: as `call`.
          embedded: optional `embed(inputs, training, hidden_mult)` computed beforehand (by a
            caller that differentiates the widths one at a time); `inputs` is then not read,
            and `hidden_mults` must then hold that one hidden_mult.
          hidden_mults: Python floats in (0, 1]; each hidden size embeds once (the embedding
            LayerNorm runs over the kept units).
        Returns:
          {cell: the dict `call(inputs, width_mult, depth_mult, hidden_mult=...)` returns},
          keyed by `grid.cell_key(width_mult, depth_mult, hidden_mult)` ((width_mult,
          depth_mult) at hidden_mult 1), hidden-major, then widths, in the order given.
        """
        if embedded is not None and len(hidden_mults) != 1:
            raise ValueError(f"call_grid: `embedded` is one hidden size's, got hidden_mults "
                             f"{tuple(hidden_mults)}")
        results = {}
        for hidden_mult in hidden_mults:
            grid_lib.check_multiplier("hidden_mult", hidden_mult)
            at_hidden = embedded if embedded is not None else self.embed(
                inputs, training=training, hidden_mult=hidden_mult)
            for width_mult in width_mults:
                by_depth = self._run_depths(at_hidden, width_mult, depth_mults, head_mask,
                                            training, return_qkv, hidden_mult)
                results.update({grid_lib.cell_key(width_mult, d, hidden_mult): out
                                for d, out in by_depth.items()})
        return results

    def call_subnetwork(self, inputs, subnetwork, head_mask=None, training=None,
                        embedded=None, return_qkv=False):
        """The dict `call` returns, for the per-layer sub-network `subnetwork` (a
        `LayerwiseConfig`: layer k of it runs layer `layers[k]` with its leading `heads[k]`
        heads and `neurons[k]` FFN neurons). `embedded`: as `call_grid`."""
        layerwise.check(subnetwork, self.bert_config)
        if embedded is None:
            embedded = self.embed(inputs, training=training)
        x = embedded["embeddings"]
        hidden_states, attention_probs = [x], []
        for i, heads, neurons in zip(subnetwork.layers, subnetwork.heads, subnetwork.neurons):
            x, probs, *qkv = self.transformer_layers[i](
                x, embedded["attention_bias"], num_heads=heads, num_neurons=neurons,
                head_mask=None if head_mask is None else head_mask[i], training=training,
                return_qkv=return_qkv)
            hidden_states.append(x)
            attention_probs.append(probs)
        return self._outputs(embedded, hidden_states, attention_probs, qkv, return_qkv)

    def _outputs(self, embedded, hidden_states, attention_probs, qkv, return_qkv):
        """The output dict of one sub-network from its layers' outputs."""
        x = hidden_states[-1]
        outputs = {"sequence_output": x, "pooled_output": self._pool(x[:, 0]),
                   "hidden_states": hidden_states, "attention_probs": attention_probs}
        if return_qkv:
            outputs["last_layer_qkv"] = {**qkv[0], "padding_mask": embedded["padding_mask"]}
        return outputs

    def _pool(self, first_token):
        """The pooler on [batch, hidden] first-token states (leading hidden units kept)."""
        hidden = first_token.shape[-1]
        if hidden == self.bert_config.hidden_size:
            return self.pooler(first_token)
        kernel, bias = (weight_layout.sliced(self.pooler, name, None, hidden,
                                             weight_layout.POOLER_HIDDEN_AXES)
                        for name in ("kernel", "bias"))
        # Cast by hand: `call_grid` may be called directly, outside Keras' autocast scope.
        return ops.tanh(ops.matmul(first_token, ops.cast(kernel, first_token.dtype))
                        + ops.cast(bias, first_token.dtype))

    def _run_depths(self, embedded, width_mult, depth_mults, head_mask, training, return_qkv,
                    hidden_mult=1.0):
        """{depth_mult: outputs} at one width from `embed`'s dict, leading layers shared."""
        attention_bias = embedded["attention_bias"]
        cfg = self.bert_config
        num_heads = [grid_lib.num_kept(n, width_mult) for n in cfg.heads_per_layer]
        num_neurons = [grid_lib.num_kept(n, width_mult)
                       for n in cfg.intermediate_sizes_per_layer]
        hidden_units = self.num_hidden(hidden_mult)
        layer_outputs = {}  # layer indices run so far -> (output, probs[, q/k/v])
        results = {}
        for depth_mult in depth_mults:
            layer_ids = grid_lib.kept_layers(cfg.num_layers, depth_mult)
            x = embedded["embeddings"]
            hidden_states, attention_probs = [x], []
            for k, i in enumerate(layer_ids):
                prefix = layer_ids[:k + 1]
                if prefix not in layer_outputs:
                    layer_outputs[prefix] = self.transformer_layers[i](
                        x, attention_bias, num_heads=num_heads[i], num_neurons=num_neurons[i],
                        head_mask=None if head_mask is None else head_mask[i],
                        training=training, return_qkv=return_qkv, hidden_units=hidden_units)
                x, probs, *qkv = layer_outputs[prefix]
                hidden_states.append(x)
                attention_probs.append(probs)
            results[depth_mult] = self._outputs(embedded, hidden_states, attention_probs, qkv,
                                                return_qkv)
        return results

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, **self.bert_config.to_dict()}

    @classmethod
    def from_preset(cls, path):
        """A backbone from a Hugging Face BERT/RoBERTa dir, a keras-hub BERT/RoBERTa preset
        or a named checkpoint (`minilm_l6`): `presets.loader.load_backbone`."""
        return preset_loader.load_backbone(cls, path)


def dummy_inputs(batch_size=1, seq_len=8):
    """All-ones token inputs of a given shape (for building and tracing)."""
    ones = ops.ones((batch_size, seq_len), dtype="int32")
    return {"token_ids": ones, "segment_ids": ops.zeros_like(ones), "padding_mask": ones}
