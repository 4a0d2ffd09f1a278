"""Checkpoints in and out, above `models/`: the one place that knows file formats.

    loader       load_backbone / load_task_model / load_masked_lm / save_task_model, dispatching
                 on the directory: a Hugging Face BERT or RoBERTa dir (our own stage outputs
                 are those too), a keras-hub BERT / RoBERTa preset or a named checkpoint
    hf_config    Hugging Face `config.json` <-> `models.config.BertConfig`
    hf_tensors   Hugging Face tensor names and layouts: the backbone, the task heads, the
                 masked-LM head
    keras_hub_convert   keras-hub BERT / RoBERTa presets -> our config fields and weights
    vocab        the tokenizer files of a vocabulary (vocab.txt; vocab.json + merges.txt)
    named        named checkpoints (`minilm_l6`) and `resolve(name_or_path)`
    errors       CheckpointError, what a checkpoint that does not fit the model raises

`hf_config`, `vocab` and `named` import no TensorFlow (preflight and settings use them).

`models/` classes reach this package through `from_preset` / `save_to_preset`, which pass
the class (or model) in; nothing here imports `models.backbone` or `models.task_model`.
This `__init__` imports nothing, so `presets.named` stays importable without TensorFlow.
"""
