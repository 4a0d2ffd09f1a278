"""The checks every sliceable model kind runs: keras-hub's `TestCase.run_backbone_test` /
`run_model_saving_test` / `run_litert_export_test` in spirit, for an elastic model.

    model = KINDS["bert_span"].build()              # tiny, every weight random
    inputs = model_inputs(model.bert_config)
    check_config_round_trip(model, inputs, keras_file=tmp_path / "m.keras")
    check_preset_round_trip(model, inputs, tmp_path / "preset")
    check_slice_equals_mask(model, inputs)          # against `masked_reference` (numpy)
    check_extracted_equals_dynamic(model, inputs)   # extract_subnetwork / extract_layerwise
    check_tflite_parity(model, (0.5, 0.75), inputs, tmp_path / "cell.tflite")   # seconds

A *cell* is anything the model runs at: a grid cell `(width_mult, depth_mult)`, one with a
hidden multiplier `(width_mult, depth_mult, hidden_mult)`, or a per-layer sub-network
(`elastic.layerwise.LayerwiseConfig`). Each check takes the cells to check (default
`kind_cells(model)`: every width and depth once, plus a per-layer sub-network when the model
has uniform layers) and returns what a caller may want to assert more on.
`tests/test_model_kinds.py` runs every check on every kind of `KINDS`.
"""

import dataclasses
import json
import os
from typing import Callable

import keras
import numpy as np
from scipy.special import erf

from dynabert_tf.core import grid as grid_lib
from dynabert_tf.elastic import cost
from dynabert_tf.elastic.layerwise import LayerwiseConfig
from dynabert_tf.elastic.subnetwork import extract_layerwise, extract_subnetwork
from dynabert_tf.models import task_model
from dynabert_tf.models.backbone import DynaBertBackbone
from dynabert_tf.models.task_model import DynaBertTaskModel
from dynabert_tf.presets import hf_config
from dynabert_tf.tasks import heads
from tests.helpers import REPO_ROOT, TINY_DEEP, random_inputs

# Every width and every depth of the grid at least once.
GRID_CELLS = ((1.0, 1.0), (0.75, 0.75), (0.5, 0.5), (0.25, 1.0))
# A per-layer sub-network of a 4-layer, 4-head, 64-neuron model (TINY_DEEP, tiny_roberta):
# heads step 1, neurons step 16; every layer a different size, layer 2 dropped.
MIXED = LayerwiseConfig(layers=(0, 1, 3), heads=(4, 1, 3), neurons=(16, 64, 48))
BACKBONE_KEYS = ("sequence_output", "pooled_output")


# --------------------------------------------------------------------------- cells

def cell_name(cell):
    """'w0.50_d0.75', 'w0.50_d0.75_h0.75' or a per-layer config's 'mix_...' name."""
    if isinstance(cell, LayerwiseConfig):
        return cell.name
    return grid_lib.cell_name(*grid_lib.cell_mults(cell))


def cell_kwargs(cell):
    """The call arguments that run `cell` (`model(inputs, **cell_kwargs(cell))`)."""
    if isinstance(cell, LayerwiseConfig):
        return {"subnetwork": cell}
    width_mult, depth_mult, hidden_mult = grid_lib.cell_mults(cell)
    kwargs = {"width_mult": width_mult, "depth_mult": depth_mult}
    if hidden_mult != 1.0:
        kwargs["hidden_mult"] = hidden_mult
    return kwargs


def cell_plan(bert_config, cell):
    """What `cell` keeps of a model of `bert_config`: (kept layer indices, heads per kept
    layer, FFN neurons per kept layer, hidden units); each layer's own sizes are the base of
    a grid width (a per-layer model keeps its share of each layer)."""
    if isinstance(cell, LayerwiseConfig):
        return cell.layers, cell.heads, cell.neurons, bert_config.hidden_size
    width_mult, depth_mult, hidden_mult = grid_lib.cell_mults(cell)
    layers = grid_lib.kept_layers(bert_config.num_layers, depth_mult)
    return (layers,
            tuple(grid_lib.num_kept(bert_config.heads_per_layer[i], width_mult) for i in layers),
            tuple(grid_lib.num_kept(bert_config.intermediate_sizes_per_layer[i], width_mult)
                  for i in layers),
            grid_lib.num_kept(bert_config.hidden_size, hidden_mult))


