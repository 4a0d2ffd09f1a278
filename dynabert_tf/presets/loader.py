"""The one preset loader and saver: model dirs in and out, dispatching on the directory.

A directory is one of
  * a Hugging Face BERT / RoBERTa dir (`config.json` + `model.safetensors` + tokenizer
    files); our own stage outputs are these too, with the task head's tensors and fields, so
    every model this project writes can be read by other tools;
  * a keras-hub `BertBackbone` / `RobertaBackbone` preset (its `config.json` names a
    `class_name`);
  * a named checkpoint (`named.NAMED_CHECKPOINTS`, e.g. `minilm_l6`), resolved to its dir.

The model classes are passed in (`DynaBertBackbone.from_preset` passes itself), so this
package never imports `models.backbone` / `models.task_model`; models call it, one direction:

    backbone = load_backbone(DynaBertBackbone, "path/or/minilm_l6")
    model = load_task_model(DynaBertTaskModel, workdir + "/width_depth")   # its saved head
    model = load_task_model(DynaBertTaskModel, pretrained, head_kind="span")  # a fresh head
    save_task_model(model, out_dir, vocab_path=..., extra_config={...})
"""

import logging
import os

import numpy as np
import safetensors.numpy

from dynabert_tf.core import files, layout, safetensors_header
from dynabert_tf.models import config as model_config
from dynabert_tf.models.bert import mlm_head
from dynabert_tf.presets import hf_config, hf_tensors, keras_hub_convert, named
from dynabert_tf.presets.errors import CheckpointError
from dynabert_tf.presets.vocab import tokenizer_files
from dynabert_tf.tasks import heads as heads_lib


