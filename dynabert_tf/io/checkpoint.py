"""One-call checkpoint loading and saving with this project's model classes: a convenience
above `models/` and `presets/` (it imports both; neither imports it).

    backbone = load_backbone("path/to/hf_or_keras_hub_dir")     # or a named one: "minilm_l6"
    model = load_task_model(workdir + "/width_depth")           # backbone + its task head
    model = load_task_model(pretrained_dir, head_kind="span")   # fresh head, pretrained encoder
    backbone, mlm_head = load_masked_lm("path/to/bert-base-uncased")
    save_task_model(model, out_dir, vocab_path=..., extra_config={...})

The same as `DynaBertBackbone.from_preset`, `DynaBertTaskModel.from_preset` and
`model.save_to_preset`; the formats (Hugging Face BERT/RoBERTa dirs, keras-hub presets) and
the dispatch between them are `presets.loader`'s.
"""

from dynabert_tf.models.backbone import DynaBertBackbone
from dynabert_tf.models.task_model import DynaBertTaskModel
from dynabert_tf.presets import loader
from dynabert_tf.presets.errors import CheckpointError  # noqa: F401 - what the loaders raise


def load_backbone(path):
    """A `DynaBertBackbone` from a Hugging Face BERT/RoBERTa dir, a keras-hub preset or a
    named checkpoint."""
    return DynaBertBackbone.from_preset(path)


def load_task_model(path, head_kind=None, num_classes=None, dropout=0.1):
    """A `DynaBertTaskModel`: `presets.loader.load_task_model` explains the arguments."""
    return DynaBertTaskModel.from_preset(path, head_kind=head_kind, num_classes=num_classes,
                                         dropout=dropout)


def load_masked_lm(path):
    """(backbone, `MaskedLMHead`) of a Hugging Face BERT dir with a masked-LM head."""
    return loader.load_masked_lm(DynaBertBackbone, path)


def save_task_model(model, path, vocab_path=None, extra_config=None):
    """Writes `model` as a Hugging Face-layout dir (`presets.loader.save_task_model`)."""
    return model.save_to_preset(path, vocab_path=vocab_path, extra_config=extra_config)