def kind_cells(model):
    """The default cells to check: `GRID_CELLS`, plus `MIXED` when the model's layers are
    uniform and of TINY_DEEP's sizes."""
    cfg = model.bert_config
    uniform = cfg.layer_num_heads is None and cfg.layer_intermediate_sizes is None
    fits = (cfg.num_layers, cfg.num_heads, cfg.intermediate_size) == (
        TINY_DEEP.num_layers, TINY_DEEP.num_heads, TINY_DEEP.intermediate_size)
    return GRID_CELLS + ((MIXED,) if uniform and fits else ())


def run_cell(model, inputs, cell, **kwargs):
    """All outputs of `model` (task model or backbone) at `cell`: the backbone's dict, plus
    the head's outputs for a task model."""
    if isinstance(model, DynaBertTaskModel):
        kwargs["return_dict"] = True
    return model(inputs, **cell_kwargs(cell), **kwargs)


def extract(model, cell):
    """The standalone model of `cell` (`extract_subnetwork` / `extract_layerwise`)."""
    if isinstance(cell, LayerwiseConfig):
        return extract_layerwise(model, cell)
    return extract_subnetwork(model, *grid_lib.cell_mults(cell))


def head_outputs(model):
    """Names of the head's outputs (none for a bare backbone)."""
    head = getattr(model, "head", None)
    return tuple(head.output_names) if head is not None else ()


def assert_outputs_close(got, want, names, what, atol, rtol=0.0, stacks=False):
    """Each of `names` (and with `stacks`, every `hidden_states` / `attention_probs` entry)
    of the output dicts `got` and `want` within `atol` + `rtol` * |want|; `what` names the
    comparison."""
    for name in names:
        np.testing.assert_allclose(np.asarray(got[name]), np.asarray(want[name]), atol=atol,
                                   rtol=rtol, err_msg=f"{what}: {name}")
    if stacks:
        for name in ("hidden_states", "attention_probs"):
            assert len(got[name]) == len(want[name]), f"{what}: number of {name}"
            for k, (g, w) in enumerate(zip(got[name], want[name])):
                np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=atol, rtol=rtol,
                                           err_msg=f"{what}: {name}[{k}]")


# --------------------------------------------------------------------------- tiny models

