"""python -m mobile.export: per-cell TFLite files (or one elastic file) and a manifest.

    python -m mobile.export --model_dir=WORKDIR --output_dir=OUT \
        [--quantization=dynamic_range|float16|int8|int16x8|none] [--seq_len=128] \
        [--cells=all|w0.50_d0.75,...] [--representative_examples=200] \
        [--format=per_cell|elastic [--seq_buckets=32,64]] [--class_outputs=both|probabilities]

Parses the flags and calls `mobile.export.export_model` (the package's doc describes what
is written), then prints the summary table. The flags are checked first (exit status 2), then
`export_model` reads the model dir's config.json and eval grid and checks the chosen cells
before it imports TensorFlow to load the model.
"""

from dynabert_tf.core import choices
from mobile import cli
from mobile import export as export_lib


def define_flags(flag_values):
    from absl import flags

    define = {"flag_values": flag_values}
    flags.DEFINE_string("model_dir", None, "Training workdir (uses WORKDIR/final) or a model "
                        "directory with config.json.", **define)
    flags.DEFINE_string("output_dir", None, "Where the .tflite files and manifest.json go.",
                        **define)
    flags.DEFINE_string("quantization", "dynamic_range",
                        "One of " + ", ".join(choices.QUANTIZATIONS), **define)
    flags.DEFINE_integer("seq_len", 128, "Static sequence length of the exported inputs.",
                         **define)
    flags.DEFINE_string("cells", "all", "'all' or comma-separated cell names (w0.50_d0.75,...).",
                        **define)
    flags.DEFINE_integer("representative_examples", 200,
                         "Training examples used to calibrate int8 / int16x8 quantization.",
                         **define)
    flags.DEFINE_string("data_dir", None, "Task data (GLUE tasks); built-in tasks need none.",
                        **define)
    flags.DEFINE_enum("format", "per_cell", list(export_lib.FORMATS), "per_cell: one .tflite "
                      "per cell; elastic: one elastic.tflite with a signature per cell, weights "
                      "stored once.", **define)
    flags.DEFINE_string("seq_buckets", "", "With --format=elastic: shorter sequence lengths "
                        "(e.g. 32,64), each a signature {cell}_s{L} per cell.", **define)
    flags.DEFINE_enum("class_outputs", "both", ["both", "probabilities"], "Per-cell "
                      "classification files: both: logits and probabilities (their softmax; "
                      "MediaPipe's classifications[0]); probabilities: those alone (also opens "
                      "in the Task Library's BertNLClassifier, which takes one output).",
                      **define)


def check_flags(flags_values):
    """UsageError naming the first flag that cannot work (`export_lib.check_settings`)."""
    f = flags_values
    try:
        export_lib.check_settings(f.output_dir, f.quantization, f.seq_len,
                                  f.representative_examples, f.format, f.seq_buckets,
                                  f.class_outputs)
    except export_lib.ExportError as e:
        raise cli.UsageError(str(e)) from None


def main(argv, flags_values):
    cli.check_arguments(argv, flags_values, "model_dir", "output_dir")
    check_flags(flags_values)
    manifest = export_lib.export_model(
        flags_values.model_dir, flags_values.output_dir, flags_values.quantization,
        flags_values.seq_len, flags_values.cells, flags_values.representative_examples,
        data_dir=flags_values.data_dir, export_format=flags_values.format,
        seq_buckets=flags_values.seq_buckets, class_outputs=flags_values.class_outputs)
    print(export_lib.format_summary(manifest))
    print(f"wrote {len(manifest['cells'])} cells to {flags_values.output_dir}/"
          f"{export_lib.MANIFEST}")


if __name__ == "__main__":
    cli.run_main(main, define_flags)
