"""MiniLM relation distillation: the loss against a numpy reference, padding, relation heads
across widths, the backbone's q/k/v, gradients, and the grid trainer with each objective."""

import math

import numpy as np
import pytest
import tensorflow as tf

from dynabert_tf.distillation import losses
from dynabert_tf.distillation import relations
from dynabert_tf.distillation.grid_trainer import GridTrainer
from dynabert_tf.core import grid as grid_lib
from helpers import TINY, TINY_DEEP, random_inputs, tiny_classifier
from train import settings as settings_lib

R = 4  # TINY: 4 heads of 8


def _numpy_relation_loss(student, teacher, mask, num_relation_heads, names):
    """Sum over `names` of the mean over real (example, relation head, query) rows of
    KL(teacher || student), padded keys out of the softmax; float64, loops."""
    total = 0.0
    for name in names:
        first, second = relations.RELATIONS[name]
        rel = {}
        for side, qkv in (("s", student), ("t", teacher)):
            a, b = (np.asarray(qkv[k], np.float64) for k in (first, second))
            batch, heads, seq, head_dim = a.shape
            a = a.transpose(0, 2, 1, 3).reshape(batch, seq, heads * head_dim)
            b = b.transpose(0, 2, 1, 3).reshape(batch, seq, heads * head_dim)
            d_r = heads * head_dim // num_relation_heads
            probs = np.zeros((batch, num_relation_heads, seq, seq))
            for e in range(batch):
                keys = np.flatnonzero(mask[e])
                for r in range(num_relation_heads):
                    cols = slice(r * d_r, (r + 1) * d_r)
                    scores = a[e, :, cols] @ b[e][keys][:, cols].T / math.sqrt(d_r)
                    scores = np.exp(scores - scores.max(axis=1, keepdims=True))
                    probs[e, r][:, keys] = scores / scores.sum(axis=1, keepdims=True)
            rel[side] = probs
        kl, rows = 0.0, 0
        for e in range(len(mask)):
            keys = np.flatnonzero(mask[e])
            for r in range(num_relation_heads):
                for q in keys:
                    t, s = rel["t"][e, r, q, keys], rel["s"][e, r, q, keys]
                    kl += np.sum(t * (np.log(t) - np.log(s)))
                    rows += 1
        total += kl / rows
    return total


def _random_qkv(heads, batch=3, seq=6, head_dim=8, seed=0, pad_last=2):
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, seq), "float32")
    mask[0, seq - pad_last:] = 0
    qkv = {k: rng.normal(0, 1.5, (batch, heads, seq, head_dim)).astype("float32")
           for k in ("query", "key", "value")}
    return {**qkv, "padding_mask": mask}


@pytest.mark.parametrize("names", [relations.MINILM_V2, relations.MINILM_V1])
def test_relation_loss_matches_numpy_across_widths(names):
    """Student of 2 heads (16 columns, d_r 4) against a teacher of 4 (32 columns, d_r 8)."""
    student, teacher = _random_qkv(2, seed=1), _random_qkv(4, seed=2)
    teacher["padding_mask"] = student["padding_mask"]
    loss, parts = relations.relation_loss(student, teacher, R, names, return_parts=True)
    expected = _numpy_relation_loss(student, teacher, student["padding_mask"], R, names)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    assert list(parts) == list(names) and float(loss) > 0.1


def _padded(qkv, extra, fill):
    """`qkv` with `extra` more padded positions whose vectors are all `fill`."""
    out = {k: np.concatenate([qkv[k], np.full(qkv[k].shape[:2] + (extra, qkv[k].shape[3]),
                                              fill, "float32")], axis=2)
           for k in ("query", "key", "value")}
    mask = qkv["padding_mask"]
    return {**out, "padding_mask": np.concatenate([mask, np.zeros((len(mask), extra),
                                                                  "float32")], axis=1)}


def test_padding_changes_nothing():
    """Vectors at padded positions, and extra padded positions, leave the loss as it was:
    padded keys are out of the softmax, padded query rows out of the average."""
    student, teacher = _random_qkv(2, seed=3), _random_qkv(4, seed=4)
    base = float(relations.relation_loss(student, teacher, R))
    garbage = {k: v.copy() for k, v in student.items()}
    for k in ("query", "key", "value"):
        garbage[k][0, :, -2:] = 50.0  # example 0's two padded positions
    assert float(relations.relation_loss(garbage, teacher, R)) == pytest.approx(base, rel=1e-6)
    longer = relations.relation_loss(_padded(student, 3, 7.0), _padded(teacher, 3, 1.0), R)
    assert float(longer) == pytest.approx(base, rel=1e-6)