def randomise_weights(model, seed=0):
    """`model` with every weight drawn at random: N(0, 0.2), LayerNorm scales 1 + N(0, 0.2)
    (biases and offsets included, so a dropped unit that leaked into a kept one, or a
    mis-sliced bias, would show; outputs are O(1), so absolute tolerances mean something)."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        scale = 1.0 if variable.path.endswith("gamma") else 0.2
        base = 1.0 if variable.path.endswith("gamma") else 0.0
        variable.assign(base + scale * rng.standard_normal(variable.shape).astype("float32"))
    return model


def model_inputs(bert_config, batch_size=3, seq_len=9, seed=0, pad_last=2):
    """`helpers.random_inputs` for a model of `bert_config`: its vocabulary; segment ids all
    0 when it has one segment type (RoBERTa), whose padding token is its pad id."""
    inputs = random_inputs(batch_size, seq_len, bert_config.vocab_size, seed, pad_last)
    if bert_config.type_vocab_size == 1:
        inputs["segment_ids"][:] = 0
    if bert_config.model_type == "roberta":
        inputs["token_ids"][inputs["padding_mask"] == 0] = bert_config.position_offset - 1
    return inputs


# configs/tiny_roberta (RoBERTa: one segment type, positions from row pad_token_id + 1 = 2,
# LayerNorm epsilon 1e-5); 4 layers of 4 heads, as TINY_DEEP.
TINY_ROBERTA = hf_config.read_config(os.path.join(REPO_ROOT, "configs", "tiny_roberta"))


@dataclasses.dataclass(frozen=True)
class ModelKind:
    """A model kind the checks run on: `build()` makes a tiny one, random weights;
    `cells` the cells to check (None: `kind_cells`); `tflite_cell` the one cell exported."""

    name: str
    build: Callable[[], DynaBertTaskModel]
    cells: tuple | None = None
    tflite_cell: tuple | LayerwiseConfig = (0.5, 0.75)

    def cells_of(self, model):
        return self.cells if self.cells is not None else kind_cells(model)


def _bert(head):
    return randomise_weights(DynaBertTaskModel(
        DynaBertBackbone.from_config_object(TINY_DEEP), head))


def _roberta_classifier():
    return randomise_weights(task_model.classifier(
        DynaBertBackbone.from_config_object(TINY_ROBERTA), 3))


KINDS = {kind.name: kind for kind in (
    ModelKind("bert_classification", lambda: _bert(heads.make_head("classification", 3))),
    ModelKind("bert_regression", lambda: _bert(heads.make_head("regression"))),
    ModelKind("bert_span", lambda: _bert(heads.make_head("span"))),
    ModelKind("roberta_classification", _roberta_classifier),
    # The standalone per-layer sub-network (layers of different sizes), itself elastic.
    ModelKind("bert_layerwise",
              lambda: extract_layerwise(_bert(heads.make_head("classification", 3)), MIXED),
              tflite_cell=(0.75, 1.0)),
    # The hidden-size axis (`hidden_mult`), off in the default grid.
    ModelKind("bert_hidden", lambda: _bert(heads.make_head("classification", 3)),
              cells=((1.0, 1.0, 0.75), (0.5, 0.75, 0.5), (0.25, 0.5, 0.25), (0.75, 1.0)),
              tflite_cell=(0.5, 0.75, 0.75)),
)}


# --------------------------------------------------------------------------- reference

def _gelu(x, approximate):
    if approximate:
        return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


_ACTIVATIONS = {"gelu": lambda x: _gelu(x, False), "gelu_approximate": lambda x: _gelu(x, True),
                "relu": lambda x: np.maximum(x, 0.0)}


def masked_reference(model, inputs, cell=(1.0, 1.0)):
    """The FULL-size network (float64 numpy, no Keras) with what `cell` drops masked out:

    * the dropped layers are skipped (only `cell_plan`'s kept layers run);
    * every head runs and the dropped heads' contexts are multiplied by 0 (a head mask);
    * every FFN neuron runs and the dropped neurons' activations are multiplied by 0;
    * the hidden units past k = num_kept(hidden_size, hidden_mult) are masked: every
      LayerNorm takes its mean and variance over the k kept units only and sets the dropped
      units to 0 (as does the pooler), so the residual stream is 0 there and no dropped unit
      reaches a kept one.

    Padded keys get no attention. `model` is a `DynaBertTaskModel` or a bare backbone.
    Returns the backbone's output dict (`hidden_states` and `sequence_output` /
    `pooled_output` full-size, 0 past k; `attention_probs` of the kept heads only) and the
    head's outputs.
    """
    backbone = getattr(model, "backbone", model)
    cfg = backbone.bert_config
    layers, kept_heads, kept_neurons, kept_hidden = cell_plan(cfg, cell)
    mask = (np.arange(cfg.hidden_size) < kept_hidden).astype("float64")
    activation = _ACTIVATIONS[cfg.hidden_act]
    w = lambda v: np.asarray(v, "float64")

    def norm(x, layer):
        mean = (x * mask).sum(-1, keepdims=True) / kept_hidden
        centred = (x - mean) * mask
        variance = (centred ** 2).sum(-1, keepdims=True) / kept_hidden
        return (centred / np.sqrt(variance + layer.epsilon) * w(layer.gamma)
                + w(layer.beta)) * mask

    emb = backbone.embeddings
    seq = inputs["token_ids"].shape[1]
    start = cfg.position_offset
    x = norm(w(emb.token_embeddings)[inputs["token_ids"]]
             + w(emb.segment_embeddings)[inputs["segment_ids"]]
             + w(emb.position_embeddings)[None, start:start + seq], emb.layer_norm)
    pad = np.asarray(inputs["padding_mask"])[:, None, None, :] == 0
    states, probs_kept = [x], []
    for i, heads_i, neurons_i in zip(layers, kept_heads, kept_neurons):
        att = backbone.transformer_layers[i].attention
        ffn = backbone.transformer_layers[i].feedforward
        q, k, v = (np.einsum("bsh,ndh->bnsd", x, w(getattr(att, f"{n}_kernel")))
                   + w(getattr(att, f"{n}_bias"))[None, :, None, :]
                   for n in ("query", "key", "value"))
        scores = np.where(pad, -np.inf, q @ k.transpose(0, 1, 3, 2) / np.sqrt(att.head_dim))
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        head_mask = (np.arange(att.num_heads) < heads_i).astype("float64")
        context = (probs @ v) * head_mask[None, :, None, None]
        out = np.einsum("bnsd,ndh->bsh", context, w(att.output_kernel)) + w(att.output_bias)
        x = norm(x + out, att.layer_norm)
        neuron_mask = (np.arange(ffn.intermediate_size) < neurons_i).astype("float64")
        inner = activation(x @ w(ffn.intermediate_kernel).T + w(ffn.intermediate_bias))
        x = norm(x + (inner * neuron_mask) @ w(ffn.output_kernel) + w(ffn.output_bias),
                 ffn.layer_norm)
        states.append(x)
        probs_kept.append(probs[:, :heads_i])
    pooled = np.tanh(x[:, 0] @ w(backbone.pooler.kernel) + w(backbone.pooler.bias)) * mask
    outputs = {"hidden_states": states, "attention_probs": probs_kept, "sequence_output": x,
               "pooled_output": pooled}
    head = getattr(model, "head", None)
    if head is not None:
        kernel, bias = w(head.dense.kernel), w(head.dense.bias)
        if isinstance(head, heads.SpanHead):
            logits = x @ kernel + bias
            outputs.update(start_logits=logits[..., 0], end_logits=logits[..., 1])
        else:
            outputs["logits"] = pooled @ kernel + bias
    return outputs


# --------------------------------------------------------------------------- checks

def _check_same_model(loaded, model, what):
    assert type(loaded) is type(model), f"{what}: {type(loaded).__name__}"
    assert loaded.bert_config == model.bert_config, f"{what}: bert_config"
    if isinstance(model, DynaBertTaskModel):
        assert (loaded.head.kind, loaded.num_outputs) == (model.head.kind, model.num_outputs), \
            f"{what}: head"


def _check_same_outputs(loaded, expected, inputs, atol, what):
    """`loaded`'s outputs at each cell of `expected` ({cell: the original's outputs}): the
    head's, pooled, sequence, every hidden state and attention map."""
    for cell, want in expected.items():
        assert_outputs_close(run_cell(loaded, inputs, cell), want,
                             head_outputs(loaded) + BACKBONE_KEYS,
                             f"{what} at {cell_name(cell)}", atol, stacks=True)


