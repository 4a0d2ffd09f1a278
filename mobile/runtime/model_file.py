"""What the run-time serves, read without TensorFlow: an elastic `.tflite` (a signature per cell
and sequence bucket) or a per-cell export directory, with its `manifest.json` when there is one.

    spec = load_spec("out/rt_elastic")          # or ".../elastic.tflite", or a per-cell dir
    spec.cells                                   # [CellSpec(name, metric, signatures={L: Sig})]
    spec.labels, spec.vocab, spec.seq_len, spec.lengths

The labels and the vocabulary come from the file's own metadata (`dynabert.json`,
`labels.txt`, `vocab.txt` flatbuffer metadata entries, written by `mobile.export`), read with
the flatbuffer schema that ships with `ai-edge-litert`; a metadata buffer may be stored inline
or, in a weight-shared elastic file, at an `offset` / `size` in the file. A per-cell file with
standard TFLite Metadata carries `vocab.txt` and `labels.txt` as its associated files (zipped
onto the end of the file, where MediaPipe and the Task Library read them) instead. The dev metric of
each cell (what the policy ranks by) and the benchmark's latencies come from the manifest, which
is checked first (`mobile.selection.check_manifest`: finite, non-negative numbers) with every
file it serves (`mobile.manifest_check`: present, the entry's size and sha256).
"""

import dataclasses
import json
import os

from mobile import manifest_check
from mobile import selection

MANIFEST = "manifest.json"
METADATA_JSON = "dynabert.json"
VOCAB = "vocab.txt"
LABELS = "labels.txt"
PER_CELL_SIGNATURE = "serving_default"


class ModelFileError(ValueError):
    """The path is not a model the run-time can serve (the message says why)."""


@dataclasses.dataclass(frozen=True)
class Sig:
    """One runnable signature: `file` (absolute path), `key` (signature name), `seq_len`."""
    file: str
    key: str
    seq_len: int


@dataclasses.dataclass
class CellSpec:
    """A cell: its `name` (`w0.50_d0.75`), dev `metric` (None if unknown), `signatures` by
    input length, the manifest's median idle latency (ms, base length) by thread count, and
    `size` (params or FLOPs, for ordering when there is no metric)."""
    name: str
    metric: float = None
    signatures: dict = dataclasses.field(default_factory=dict)
    manifest_latency_ms: dict = dataclasses.field(default_factory=dict)
    size: float = 0.0


@dataclasses.dataclass
class ModelSpec:
    path: str
    format: str                     # "elastic" | "per_cell"
    cells: list                     # [CellSpec], the manifest's order
    labels: list
    vocab: bytes
    seq_len: int
    task: str = None
    metric_name: str = None
    files: list = dataclasses.field(default_factory=list)   # the .tflite files, absolute

    @property
    def lengths(self):
        """Every input length some signature takes, ascending."""
        return sorted({length for c in self.cells for length in c.signatures})

    def cell(self, name):
        for c in self.cells:
            if c.name == name:
                return c
        raise KeyError(f"no cell {name!r}; the model has {', '.join(self.cell_names)}")

    @property
    def cell_names(self):
        return [c.name for c in self.cells]


def read_metadata(path):
    """{name: bytes} of a TFLite file's metadata entries, without TensorFlow."""
    from ai_edge_litert import schema_py_generated as schema

    with open(path, "rb") as f:
        content = f.read()
    try:
        model = schema.Model.GetRootAs(content, 0)
        result = {}
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            buffer = model.Buffers(entry.Buffer())
            if buffer.Offset() > 1:  # stored after the flatbuffer (weight-shared files)
                data = content[buffer.Offset():buffer.Offset() + buffer.Size()]
            else:
                data = b"" if buffer.DataIsNone() else buffer.DataAsNumpy().tobytes()
            result[entry.Name().decode()] = bytes(data)
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file
        raise ModelFileError(f"{path} is not a readable TFLite file ({e})") from e
    for name, data in associated_files(content).items():
        result.setdefault(name, data)
    return result


def associated_files(content):
    """{name: bytes} of the files TFLite Metadata zips onto the end of a model file (a
    per-cell file's vocab.txt and labels.txt); {} when there are none."""
    import io
    import zipfile

    if b"PK\x05\x06" not in content[-65558:]:  # no zip end-of-central-directory record
        return {}
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except (zipfile.BadZipFile, OSError):
        return {}


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ModelFileError(f"cannot read {path}: {e}") from e


def _latencies(entry):
    timing = entry.get("latency_ms") or {}
    return {int(t): float(v["median"]) for t, v in timing.items()
            if isinstance(v, dict) and v.get("median") is not None}


