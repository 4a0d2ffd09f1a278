"""Standard TFLite Metadata in a per-cell file, for the clients that read it.

MediaPipe Tasks' `TextClassifier` (Android, iOS, Web, Python) and the TFLite Task Library's
`BertNLClassifier` take a model's tokenizer, inputs and labels from the TFLite Metadata schema
(the `TFLITE_METADATA` entry, its associated files zipped onto the end of the flatbuffer),
not from this project's own entries (`dynabert.json`, ...). `classifier_metadata` writes it
for a classification cell:

    inputs   ids, mask, segment_ids (our token_ids, padding_mask, segment_ids), with a
             BertTokenizer input process unit and the vocabulary as its vocab.txt
    outputs  probability (our `probabilities`, softmax of the logits) and logits, each a
             classification head with the task's readable labels (labels.txt,
             TENSOR_AXIS_LABELS); MediaPipe returns a head per output, named so
    model    name, description, version

The writer is MediaPipe's own (`mediapipe.tasks.python.metadata.metadata_writers`,
`mediapipe` pinned in requirements.txt). Its wheels from 0.10.31 on (1.2.x included) ship
the writer's Python but not the `_pywrap_metadata_version` extension it imports, for one
function, the metadata's minimum parser version; `minimum_parser_version` is that function
(the rules of MediaPipe's `metadata_version.cc`), put in its place when the extension is
missing. Files written so equal, byte for byte, those written with mediapipe 0.10.21's
compiled extension in its place (checked on none, dynamic_range and int8 cells, both
`class_outputs`).

Span-extraction cells get the inputs, tokenizer and `start_logits` / `end_logits` outputs
(`span_metadata`); regression cells get none (no client reads a regression head). The
elastic file gets none: it has a subgraph per signature, which no client opens, and the
writers repack the flatbuffer without the shared-weight offsets it relies on.
"""

import importlib
import os
import sys
import tempfile
import types

WRITER = "mediapipe"  # the metadata writer's package (version: requirements.txt)
PROBABILITIES = "probabilities"  # our output name: softmax of the logits
# Metadata names of the outputs: "probability" is the name the Task Library's
# BertNLClassifier picks its score tensor by (else the first output).
OUTPUT_METADATA_NAMES = {PROBABILITIES: "probability", "logits": "logits"}
OUTPUT_DESCRIPTIONS = {
    PROBABILITIES: "Probability of each label (softmax of the logits); they sum to 1.",
    "logits": "Logits of the labels (unnormalized log-probabilities).",
}
# The TFLite tensor names of a per-cell file's inputs (`tflite.to_saved_model`).
INPUT_TENSOR_NAMES = {"token_ids": "serving_default_token_ids:0",
                      "padding_mask": "serving_default_padding_mask:0",
                      "segment_ids": "serving_default_segment_ids:0"}
# Which clients open which file (the manifest's `clients`).
# Which clients open which file (the manifest's `clients`), as measured by
# benchmarks/clients.py (benchmarks/results/clients.md): MediaPipe opens a classification
# file of every quantization; the Task Library's BertNLClassifier (tflite-support 0.4.4) only
# a file with one output (`--class_outputs=probabilities`) and kernels its bundled runtime
# has (not dynamic_range's FULLY_CONNECTED v12, nor int16x8).
CLASS_OUTPUTS = ("both", "probabilities")
TASK_LIBRARY_QUANTIZATIONS = ("none", "float16", "int8")
# BertQuestionAnswerer (tflite-support 0.4.4): a fixed input length, and the modes measured to
# open (int8 span files not measured: they need SQuAD calibration text).
QUESTION_ANSWERER_SEQ_LEN = 384
QUESTION_ANSWERER_QUANTIZATIONS = ("none", "float16")
ELASTIC_CLIENTS = ["litert", "dynabert_runtime"]


