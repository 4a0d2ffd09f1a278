"""Analytic params equal the standalone model's; FLOPs shrink with width and depth."""

import numpy as np

from dynabert_tf.core import grid as grid_lib
from dynabert_tf.models import config as model_config
from dynabert_tf.elastic import cost
from dynabert_tf.models.backbone import DynaBertBackbone
from dynabert_tf.models import task_model
from tests.helpers import TINY


def test_full_params_equal_keras_count():
    model = task_model.classifier(DynaBertBackbone.from_config_object(TINY), 3)
    assert cost.count_params(TINY, 1.0, 1.0, num_classes=3) == model.count_params()


def test_cell_params_equal_a_model_of_that_shape():
    """w0.50_d0.50 of the 2-layer, 4-head tiny model: 1 layer, 2 of 4 heads, 32 of 64 neurons."""
    one_layer = model_config.BertConfig(**{**TINY.to_dict(), "num_layers": 1, "intermediate_size": 32})
    model = task_model.classifier(DynaBertBackbone.from_config_object(one_layer), 2)
    # That model still has 4 heads (32 wide); the cell keeps 2 heads of 8 dims (16 wide).
    dropped_heads = 3 * (32 * 16 + 16) + 16 * 32
    assert cost.count_params(TINY, 0.5, 0.5) == model.count_params() - dropped_heads


def test_monotone_over_the_grid():
    minilm = model_config.BertConfig(hidden_size=384, num_layers=6, num_heads=12,
                               intermediate_size=1536)
    flops = {cell: cost.count_flops(minilm, *cell) for cell in grid_lib.grid()}
    params = {cell: cost.count_params(minilm, *cell) for cell in grid_lib.grid()}
    for values in (flops, params):
        for (w, d), value in values.items():
            for (w2, d2), other in values.items():
                if (w2 <= w and d2 <= d) and (w2, d2) != (w, d):
                    assert other < value
    assert np.isclose(flops[(0.5, 1.0)] / flops[(1.0, 1.0)], 0.5, atol=0.01)
