"""The preset layer: TensorFlow-free parts, named checkpoints, dispatch through the class given."""

import ast
import glob
import os
import subprocess
import sys

import pytest

from dynabert_tf.presets import named
from tests.helpers import REPO_ROOT

CORE_MODULES = ("layout", "choices", "grid", "files", "safetensors_header", "errors",
                "progress")


def _imports_tensorflow(*modules):
    code = "; ".join([f"import {m}" for m in modules]
                     + ["import sys", "print('tensorflow' in sys.modules)"])
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                            text=True, check=True)
    return result.stdout.strip().splitlines()[-1] == "True"


def test_named_hf_config_and_core_import_no_tensorflow():
    """What preflight and the run-time import must not pull TensorFlow in."""
    assert not _imports_tensorflow("dynabert_tf.presets", "dynabert_tf.presets.named",
                                   "dynabert_tf.presets.hf_config",
                                   "dynabert_tf.presets.vocab",
                                   *(f"dynabert_tf.core.{m}" for m in CORE_MODULES))


def _imported_modules(package):
    """{file: the dynabert_tf modules it imports (function-level imports included)}."""
    found = {}
    for path in glob.glob(os.path.join(REPO_ROOT, *package.split("."), "**", "*.py"), recursive=True):
        names = set()
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        found[os.path.relpath(path, REPO_ROOT)] = names
    return found


def test_one_direction_models_then_presets_then_io():
    """models/ imports nothing from io/; presets/ never imports the model classes (they are
    passed in) nor io.checkpoint (the convenience above both)."""
    for path, names in _imported_modules("dynabert_tf.models").items():
        assert not [n for n in names if n.startswith("dynabert_tf.io")], path
    forbidden = ("dynabert_tf.models.backbone", "dynabert_tf.models.task_model",
                 "dynabert_tf.io.checkpoint")
    for path, names in _imported_modules("dynabert_tf.presets").items():
        assert not [n for n in names if n.startswith(forbidden)], path


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
