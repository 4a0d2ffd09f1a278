"""The preset layer: TensorFlow-free parts, named checkpoints, dispatch through the class given."""

import os
import subprocess
import sys

import pytest

from dynabert_tf.presets import named

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORE_MODULES = ("layout", "choices", "grid", "files", "safetensors_header", "errors",
                "progress")


def _imports_tensorflow(*modules):
    code = "; ".join([f"import {m}" for m in modules]
                     + ["import sys", "print('tensorflow' in sys.modules)"])
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    return result.stdout.strip().splitlines()[-1] == "True"


def test_named_hf_config_and_core_import_no_tensorflow():
    """What preflight and the run-time import must not pull TensorFlow in."""
    assert not _imports_tensorflow("dynabert_tf.presets", "dynabert_tf.presets.named",
                                   "dynabert_tf.presets.hf_config",
                                   "dynabert_tf.presets.vocab",
                                   *(f"dynabert_tf.core.{m}" for m in CORE_MODULES))


def test_resolve_named_and_paths(tmp_path, monkeypatch):
    monkeypatch.setitem(named.NAMED_CHECKPOINTS, "tiny_named", lambda: str(tmp_path))
    assert named.resolve("tiny_named") == str(tmp_path)
    assert named.resolve(str(tmp_path)) == str(tmp_path)
    assert named.is_named("minilm_l6") and not named.is_named(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="minilm_l6"):
        named.resolve(str(tmp_path / "nowhere"))


def test_from_preset_resolves_a_named_checkpoint(tmp_path, monkeypatch):
    """`from_preset("<name>")` loads the named checkpoint's dir, with the class it is called on."""
    from dynabert_tf.models.backbone import DynaBertBackbone
    from dynabert_tf.models.task_model import DynaBertTaskModel
    from tests.helpers import TINY, tiny_classifier

    path = tiny_classifier(num_classes=3).save_to_preset(str(tmp_path / "m"))
    monkeypatch.setitem(named.NAMED_CHECKPOINTS, "tiny_named", lambda: path)

    class MyBackbone(DynaBertBackbone):
        pass

    class MyTaskModel(DynaBertTaskModel):
        backbone_cls = MyBackbone

    model = MyTaskModel.from_preset("tiny_named")
    assert type(model) is MyTaskModel and type(model.backbone) is MyBackbone
    assert model.num_outputs == 3 and model.bert_config == TINY
    assert type(MyBackbone.from_preset("tiny_named")) is MyBackbone
