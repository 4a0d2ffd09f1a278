"""Valid values of settings that both the flag checks (before TensorFlow starts) and the
library check: one tuple each, imported by both."""

# Task distillation objectives (dynabert_tf/distillation/losses.py).
DISTILL_OBJECTIVES = ("dynabert", "minilm", "both")
# MiniLM self-attention relations (dynabert_tf/distillation/relations.py): name -> the
# projections (A, B) of softmax(A B^T / sqrt(d_r)).
MINILM_RELATIONS = {"qq": ("query", "query"), "kk": ("key", "key"), "vv": ("value", "value"),
                    "qk": ("query", "key")}

# TFLite weight/activation modes of a per-cell export, and those the elastic file supports
# (int8 / int16x8 calibrate one signature at a time).
QUANTIZATIONS = ("dynamic_range", "float16", "int8", "int16x8", "none")
ELASTIC_QUANTIZATIONS = ("dynamic_range", "float16", "none")

# Keras dtype policies a run trains under (--precision; dynabert_tf/precision.py).
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
