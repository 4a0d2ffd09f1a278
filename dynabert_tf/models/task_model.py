"""Backbone + task head: the model users train, call at any width and depth, and save.

    model = DynaBertTaskModel(backbone, ClassificationHead(num_classes=2))
    logits = model(inputs, width_mult=0.5, depth_mult=0.75)      # any cell, same weights
    logits = model(inputs, subnetwork=LayerwiseConfig(...))      # per-layer sizes (layerwise)
    model.save_to_preset("runs/rt/mine"); DynaBertTaskModel.from_preset("runs/rt/mine")

Called plainly it returns the head's output (`logits` [batch, classes]; a span head's
`{"start_logits", "end_logits"}` [batch, seq]), so `model.fit` works with a standard loss;
with `return_dict=True` it also returns the backbone's outputs, for distillation.
"""

import keras

from dynabert_tf.core import grid as grid_lib
from dynabert_tf.models import backbone as backbone_lib
from dynabert_tf.presets import loader as preset_loader
from dynabert_tf.tasks import heads as heads_lib


@keras.saving.register_keras_serializable(package="dynabert_tf")
class DynaBertTaskModel(keras.Model):
    """An elastic backbone (`DynaBertBackbone`) with one `tasks.heads.TaskHead`."""

    backbone_cls = backbone_lib.DynaBertBackbone  # what `from_preset` builds the encoder of

    def __init__(self, backbone, head, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.head = head
        if not head.built:
            head.build(backbone.bert_config.hidden_size)
        self.built = True

    @property
    def bert_config(self):
        return self.backbone.bert_config

    @property
    def num_outputs(self):
        """Units of the head per example (classes; 1 for regression; 2 for span positions)."""
        return self.head.units

    def __call__(self, *args, **kwargs):
        backbone_lib.check_cell_arguments(kwargs, self.bert_config)
        return super().__call__(*args, **kwargs)

    def call(self, inputs, width_mult=1.0, depth_mult=1.0, head_mask=None, training=None,
             return_dict=False, return_qkv=False, subnetwork=None, hidden_mult=1.0):
        """inputs as the backbone's -> the head's output (see the module doc); `return_qkv`
        adds the backbone's `last_layer_qkv` to the `return_dict` outputs; `subnetwork` (an
        `elastic.layerwise.LayerwiseConfig`) runs that per-layer sub-network instead of a
        grid cell; `hidden_mult` as the backbone's (the head reads the kept hidden units)."""
        if subnetwork is not None:
            outputs = self.call_subnetwork(inputs, subnetwork, head_mask=head_mask,
                                           training=training, return_qkv=return_qkv)
        else:
            outputs = self.call_depths(inputs, width_mult, (depth_mult,), head_mask=head_mask,
                                       training=training, return_qkv=return_qkv,
                                       hidden_mult=hidden_mult)[depth_mult]
        if return_dict:
            return outputs
        if len(self.head.output_names) == 1:
            return outputs[self.head.output_names[0]]
        return {name: outputs[name] for name in self.head.output_names}

    def call_depths(self, inputs, width_mult=1.0, depth_mults=(1.0,), head_mask=None,
                    training=None, return_qkv=False, hidden_mult=1.0):
        """{depth_mult: backbone outputs + head outputs}, leading layers shared.

        See `DynaBertBackbone.call_grid`; each depth gets the head on its own outputs.
        """
        grid = self.call_grid(inputs, (width_mult,), depth_mults, head_mask=head_mask,
                              training=training, return_qkv=return_qkv,
                              hidden_mults=(hidden_mult,))
        return {depth_mult: grid[grid_lib.cell_key(width_mult, depth_mult, hidden_mult)]
                for depth_mult in depth_mults}

    def call_subnetwork(self, inputs, subnetwork, head_mask=None, training=None,
                        embedded=None, return_qkv=False):
        """Backbone outputs + head outputs of the per-layer `subnetwork`
        (`DynaBertBackbone.call_subnetwork`)."""
        outputs = self.backbone.call_subnetwork(inputs, subnetwork, head_mask=head_mask,
                                                training=training, embedded=embedded,
                                                return_qkv=return_qkv)
        return {**outputs, **self.head(outputs, training=training)}

    def call_grid(self, inputs, width_mults=(1.0,), depth_mults=(1.0,), head_mask=None,
                  training=None, embedded=None, return_qkv=False, hidden_mults=(1.0,)):
        """{cell: backbone outputs + head outputs}: embeddings once per hidden size, leading
        layers shared within a width (`DynaBertBackbone.call_grid`, which also explains
        `embedded`, `return_qkv`, `hidden_mults` and the cell keys); each cell gets the head
        on its own outputs."""
        grid = self.backbone.call_grid(inputs, width_mults=width_mults, depth_mults=depth_mults,
                                       head_mask=head_mask, training=training,
                                       embedded=embedded, return_qkv=return_qkv,
                                       hidden_mults=hidden_mults)
        return {cell: {**outputs, **self.head(outputs, training=training)}
                for cell, outputs in grid.items()}

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "head": keras.saving.serialize_keras_object(self.head)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        config["head"] = keras.saving.deserialize_keras_object(config["head"])
        return cls(**config)

    @classmethod
    def from_preset(cls, path, head_kind=None, num_classes=None, dropout=0.1):
        """Loads a saved model dir (or a pretrained HF / keras-hub / named checkpoint, which
        gets a fresh head of `head_kind`); see `presets.loader.load_task_model`."""
        return preset_loader.load_task_model(cls, path, head_kind=head_kind,
                                             num_classes=num_classes, dropout=dropout)

    def save_to_preset(self, path, vocab_path=None, extra_config=None):
        """Writes a Hugging Face-layout dir that `from_preset` (and `transformers`) reads
        (`presets.loader.save_task_model`)."""
        return preset_loader.save_task_model(self, path, vocab_path=vocab_path,
                                             extra_config=extra_config)


def classifier(backbone, num_classes, dropout=0.1):
    """A task model with a classification head, or a regression head when num_classes == 1."""
    kind = "regression" if num_classes == 1 else "classification"
    return DynaBertTaskModel(backbone, heads_lib.make_head(kind, num_classes, dropout))
