"""The adaptive run-time: an exported DynaBERT (elastic file or per-cell export) served on the
cell that fits each request's latency target under the device's current load. No TensorFlow.

    from mobile.runtime import Runtime
    runtime = Runtime.load("out/rt_elastic")
    answer = runtime.classify("a gripping film", slo_ms=5)     # .label .cell .latency_ms

Modules: `tokenizer` (WordPiece from the file's vocabulary), `model_file` (the file, the
manifest), `signatures` (resident LiteRT signature runners), `policy` (adaptive / fixed cell),
`engine` (the request API), `server` (HTTP: `python -m mobile.serve`).
"""

from mobile.runtime.engine import Answer, Runtime
from mobile.runtime.model_file import ModelFileError, load_spec
from mobile.runtime.policy import AdaptivePolicy, FixedPolicy, Option, SlowdownEstimator

__all__ = ["Answer", "Runtime", "ModelFileError", "load_spec", "AdaptivePolicy", "FixedPolicy",
           "Option", "SlowdownEstimator"]