def read_safetensors(path):
    """Reads a safetensors file into a dict of numpy arrays, with a clear error if corrupt."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {layout.WEIGHTS} at {path}")
    try:
        return safetensors.numpy.load_file(path)
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(safetensors_header.unreadable(path, e)) from None


def _model_dir(path):
    """`path` itself, or the directory of a named checkpoint; FileNotFoundError if absent."""
    if named.is_named(path):
        return named.resolve(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"checkpoint directory {path} does not exist")
    return path


def _load_keras_hub_backbone(backbone_cls, path):
    """A keras-hub BERT or RoBERTa preset dir -> a `backbone_cls`."""
    import keras_hub  # imported lazily: only this path needs it

    reference = keras_hub.models.Backbone.from_preset(path)
    convert = keras_hub_convert.CONVERTERS.get(type(reference).__name__)
    if convert is None:
        raise CheckpointError(f"{path}: keras-hub preset of {type(reference).__name__}; "
                              f"{' and '.join(keras_hub_convert.CONVERTERS)} presets are "
                              f"supported")
    backbone = backbone_cls.from_config_object(
        model_config.BertConfig(**convert.config(reference.get_config())))
    if backbone.bert_config.model_type == "roberta":  # no segment embedding: HF's zero row
        backbone.embeddings.segment_embeddings.assign(
            np.zeros(backbone.embeddings.segment_embeddings.shape))
    by_path = {w.path: w for w in reference.weights}
    for ours, ref_path, to_ours in convert.table(backbone):
        value = to_ours(np.asarray(by_path[ref_path]))
        if tuple(value.shape) != tuple(ours.shape):
            raise CheckpointError(f"{path}: tensor {ref_path} has shape {value.shape}, the "
                                  f"model expects {tuple(ours.shape)}")
        ours.assign(value)
    return backbone


def load_backbone(backbone_cls, path):
    """A `backbone_cls` (`DynaBertBackbone`) from a Hugging Face BERT/RoBERTa dir, a keras-hub
    preset or a named checkpoint."""
    path = _model_dir(path)
    if hf_config.is_keras_hub_preset(path):
        return _load_keras_hub_backbone(backbone_cls, path)
    backbone = backbone_cls.from_config_object(hf_config.read_config(path))
    unused = hf_tensors.assign_backbone(
        backbone, read_safetensors(os.path.join(path, layout.WEIGHTS)), source=path)
    unused = [name for name in unused if not hf_tensors.is_head_tensor(name)]
    if unused:
        logging.warning("%s: ignored tensors not in the backbone: %s", path, ", ".join(unused))
    return backbone


def load_masked_lm(backbone_cls, path):
    """(backbone, `MaskedLMHead`) of a Hugging Face BERT dir whose model.safetensors holds the
    masked-LM head `cls.predictions.*` (`BertForMaskedLM`, `BertForPreTraining`)."""
    path = _model_dir(path)
    if hf_config.is_keras_hub_preset(path):
        raise CheckpointError(f"{path}: a keras-hub preset holds no masked-LM head; give a "
                              f"Hugging Face BERT dir with cls.predictions.* tensors")
    backbone = load_backbone(backbone_cls, path)
    tensors = hf_tensors.normalise(read_safetensors(os.path.join(path, layout.WEIGHTS)))
    if not hf_tensors.has_masked_lm(tensors):
        raise CheckpointError(f"{path}: {layout.WEIGHTS} has no masked-LM head "
                              f"({hf_tensors.MASKED_LM_PREFIX}* tensors)")
    head = mlm_head.MaskedLMHead.for_backbone(backbone)
    hf_tensors.assign_masked_lm(head, tensors, np.asarray(backbone.embeddings.token_embeddings),
                                source=path)
    return backbone, head


def load_task_model(cls, path, head_kind=None, num_classes=None, dropout=0.1):
    """A `cls` (`DynaBertTaskModel`: backbone `cls.backbone_cls` + task head). The head's
    weights come from the checkpoint when it has a head of that kind and shape
    (`classifier.*`, `qa_outputs.*`); otherwise it is freshly initialised.

    Args:
      head_kind: "classification", "regression" or "span"; default: the checkpoint's, or
        from `num_classes` (1: regression).
      num_classes: classification classes; default the checkpoint's `num_labels`.
    """
    path = _model_dir(path)
    backbone = load_backbone(cls.backbone_cls, path)
    if hf_config.is_keras_hub_preset(path):
        tensors, hf = {}, {}
    else:
        tensors = read_safetensors(os.path.join(path, layout.WEIGHTS))
        hf = hf_config.read_json(path)
    saved_kind = hf_config.head_kind(hf)
    if head_kind is None and num_classes is not None:  # asked for a (sequence) head size
        head_kind = "regression" if num_classes == 1 else "classification"
    head_kind = head_kind or saved_kind
    if head_kind is None:
        raise CheckpointError(f"{path}: {layout.CONFIG} describes no task head; pass head_kind")
    if head_kind == "classification" and num_classes is None:
        if "num_labels" not in hf:
            raise CheckpointError(f"{path}: {layout.CONFIG} has no num_labels; pass "
                                  f"num_classes")
        num_classes = hf["num_labels"]
    if head_kind == "classification" and not (isinstance(num_classes, int)
                                              and not isinstance(num_classes, bool)
                                              and num_classes >= 2):
        raise CheckpointError(f"{path}: a classification head needs num_labels >= 2, got "
                              f"{num_classes!r}")
    model = cls(backbone, heads_lib.make_head(head_kind, num_classes, dropout))
    if head_kind == saved_kind:
        hf_tensors.assign_head(model.head, tensors)
    return model


def save_task_model(model, path, vocab_path=None, extra_config=None):
    """Writes the task model `model` as a Hugging Face `Bert/RobertaFor<Task>`-style dir.

    config.json holds the architecture, the head's fields (`num_labels`, `problem_type`) and
    anything in `extra_config` (e.g. `id2label`, `finetuning_task`, `dynabert`); the tokenizer
    files (`vocab.tokenizer_files(vocab_path)`) are copied when given. Each file is written
    atomically (`core.files`), the weights first, so an interrupted save never leaves a torn
    checkpoint.
    """
    os.makedirs(path, exist_ok=True)
    tensors = {**hf_tensors.backbone_tensors(model.backbone),
               **hf_tensors.head_tensors(model.head)}
    hf = {**hf_config.to_hf_dict(model.bert_config),
          **hf_config.head_fields(model.head, model.bert_config), **(extra_config or {})}
    files.write_atomic(os.path.join(path, layout.WEIGHTS),
                       safetensors.numpy.save(tensors, metadata={"format": "pt"}))
    for name, source in tokenizer_files(vocab_path).items():
        target = os.path.join(path, name)
        if os.path.abspath(source) != os.path.abspath(target):
            with open(source, "rb") as f:
                files.write_atomic(target, f.read())
    files.write_json(os.path.join(path, layout.CONFIG), hf)
    return path
