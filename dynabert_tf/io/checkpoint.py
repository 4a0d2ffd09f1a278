"""Checkpoints in and out: Hugging Face BERT/RoBERTa directories and keras-hub BERT/RoBERTa
presets.

Our own stage outputs use the Hugging Face layout too (config.json + model.safetensors +
vocab.txt), so every model this project writes can be read by other tools, and one loader
serves pretrained checkpoints and our own.

    backbone = load_backbone("path/to/hf_or_keras_hub_dir")
    model = load_task_model(workdir + "/width_depth")           # backbone + its task head
    model = load_task_model(pretrained_dir, head_kind="span")   # fresh head, pretrained encoder
    save_task_model(model, out_dir, vocab_path=..., extra_config={...})
"""

import logging
import os
import shutil

import numpy as np
import safetensors
import safetensors.numpy

from dynabert_tf.core import files, safetensors_header
from dynabert_tf.models import config as model_config
from dynabert_tf.models.backbone import DynaBertBackbone
from dynabert_tf.models.bert import convert as bert_convert
from dynabert_tf.models.roberta import convert as roberta_convert
from dynabert_tf.models.task_model import DynaBertTaskModel
from dynabert_tf.tasks import heads as heads_lib

SAFETENSORS = "model.safetensors"
VOCAB = "vocab.txt"
ROBERTA_VOCAB, MERGES = "vocab.json", "merges.txt"
_IGNORED = ("embeddings.position_ids",)  # a buffer, not a weight
_PREFIXES = ("bert.", "roberta.")


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model: names and shapes in the message."""


def _normalise_name(name):
    """Strips the `bert.` / `roberta.` prefix; maps TF-era LayerNorm gamma/beta to weight/bias."""
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
    if ".LayerNorm." in name:
        name = name.replace(".LayerNorm.gamma", ".LayerNorm.weight").replace(
            ".LayerNorm.beta", ".LayerNorm.bias")
    return name


def read_safetensors(path):
    """Reads a safetensors file into a dict of numpy arrays, with a clear error if corrupt."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {SAFETENSORS} at {path}")
    try:
        return safetensors.numpy.load_file(path)
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(safetensors_header.unreadable(path, e)) from None


def assign_hf_tensors(backbone, tensors, source="checkpoint"):
    """Assigns HF-named `tensors` to `backbone`; returns the names it did not use.

    Raises CheckpointError naming every missing tensor, or a tensor of the wrong shape.
    """
    tensors = {_normalise_name(k): v for k, v in tensors.items()}
    table = bert_convert.hf_table(backbone)
    missing = [name for _, name, _, _ in table if name not in tensors]
    if missing:
        raise CheckpointError(f"{source}: missing tensors {', '.join(missing[:8])}"
                              + (f" and {len(missing) - 8} more" if len(missing) > 8 else ""))
    for variable, name, to_ours, from_ours in table:
        value = tensors[name]
        expected = from_ours(np.zeros(variable.shape, "float32")).shape
        if tuple(value.shape) != tuple(expected):
            raise CheckpointError(f"{source}: tensor {name} has shape {tuple(value.shape)}, "
                                  f"the model expects {tuple(expected)}")
        variable.assign(to_ours(value).astype(variable.dtype))
    used = {name for _, name, _, _ in table}
    return sorted(set(tensors) - used - set(_IGNORED))


def backbone_to_hf_tensors(backbone):
    """The backbone's weights as HF-named numpy arrays (the inverse of assign_hf_tensors)."""
    prefix = backbone.bert_config.model_type + "."
    return {prefix + name: np.ascontiguousarray(from_ours(np.asarray(variable)))
            for variable, name, _, from_ours in bert_convert.hf_table(backbone)}


def _is_keras_hub_preset(path):
    config_path = os.path.join(path, "config.json")
    try:
        return "class_name" in files.read_json(config_path)
    except (OSError, ValueError):
        return False


def _load_keras_hub_backbone(path):
    """A keras-hub BERT or RoBERTa preset dir -> our backbone."""
    import keras_hub  # imported lazily: only this path needs it

    reference = keras_hub.models.Backbone.from_preset(path)
    converters = {keras_hub.models.BertBackbone: bert_convert,
                  keras_hub.models.RobertaBackbone: roberta_convert}
    convert = converters.get(type(reference))
    if convert is None:
        raise CheckpointError(f"{path}: keras-hub preset of {type(reference).__name__}; "
                              f"BertBackbone and RobertaBackbone presets are supported")
    backbone = DynaBertBackbone.from_config_object(model_config.BertConfig(
        **convert.keras_hub_config(reference.get_config())))
    if convert is roberta_convert:  # keras-hub has no segment embedding: HF's zero row
        backbone.embeddings.segment_embeddings.assign(
            np.zeros(backbone.embeddings.segment_embeddings.shape))
    by_path = {w.path: w for w in reference.weights}
    for ours, ref_path, to_ours in convert.keras_hub_table(backbone):
        value = to_ours(np.asarray(by_path[ref_path]))
        if tuple(value.shape) != tuple(ours.shape):
            raise CheckpointError(f"{path}: tensor {ref_path} has shape {value.shape}, the "
                                  f"model expects {tuple(ours.shape)}")
        ours.assign(value)
    return backbone


def _check_dir(path):
    if not os.path.isdir(path):
        raise FileNotFoundError(f"checkpoint directory {path} does not exist")