def test_relation_heads_make_every_width_comparable():
    """Every width of 4 heads x 8 gives [batch, R, seq, seq] relations; R must divide."""
    mask = np.ones((2, 5), "float32")
    for width in grid_lib.WIDTH_MULTS:
        heads = grid_lib.num_kept(TINY.num_heads, width)
        vectors = tf.random.normal((2, heads, 5, 8))
        split = relations.split_relation_heads(vectors, R)
        assert split.shape == (2, R, 5, heads * 8 // R)
        # relation head r of token t = columns r*d_r.. of the heads concatenated
        concatenated = np.transpose(vectors.numpy(), (0, 2, 1, 3)).reshape(2, 5, heads * 8)
        np.testing.assert_array_equal(split.numpy()[:, 1], concatenated[..., heads * 2:heads * 4])
        assert relations.relation_log_probs(vectors, vectors, mask, R).shape == (2, R, 5, 5)
    grid_lib.check_relation_heads(12, 12, 32, grid_lib.WIDTH_MULTS)  # MiniLM-L6's default
    with pytest.raises(ValueError, match=r"relation_heads 4 does not divide the 2 query/key/"
                                         r"value columns at width 0.25 \(1 heads of 2\)"):
        grid_lib.check_relation_heads(4, 4, 2, (1.0, 0.25))  # 8 columns divide, 2 do not
    with pytest.raises(ValueError, match="relation_heads 3 does not divide"):
        relations.split_relation_heads(tf.zeros((1, 1, 2, 8)), 3)


def test_backbone_qkv_is_the_last_kept_layers_and_free_when_not_asked():
    """At full width, the query-key relation with R = heads IS the attention distribution of
    the last kept layer; the q/k/v have the kept heads; without return_qkv nothing is added."""
    model = tiny_classifier(config=TINY_DEEP, dropout=0.0)
    features = random_inputs(3, 7)
    plain = model(features, depth_mult=0.5, return_dict=True)
    assert "last_layer_qkv" not in plain
    for width in (0.5, 1.0):
        out = model(features, width_mult=width, depth_mult=0.5, return_dict=True,
                    return_qkv=True)
        qkv = out["last_layer_qkv"]
        heads = grid_lib.num_kept(4, width)
        assert [qkv[k].shape for k in ("query", "key", "value")] == [(3, heads, 7, 8)] * 3
        np.testing.assert_array_equal(qkv["padding_mask"], features["padding_mask"])
        probs = tf.exp(relations.relation_log_probs(qkv["query"], qkv["key"],
                                                    qkv["padding_mask"], heads)).numpy()
        np.testing.assert_allclose(probs, out["attention_probs"][-1].numpy(), atol=1e-6)
    for name in ("logits", "sequence_output"):  # asking for q/k/v changes no output
        np.testing.assert_array_equal(out[name], plain[name])


def test_zero_for_identical_models_and_gradients_reach_the_last_kept_layer():
    teacher = tiny_classifier(config=TINY_DEEP, dropout=0.0)
    student = tiny_classifier(config=TINY_DEEP, dropout=0.0)
    student.set_weights(teacher.get_weights())
    features = random_inputs(3, 7)
    teacher_qkv = teacher(features, return_dict=True, return_qkv=True)["last_layer_qkv"]
    same = student(features, return_dict=True, return_qkv=True)["last_layer_qkv"]
    assert abs(float(relations.relation_loss(same, teacher_qkv, R))) < 1e-6
    with tf.GradientTape() as tape:  # width 0.5, depth 0.5: layers 0 and 2 run
        out = student(features, width_mult=0.5, depth_mult=0.5, training=True,
                      return_dict=True, return_qkv=True)
        loss = relations.relation_loss(out["last_layer_qkv"], teacher_qkv, R)
    assert float(loss) > 0
    grads = dict(zip((v.path for v in student.trainable_variables),
                     tape.gradient(loss, student.trainable_variables)))
    layer2 = "transformer_layer_2/attention"
    for name in ("query_kernel", "key_kernel", "value_kernel"):
        g = tf.convert_to_tensor(grads[next(p for p in grads if p.endswith(
            f"{layer2}/{name}"))]).numpy()
        assert np.all(np.isfinite(g)) and np.abs(g[:2]).sum() > 0 and np.abs(g[2:]).sum() == 0
    assert any(g is not None for p, g in grads.items() if "transformer_layer_0/" in p)
    for path, g in grads.items():  # nothing after the last layer's q/k/v, nothing unrun
        if "transformer_layer_1/" in path or "transformer_layer_3/" in path \
                or "transformer_layer_2/feedforward" in path \
                or "transformer_layer_2/attention/output" in path or "pooler" in path:
            assert g is None, path


@pytest.fixture(scope="module")
def pair():
    """(student, teacher): two dropout-free tiny classifiers (no test changes their weights)
    whose query/key/value kernels are large enough (std 0.25, not 0.02) for peaked relations,
    so that the relation term weighs in the losses compared."""
    rng = np.random.default_rng(7)
    models = (tiny_classifier(config=TINY, dropout=0.0), tiny_classifier(config=TINY, dropout=0.0))
    for model in models:
        for layer in model.backbone.transformer_layers:
            for name in ("query_kernel", "key_kernel", "value_kernel"):
                kernel = getattr(layer.attention, name)
                kernel.assign(rng.normal(0, 0.25, kernel.shape))
    return models


def _trainer(pair, objective, **kwargs):
    student, teacher = pair
    return GridTrainer(student, teacher, width_mults=(1.0, 0.5), depth_mults=(1.0, 0.5),
                       teacher_width="full", lambda_logits=1.0, lambda_hidden=0.5,
                       distill_objective=objective, lambda_relation=2.0, **kwargs)


@pytest.mark.parametrize("objective", losses.OBJECTIVES)
def test_grid_trainer_objectives(pair, objective):
    """Each cell: logits + 0.5 * hidden MSE (dynabert, both) + 2 * relation KL of the
    student's last kept layer against the teacher's last layer (minilm, both, numpy)."""
    trainer = _trainer(pair, objective)
    features, labels = random_inputs(4, 7), np.arange(4) % 2
    total, grads, per_cell = trainer.compute_gradients(features, labels)
    teacher = trainer.teacher(features, training=False, return_dict=True, return_qkv=True)
    relation_share = []
    for (w, d), loss in per_cell.items():
        out = trainer.student(features, width_mult=w, depth_mult=d, training=True,
                              return_dict=True, return_qkv=True)
        expected = float(trainer.student.head.distillation_loss(out, teacher))
        if objective != "minilm":
            teacher_states = [teacher["hidden_states"][i] for i in
                              losses.teacher_layer_indices(TINY.num_layers, d)]
            expected += 0.5 * sum(float(np.mean((s - t) ** 2)) for s, t in
                                  zip(out["hidden_states"], teacher_states))
        if objective != "dynabert":
            expected += 2.0 * _numpy_relation_loss(
                out["last_layer_qkv"], teacher["last_layer_qkv"], features["padding_mask"],
                TINY.num_heads, relations.MINILM_V2)
        np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
        relation_share.append(expected - float(trainer.student.head.distillation_loss(
            out, teacher)))
    assert min(relation_share) > 0.1  # the term checked is not negligible
    used = [g for g in grads if g is not None]
    assert len(used) == len(trainer.student.trainable_variables)
    assert all(np.all(np.isfinite(tf.convert_to_tensor(g))) for g in used)
    assert float(total) == pytest.approx(sum(map(float, per_cell.values())), rel=1e-6)


def test_relation_loss_in_a_graph_with_unknown_batch_and_length(pair):
    """Traced with [None, None] inputs (as a training step is), the loss is the eager one."""
    student, teacher = pair
    spec = {name: tf.TensorSpec([None, None], tf.int32) for name in
            ("token_ids", "segment_ids", "padding_mask")}

    @tf.function(input_signature=[spec])
    def loss(features):
        out = student(features, width_mult=0.5, depth_mult=0.5, return_dict=True,
                      return_qkv=True)
        target = teacher(features, return_dict=True, return_qkv=True)
        return relations.relation_loss(out["last_layer_qkv"], target["last_layer_qkv"], R)

    features = random_inputs(3, 7)
    eager = relations.relation_loss(
        student(features, width_mult=0.5, depth_mult=0.5, return_dict=True,
                return_qkv=True)["last_layer_qkv"],
        teacher(features, return_dict=True, return_qkv=True)["last_layer_qkv"], R)
    assert float(eager) > 0.1
    np.testing.assert_allclose(float(loss(features)), float(eager), rtol=1e-5)


def test_bad_relation_settings(pair):
    with pytest.raises(ValueError, match="relation_heads 3 does not divide the 32"):
        _trainer(pair, "minilm", relation_heads=3)
    with pytest.raises(ValueError, match="relations must be distinct names"):
        _trainer(pair, "both", relations=("qq", "qv"))
    with pytest.raises(ValueError, match="distill_objective must be one of"):
        _trainer(pair, "tinybert")
    with pytest.raises(ValueError, match="lambda_logits and lambda_relation are both 0"):
        losses.check_lambdas(0.0, 1.0, "minilm", 0.0)
    base = dict(task="rt_polarity", workdir="/tmp/unused")
    for change, phrase in (({"lambda_relation": -1.0}, "lambda_relation must be a finite"),
                           ({"relation_heads": -2}, "relation_heads must be >= 0"),
                           ({"minilm_relations": ("qq", "qq")}, "minilm_relations must be"),
                           ({"distill_objective": "x"}, "distill_objective must be one of")):
        with pytest.raises(ValueError, match=phrase):
            settings_lib.Settings(**base, **change)