def _outputs_by_cell(model, inputs, cells):
    return {cell: run_cell(model, inputs, cell) for cell in cells}


def check_config_round_trip(model, inputs, cells=None, atol=1e-6, keras_file=None):
    """`get_config` -> JSON -> `from_config` (through Keras' serialization, as keras-hub's
    `run_serialization_test`) rebuilds the same model: the same config again, the same
    class, BertConfig and head, and with the weights copied over, the same outputs at every
    cell. With `keras_file`, also `model.save` -> `keras.saving.load_model` (keras-hub's
    `run_model_saving_test`). Returns the rebuilt model, or (rebuilt, loaded)."""
    expected = _outputs_by_cell(model, inputs, kind_cells(model) if cells is None else cells)
    config_json = json.dumps(model.get_config(), sort_keys=True)
    serialized = json.dumps(keras.saving.serialize_keras_object(model), sort_keys=True)
    rebuilt = keras.saving.deserialize_keras_object(json.loads(serialized))
    assert json.dumps(rebuilt.get_config(), sort_keys=True) == config_json, "config changed"
    _check_same_model(rebuilt, model, "from_config")
    rebuilt.set_weights(model.get_weights())
    _check_same_outputs(rebuilt, expected, inputs, atol, "from_config")
    if keras_file is None:
        return rebuilt
    model.save(str(keras_file))
    loaded = keras.saving.load_model(str(keras_file))
    _check_same_model(loaded, model, ".keras file")
    _check_same_outputs(loaded, expected, inputs, atol, ".keras file")
    return rebuilt, loaded