def load_backbone(path):
    """A Hugging Face BERT/RoBERTa dir (config.json + model.safetensors) or a keras-hub preset."""
    _check_dir(path)
    if _is_keras_hub_preset(path):
        return _load_keras_hub_backbone(path)
    backbone = DynaBertBackbone.from_config_object(model_config.BertConfig.from_json_file(path))
    unused = assign_hf_tensors(backbone, read_safetensors(os.path.join(path, SAFETENSORS)),
                               source=path)
    head_names = {f"{head.hf_prefix}.{w}" for head in heads_lib.HEADS.values()
                  for w in ("weight", "bias")}
    unused = [name for name in unused if name not in head_names and not name.startswith("cls.")]
    if unused:
        logging.warning("%s: ignored tensors not in the backbone: %s", path, ", ".join(unused))
    return backbone


def load_masked_lm(path):
    """(backbone, `MaskedLMHead`) of a Hugging Face BERT dir whose model.safetensors holds the
    masked-LM head `cls.predictions.*` (`BertForMaskedLM`, `BertForPreTraining`)."""
    from dynabert_tf.models.bert import mlm_head

    backbone = load_backbone(path)
    if _is_keras_hub_preset(path):
        raise CheckpointError(f"{path}: a keras-hub preset holds no masked-LM head; give a "
                              f"Hugging Face BERT dir with cls.predictions.* tensors")
    tensors = {_normalise_name(k): v for k, v in
               read_safetensors(os.path.join(path, SAFETENSORS)).items()}
    if not any(name.startswith(mlm_head.HF_PREFIX) for name in tensors):
        raise CheckpointError(f"{path}: {SAFETENSORS} has no masked-LM head "
                              f"({mlm_head.HF_PREFIX}* tensors)")
    head = mlm_head.MaskedLMHead.for_backbone(backbone)
    try:
        head.assign_hf_tensors(tensors, np.asarray(backbone.embeddings.token_embeddings),
                               source=path)
    except ValueError as e:
        raise CheckpointError(str(e)) from None
    return backbone, head


def read_hf_config(path):
    return files.read_json(os.path.join(path, "config.json"), "config.json")


def load_task_model(path, head_kind=None, num_classes=None, dropout=0.1):
    """Backbone + task head. The head's weights come from the checkpoint when it has a head of
    that kind and shape (`classifier.*`, `qa_outputs.*`); otherwise it is freshly initialised.

    Args:
      head_kind: "classification", "regression" or "span"; default: the checkpoint's, or
        from `num_classes` (1: regression).
      num_classes: classification classes; default the checkpoint's `num_labels`.
    """
    _check_dir(path)
    backbone = load_backbone(path)
    if _is_keras_hub_preset(path):
        tensors, hf = {}, {}
    else:
        tensors, hf = read_safetensors(os.path.join(path, SAFETENSORS)), read_hf_config(path)
    saved_kind = heads_lib.head_kind_of_hf_config(hf)
    if head_kind is None and num_classes is not None:  # asked for a (sequence) head size
        head_kind = "regression" if num_classes == 1 else "classification"
    head_kind = head_kind or saved_kind
    if head_kind is None:
        raise CheckpointError(f"{path}: config.json describes no task head; pass head_kind")
    if head_kind == "classification" and num_classes is None:
        if "num_labels" not in hf:
            raise CheckpointError(f"{path}: config.json has no num_labels; pass num_classes")
        num_classes = hf["num_labels"]
    if head_kind == "classification" and not (isinstance(num_classes, int)
                                              and not isinstance(num_classes, bool)
                                              and num_classes >= 2):
        raise CheckpointError(f"{path}: a classification head needs num_labels >= 2, got "
                              f"{num_classes!r}")
    model = DynaBertTaskModel(backbone, heads_lib.make_head(head_kind, num_classes, dropout))
    if head_kind == saved_kind:
        model.head.assign_hf_tensors(tensors)
    return model


def tokenizer_files(vocab_path):
    """{standard name: source path} of the files a tokenizer needs: vocab.txt (BERT
    WordPiece) or vocab.json + merges.txt (RoBERTa byte-level BPE, beside each other)."""
    if not vocab_path:
        return {}
    if vocab_path.endswith(".json"):
        return {ROBERTA_VOCAB: vocab_path,
                MERGES: os.path.join(os.path.dirname(vocab_path), MERGES)}
    return {VOCAB: vocab_path}


def save_task_model(model, path, vocab_path=None, extra_config=None):
    """Writes `model` as a Hugging Face `Bert/RobertaFor<Task>`-style directory.

    config.json holds the architecture, the head's fields (`num_labels`, `problem_type`) and
    anything in `extra_config` (e.g. `id2label`, `finetuning_task`, `dynabert`); the tokenizer
    files (`tokenizer_files(vocab_path)`) are copied when given. Each file is written
    atomically (`io.files`), the weights first, so an interrupted save never leaves a torn
    checkpoint.
    """
    os.makedirs(path, exist_ok=True)
    tensors = {**backbone_to_hf_tensors(model.backbone), **model.head.hf_tensors()}
    hf = {**model.bert_config.to_hf_dict(), **model.head.hf_config()}
    family = "Roberta" if model.bert_config.model_type == "roberta" else "Bert"
    hf["architectures"] = [name.replace("Bert", family, 1) for name in hf["architectures"]]
    hf.update(extra_config or {})
    files.write_atomic(os.path.join(path, SAFETENSORS),
                       safetensors.numpy.save(tensors, metadata={"format": "pt"}))
    for name, source in tokenizer_files(vocab_path).items():
        target = os.path.join(path, name)
        if os.path.abspath(source) != os.path.abspath(target):
            shutil.copyfile(source, target)
    files.write_json(os.path.join(path, "config.json"), hf)
    return path