def per_cell_clients(head_kind, class_outputs, quantization, standard_metadata, seq_len):
    """The clients that open a per-cell file of this kind."""
    if head_kind == "span":
        # The Task Library's BertQuestionAnswerer packs exactly 384 tokens
        # (benchmarks/question_answerer.py: its answers equal LiteRT's at 384).
        if (standard_metadata and seq_len == QUESTION_ANSWERER_SEQ_LEN
                and quantization in QUESTION_ANSWERER_QUANTIZATIONS):
            return ["litert", "tflite_task_bert_question_answerer"]
        return ["litert"]
    clients = ["litert", "dynabert_runtime"]
    if head_kind == "classification" and standard_metadata:
        clients.append("mediapipe_text_classifier")
        if class_outputs == "probabilities" and quantization in TASK_LIBRARY_QUANTIZATIONS:
            clients.append("tflite_task_bert_nl_classifier")
    return clients
# What an app does to text before the client's tokenizer, so that its ids equal the
# project's (`mobile.runtime.tokenizer.client_text`): the clients' BertTokenizer does not
# strip accents, the project's (BERT uncased) does.
CLIENT_NORMALIZATION = "strip accents: NFD, then drop combining marks (Unicode Mn)"

def writer_version():
    """"mediapipe X.Y.Z": the metadata writer this export used."""
    from importlib import metadata

    return f"{WRITER} {metadata.version(WRITER)}"


_VERSION_MODULE = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"