def check_preset_round_trip(model, inputs, directory, cells=None, atol=1e-6, **save_kwargs):
    """`model.save_to_preset(directory, **save_kwargs)` -> `DynaBertTaskModel.from_preset`
    gives the same class, BertConfig and head, and the same outputs at every cell.
    Returns (the saved dir, the loaded model)."""
    expected = _outputs_by_cell(model, inputs, kind_cells(model) if cells is None else cells)
    path = model.save_to_preset(str(directory), **save_kwargs)
    loaded = DynaBertTaskModel.from_preset(path)
    _check_same_model(loaded, model, "from_preset")
    _check_same_outputs(loaded, expected, inputs, atol, "from_preset")
    return path, loaded


def check_slice_equals_mask(model, inputs, cells=None, atol=1e-5, rtol=1e-5):
    """The sliced call at each cell equals `masked_reference`, the full-size network with
    the dropped heads and neurons masked out, the dropped layers skipped and the dropped
    hidden units masked: every hidden state (on the kept hidden units; the reference is 0 on
    the others), the kept heads' attention probabilities, the pooled and sequence outputs
    and the head's outputs (within atol + rtol * |reference|: float32 against float64)."""
    cells = kind_cells(model) if cells is None else cells
    for cell in cells:
        what = f"sliced vs masked at {cell_name(cell)}"
        layers, kept_heads, _, kept = cell_plan(model.bert_config, cell)
        got, want = run_cell(model, inputs, cell), masked_reference(model, inputs, cell)
        assert len(got["hidden_states"]) == len(want["hidden_states"]) == len(layers) + 1, what
        for name in ("hidden_states", "sequence_output", "pooled_output"):
            pairs = (zip(got[name], want[name]) if name == "hidden_states"
                     else [(got[name], want[name])])
            for sliced, masked in pairs:
                assert sliced.shape[-1] == kept, f"{what}: {name} has {sliced.shape[-1]} units"
                np.testing.assert_allclose(np.asarray(sliced), masked[..., :kept], atol=atol,
                                           rtol=rtol, err_msg=f"{what}: {name}")
                assert not masked[..., kept:].any(), f"{what}: dropped hidden units not 0"
        assert [p.shape[1] for p in got["attention_probs"]] == list(kept_heads), what
        for k, (g, e) in enumerate(zip(got["attention_probs"], want["attention_probs"])):
            np.testing.assert_allclose(np.asarray(g), e, atol=atol, rtol=rtol,
                                       err_msg=f"{what}: attention_probs[{k}]")
        assert_outputs_close(got, want, head_outputs(model), what, atol, rtol)