def load_spec(path):
    """The `ModelSpec` of an elastic file, an export directory (elastic or per-cell, with its
    manifest), or a single per-cell file.

    Raises:
      ModelFileError: no such path, no manifest where one is needed, unreadable files, no
        vocabulary in the file.
    """
    if not os.path.exists(path):
        raise ModelFileError(f"no model at {path}")
    path = os.path.abspath(path)
    manifest, directory, tflite = None, path, None
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, MANIFEST)):
            raise ModelFileError(f"{path} has no {MANIFEST}; give an export directory or a "
                                 f".tflite file")
        manifest = _read_json(os.path.join(path, MANIFEST))
    else:
        directory, tflite = os.path.dirname(path), path
        beside = os.path.join(directory, MANIFEST)
        if os.path.isfile(beside):
            candidate = _read_json(beside)
            names = {e.get("file") for e in candidate.get("cells") or []}
            if os.path.basename(path) in names:
                manifest = candidate
    if manifest is not None and not isinstance(manifest.get("cells"), list):
        raise ModelFileError(f"{directory}/{MANIFEST} lists no cells")
    if manifest is not None:
        try:
            selection.check_manifest(manifest)
        except selection.SelectionError as e:
            raise ModelFileError(f"{os.path.join(directory, MANIFEST)}: {e}") from None

    if manifest is not None and manifest.get("format") == "elastic":
        return _elastic_spec(directory, manifest, tflite)
    if manifest is not None:
        return _per_cell_spec(directory, manifest, tflite)
    return _bare_file_spec(tflite)


def _common(first_file, manifest):
    metadata = read_metadata(first_file)
    info = json.loads(metadata.get(METADATA_JSON, b"{}") or b"{}")
    vocab = metadata.get(VOCAB)
    if not vocab:
        raise ModelFileError(f"{first_file} carries no {VOCAB} (export with a vocabulary)")
    if "start_logits" in (info.get("outputs") or []):
        raise ModelFileError(f"{first_file} is a span (question answering) model; the run-time "
                             f"serves classification and regression heads")
    labels = [line for line in metadata.get(LABELS, b"").decode().splitlines() if line]
    labels = labels or list(info.get("labels") or (manifest or {}).get("labels") or [])
    return info, vocab, labels


def _elastic_spec(directory, manifest, tflite):
    files = {e["file"] for e in manifest["cells"]}
    if tflite is not None:
        files &= {os.path.basename(tflite)}
    if len(files) != 1:
        raise ModelFileError(f"the elastic manifest in {directory} names {len(files)} files")
    manifest_check.check_files(directory, manifest["cells"], ModelFileError)
    file = os.path.join(directory, files.pop())
    info, vocab, labels = _common(file, manifest)
    seq_len = int(manifest.get("seq_len") or info["seq_len"])
    metric_name = selection.primary_metric(manifest)
    cells = []
    for entry in manifest["cells"]:
        sigs = {seq_len: Sig(file, entry.get("signature") or entry["cell"], seq_len)}
        for length, key in (entry.get("seq_buckets") or {}).items():
            sigs[int(length)] = Sig(file, key, int(length))
        cells.append(CellSpec(entry["cell"], selection.metric_of(entry, metric_name), sigs,
                              _latencies(entry), float(entry.get("flops") or 0)))
    return ModelSpec(file, "elastic", cells, labels, vocab, seq_len, manifest.get("task"),
                     metric_name, [file])


def _per_cell_spec(directory, manifest, tflite):
    entries = manifest["cells"]
    if tflite is not None:
        entries = [e for e in entries if e.get("file") == os.path.basename(tflite)]
    if not entries:
        raise ModelFileError(f"{directory}/{MANIFEST} lists no cells")
    manifest_check.check_files(directory, entries, ModelFileError)
    files = [os.path.join(directory, e["file"]) for e in entries]
    info, vocab, labels = _common(files[0], manifest)
    seq_len = int(manifest.get("seq_len") or info["seq_len"])
    metric_name = selection.primary_metric(manifest)
    key = manifest.get("signature") or PER_CELL_SIGNATURE
    cells = [CellSpec(e["cell"], selection.metric_of(e, metric_name),
                      {seq_len: Sig(f, key, seq_len)}, _latencies(e), float(e.get("flops") or 0))
             for e, f in zip(entries, files)]
    return ModelSpec(directory, "per_cell", cells, labels, vocab, seq_len, manifest.get("task"),
                     metric_name, files)


def _bare_file_spec(tflite):
    """A .tflite without a manifest: cells from its `dynabert.json`; no dev metrics."""
    info, vocab, labels = _common(tflite, None)
    seq_len = int(info.get("seq_len") or 0)
    if info.get("format") == "elastic":
        cells = {}
        for key, sig in (info.get("signatures") or {}).items():
            cell = cells.setdefault(sig["cell"], CellSpec(sig["cell"]))
            cell.signatures[int(sig["seq_len"])] = Sig(tflite, key, int(sig["seq_len"]))
        fmt = "elastic"
    else:
        name = info.get("cell") or os.path.splitext(os.path.basename(tflite))[0]
        cells = {name: CellSpec(name, signatures={seq_len: Sig(tflite, PER_CELL_SIGNATURE,
                                                               seq_len)})}
        fmt = "per_cell"
    if not cells or not seq_len:
        raise ModelFileError(f"{tflite} has no {METADATA_JSON} naming its cells; give its "
                             f"export directory")
    return ModelSpec(tflite, fmt, list(cells.values()), labels, vocab, seq_len,
                     info.get("task"), None, [tflite])