def minimum_parser_version(metadata_buffer):
    """The minimum metadata parser version ("1.1.0") a ModelMetadata flatbuffer needs: the
    newest schema member it uses (MediaPipe's / tflite-support's `metadata_version.cc`)."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    versions = [(1, 0, 0)]
    use = versions.append

    def files(associated):
        for f in associated or []:
            if f.type == fb.AssociatedFileType.VOCABULARY:
                use((1, 0, 1))
            if f.type == getattr(fb.AssociatedFileType, "SCANN_INDEX_FILE", -1):
                use((1, 4, 0))
            if f.version is not None:
                use((1, 4, 1))

    def process_units(units):
        for unit in units or []:
            kind = unit.optionsType
            if kind == fb.ProcessUnitOptions.BertTokenizerOptions:
                use((1, 1, 0))
                files(unit.options.vocabFile)
            elif kind == fb.ProcessUnitOptions.SentencePieceTokenizerOptions:
                use((1, 1, 0))
                files(unit.options.sentencePieceModel)
                files(unit.options.vocabFile)
            elif kind == fb.ProcessUnitOptions.RegexTokenizerOptions:
                use((1, 2, 1))
                files(unit.options.vocabFile)

    def tensors(metadata):
        for tensor in metadata or []:
            content = tensor.content
            if content is not None and content.contentPropertiesType == getattr(
                    fb.ContentProperties, "AudioProperties", -1):
                use((1, 3, 0))
            process_units(tensor.processUnits)
            files(tensor.associatedFiles)

    model = fb.ModelMetadataT.InitFromObj(
        fb.ModelMetadata.GetRootAsModelMetadata(bytes(metadata_buffer), 0))
    for subgraph in model.subgraphMetadata or []:
        tensors(subgraph.inputTensorMetadata)
        tensors(subgraph.outputTensorMetadata)
        if subgraph.inputProcessUnits:
            use((1, 1, 0))
            process_units(subgraph.inputProcessUnits)
        if subgraph.outputProcessUnits:
            use((1, 1, 0))
            process_units(subgraph.outputProcessUnits)
        if subgraph.inputTensorGroups or subgraph.outputTensorGroups:
            use((1, 2, 0))
        if getattr(subgraph, "customMetadata", None):
            use((1, 5, 0))
        files(subgraph.associatedFiles)
    files(model.associatedFiles)
    return ".".join(str(v) for v in max(versions))


def _writer():
    """MediaPipe's `metadata_writer` and `metadata_info` modules (the version extension
    replaced by `minimum_parser_version` where the wheel lacks it)."""
    try:
        importlib.import_module(_VERSION_MODULE)
    except ImportError:
        parts = _VERSION_MODULE.split(".")
        for i in range(3, len(parts)):  # mediapipe.tasks.cc ... (not in the wheel)
            name = ".".join(parts[:i])
            if name not in sys.modules:
                package = types.ModuleType(name)
                package.__path__ = []
                sys.modules[name] = package
        shim = types.ModuleType(_VERSION_MODULE)
        shim.GetMinimumMetadataParserVersion = minimum_parser_version
        sys.modules[_VERSION_MODULE] = shim
        setattr(sys.modules[".".join(parts[:-1])], parts[-1], shim)
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_info
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer
    return metadata_writer, metadata_info


def _general(writer, info, general):
    writer._general_md = info.GeneralMd(  # pylint: disable=protected-access
        name=general.get("name"), version=general.get("version"),
        description=general.get("description"), author=general.get("author"))


def _bert_input(writer, mw, tmp, vocab_bytes):
    vocab_path = os.path.join(tmp, "vocab.txt")
    with open(vocab_path, "wb") as f:
        f.write(vocab_bytes)
    writer.add_bert_text_input(mw.BertTokenizer(vocab_path), INPUT_TENSOR_NAMES["token_ids"],
                               INPUT_TENSOR_NAMES["padding_mask"],
                               INPUT_TENSOR_NAMES["segment_ids"])


def signature_outputs(tflite_bytes):
    """Our output names (the signature's) in the order of the subgraph's outputs: the
    order of a client's heads."""
    from mediapipe.tasks.metadata import schema_py_generated as schema

    model = schema.Model.GetRootAs(bytes(tflite_bytes), 0)
    signature = model.SignatureDefs(0)
    by_tensor = {signature.Outputs(i).TensorIndex(): signature.Outputs(i).Name().decode()
                 for i in range(signature.OutputsLength())}
    subgraph = model.Subgraphs(signature.SubgraphIndex())
    return [by_tensor[subgraph.Outputs(i)] for i in range(subgraph.OutputsLength())]


def classifier_metadata(tflite_bytes, vocab_bytes, labels, output_names, general):
    """`tflite_bytes` with TFLite Metadata for a text classifier (module doc).

    Args:
      vocab_bytes: the WordPiece vocabulary (vocab.txt) the BertTokenizer unit carries.
      labels: readable class names, in class-index order.
      output_names: our outputs in the subgraph's order (`signature_outputs`).
      general: {"name", "description", "version", "author"}.
    """
    def add_outputs(writer, mw):
        for name in output_names:
            writer.add_classification_output(
                mw.Labels().add(list(labels)), name=OUTPUT_METADATA_NAMES[name],
                description=OUTPUT_DESCRIPTIONS[name])

    return _with_metadata(tflite_bytes, vocab_bytes, general, add_outputs)


def span_metadata(tflite_bytes, vocab_bytes, output_names, general):
    """`tflite_bytes` with TFLite Metadata for span extraction: the BERT inputs and
    tokenizer, and `start_logits` / `end_logits` (in `output_names`' order) by name."""
    def add_outputs(writer, mw):
        for name in output_names:
            writer.add_feature_output(name=name, description=f"{name} [1, seq_len]")

    return _with_metadata(tflite_bytes, vocab_bytes, general, add_outputs)


def _with_metadata(tflite_bytes, vocab_bytes, general, add_outputs):
    """`tflite_bytes` with the general info, the BERT inputs and tokenizer, and the outputs
    `add_outputs(writer, metadata_writers_module)` declares."""
    mw, info = _writer()
    writer = mw.MetadataWriter(bytearray(tflite_bytes))
    _general(writer, info, general)
    with tempfile.TemporaryDirectory(prefix="dynabert-metadata-") as tmp:
        _bert_input(writer, mw, tmp, vocab_bytes)
        add_outputs(writer, mw)
        content, _ = writer.populate()
    return bytes(content)


def associated_files(tflite_bytes):
    """{name: bytes} of the files zipped onto a TFLite file by its standard metadata."""
    from mobile.runtime.model_file import associated_files as read

    return read(bytes(tflite_bytes))