def check_extracted_equals_dynamic(model, inputs, cells=None, atol=1e-5, rtol=1e-5):
    """The standalone model of each cell (`extract_subnetwork`, `extract_layerwise` for a
    per-layer config) holds exactly the kept sizes (config and `cost.count_params`) and,
    called at full size, gives the dynamic model's outputs at the cell: the head's, pooled,
    sequence, every hidden state and attention map (within atol + rtol * |dynamic|).
    Returns {cell name: extracted model}."""
    cells = kind_cells(model) if cells is None else cells
    parent_cfg = model.bert_config
    extracted = {}
    for cell in cells:
        what = f"extracted vs dynamic at {cell_name(cell)}"
        layers, kept_heads, kept_neurons, kept_hidden = cell_plan(parent_cfg, cell)
        standalone = extract(model, cell)
        cfg = standalone.bert_config
        assert (cfg.num_layers, cfg.heads_per_layer, cfg.intermediate_sizes_per_layer,
                cfg.hidden_size) == (len(layers), kept_heads, kept_neurons, kept_hidden), what
        assert cfg.head_dim == parent_cfg.head_dim, what
        assert (cfg.model_type, cfg.position_offset) == (parent_cfg.model_type,
                                                         parent_cfg.position_offset), what
        assert standalone.head.kind == model.head.kind, what
        if isinstance(cell, LayerwiseConfig):
            params = cost.count_params(parent_cfg, num_classes=model.num_outputs,
                                       subnetwork=cell)
        else:
            width_mult, depth_mult, hidden_mult = grid_lib.cell_mults(cell)
            params = cost.count_params(parent_cfg, width_mult, depth_mult, model.num_outputs,
                                       hidden_mult=hidden_mult)
        assert standalone.count_params() == params, what
        got, want = standalone(inputs, return_dict=True), run_cell(model, inputs, cell)
        assert len(got["hidden_states"]) == len(layers) + 1, what
        assert [p.shape[1] for p in got["attention_probs"]] == list(kept_heads), what
        assert_outputs_close(got, want, head_outputs(model) + BACKBONE_KEYS, what, atol, rtol,
                             stacks=True)
        extracted[cell_name(cell)] = standalone
    return extracted


def check_tflite_parity(model, cell, inputs, path, atol=1e-4, **export_kwargs):
    """The float (`quantization="none"`) TFLite file of `cell` (`mobile.export.export_cell`
    / `export_layerwise` with `export_kwargs`, static [1, seq] inputs), run in the LiteRT
    interpreter on each example of `inputs` (a batch, or a list of batch-1 inputs) alone,
    gives the Keras model's head outputs at the cell on that example. Costs a conversion
    (seconds). Returns the export's {"bytes", "ops", "inputs", "outputs"}."""
    from ai_edge_litert.interpreter import Interpreter

    from mobile.export import export_cell, export_layerwise

    if isinstance(inputs, dict):
        inputs = [{key: np.asarray(value)[b:b + 1] for key, value in inputs.items()}
                  for b in range(len(inputs["token_ids"]))]
    seq_len = inputs[0]["token_ids"].shape[1]
    if isinstance(cell, LayerwiseConfig):
        written = export_layerwise(model, cell, str(path), seq_len=seq_len,
                                   quantization="none", **export_kwargs)
    else:
        width_mult, depth_mult, hidden_mult = grid_lib.cell_mults(cell)
        written = export_cell(model, width_mult, depth_mult, str(path), seq_len=seq_len,
                              quantization="none", hidden_mult=hidden_mult, **export_kwargs)
    names = head_outputs(model)
    assert sorted(o["name"] for o in written["outputs"]) == sorted(names)
    runner = Interpreter(model_path=str(path)).get_signature_runner("serving_default")
    for b, example in enumerate(inputs):
        got = runner(**example)
        want = run_cell(model, example, cell)
        for name in names:
            assert got[name].shape == tuple(want[name].shape), name
            np.testing.assert_allclose(got[name], np.asarray(want[name]), atol=atol, rtol=0,
                                       err_msg=f"TFLite vs Keras at {cell_name(cell)}: "
                                               f"{name}, example {b}")
    return written
