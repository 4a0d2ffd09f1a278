"""Manifests cannot lie (issue 26, cases 3, 5, 6, 7 and selection's part of 4): every reader of
an export checks each file it uses against its manifest entry's size and sha256, a re-export
keeps only entries whose files still match, a benchmark keeps each thread count's results, and
selection refuses non-finite or negative numbers.

One tiny export (two float cells, seq_len 16) is built and benchmarked at one thread once per
module; each test works on a copy of it, and the original is checked byte for byte at the end.
"""

import json
import math
import os
import shutil

import pytest
from absl import flags

from mobile import benchmark as benchmark_tool
from mobile import select as select_tool
from mobile import cli, litert, manifest_check, selection
from mobile import export as export_lib
from mobile.errors import ExportError
from mobile.export import manifest as manifest_lib
from mobile.litert import directory as benchmark_lib
from mobile.runtime import ModelFileError, load_spec
from tests.mobile.export.test_mobile_export import make_workdir
from tests.test_bad_inputs import check_one_line, run_in_process, snapshot

SEQ_LEN = 16
FULL, SMALL = "w1.00_d1.00", "w0.25_d0.50"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{"work", "out", "before"}: a tiny workdir, its export benchmarked at 1 thread, and the
    snapshot of the export; at the end, the export must be byte for byte as it was."""
    work = make_workdir(str(tmp_path_factory.mktemp("work")))
    out = str(tmp_path_factory.mktemp("export"))
    export_lib.export_model(work, out, "none", SEQ_LEN, f"{FULL},{SMALL}", progress=False)
    litert.benchmark_dir(out, threads=(1,), runs=2, warmup=0, rounds=1, plot=False,
                         progress=False)
    before = snapshot(out)
    yield {"work": work, "out": out, "before": before}
    assert snapshot(out) == before


@pytest.fixture
def copy(exported, tmp_path):
    """A copy of the export that a test may break."""
    path = str(tmp_path / "export")
    shutil.copytree(exported["out"], path)
    return path


def read(path, name="manifest.json"):
    with open(os.path.join(path, name)) as f:
        return json.load(f)


def write_manifest(path, manifest):
    with open(os.path.join(path, "manifest.json"), "w") as f:
        json.dump(manifest, f)


def entry_of(manifest, cell):
    return next(e for e in manifest["cells"] if e["cell"] == cell)


def run_tool(tool, args, capsys):
    """(exit status, stderr) of `python -m mobile.<tool> args`, in process."""
    flag_values = cli.define(tool.define_flags, flags.FlagValues())

    def call():
        cli.call(tool.main, cli.parse(flag_values, [tool.__name__, *args]), flag_values)

    return run_in_process(call, capsys)


# issue case 3
def test_benchmark_keeps_each_thread_counts_results(copy):
    earlier = read(copy)
    result = litert.benchmark_dir(copy, threads=(2,), runs=2, warmup=0, rounds=1, plot=False,
                                  progress=False)
    manifest, benchmark = read(copy), read(copy, litert.BENCHMARK)
    assert benchmark == result
    assert benchmark["threads"] == manifest["benchmark"]["threads"] == [1, 2]
    assert benchmark["timed_threads"] == [2]
    for old, new, timed in zip(earlier["cells"], manifest["cells"], benchmark["cells"]):
        assert list(new["latency_ms"]) == ["1", "2"] and new["latency_ms"] == timed["latency_ms"]
        assert new["latency_ms"]["1"] == old["latency_ms"]["1"]  # the 1-thread run's, as is
        assert set(new["latency_ratio"]) == {"1", "2"}
    assert manifest["benchmark"]["by_threads"]["1"] == earlier["benchmark"]["by_threads"]["1"]
    assert manifest["benchmark"]["by_threads"]["2"]["runs"] == 2
    chosen = selection.select_cell(manifest, max_latency_ms=1e6, threads=1, directory=copy)
    assert chosen["cell"] == FULL
    assert "2T median ms" in litert.format_table(benchmark)


# issue case 3: a manifest benchmarked before `by_threads` existed keeps its settings per thread
def test_benchmark_settings_of_an_older_manifest():
    older = {"threads": [1, 2], "runs": 50, "warmup": 5, "rounds": 5, "date": "2026-11-21"}
    settings = benchmark_lib.earlier_settings(older)
    assert list(settings) == ["1", "2"] and settings["2"]["runs"] == 50
    assert settings["1"]["date"] == "2026-11-21"


# issue case 3 (the library's part; the CLI refuses counts above the CPUs)
@pytest.mark.parametrize("threads", [(0,), (1, -1), (), (1.5,), ("two",)])
def test_benchmark_refuses_thread_counts_below_one(copy, threads):
    before = snapshot(copy)
    with pytest.raises(ValueError, match="threads needs positive integers"):
        litert.benchmark_dir(copy, threads=threads, runs=1, warmup=0, rounds=1, plot=False,
                             progress=False)
    assert snapshot(copy) == before


# issue case 5: a cell whose file is gone is refused, not returned
def test_select_refuses_a_cell_whose_file_is_missing(copy):
    os.remove(os.path.join(copy, f"{FULL}.tflite"))
    before = snapshot(copy)
    with pytest.raises(selection.SelectionError) as error:
        selection.select_cell(read(copy), directory=copy)
    assert str(error.value) == (f"{copy}/{FULL}.tflite is missing (listed in manifest.json); "
                                f"re-export it")
    # the other cell, when the budget picks it, is still served
    small = entry_of(read(copy), SMALL)
    assert selection.select_cell(read(copy), max_bytes=small["bytes"],
                                 directory=copy)["cell"] == SMALL
    assert snapshot(copy) == before


# issue case 5: the same through mobile.select, and a negative latency under a tiny budget
def test_select_tool_refuses_a_missing_file_and_a_negative_latency(copy, capsys):
    full = os.path.join(copy, f"{FULL}.tflite")
    os.rename(full, full + ".moved")
    before = snapshot(copy)
    check_one_line(*run_tool(select_tool, [f"--manifest={copy}"], capsys),
                   f"{full} is missing (listed in manifest.json); re-export it")
    assert snapshot(copy) == before
    os.rename(full + ".moved", full)
    manifest = read(copy)
    manifest["cells"][1]["latency_ms"]["1"]["median"] = -0.5
    write_manifest(copy, manifest)
    before = snapshot(copy)
    check_one_line(*run_tool(select_tool, [f"--manifest={copy}", "--max_latency_ms=0.001"],
                             capsys),
                   "cells[1] (w0.25_d0.50): latency_ms['1']['median'] is -0.5, below zero")
    assert snapshot(copy) == before


# issue case 5: a negative latency never fits a budget; case 4's selection part: NaN never wins
@pytest.mark.parametrize("field, value, phrase", [
    ("latency", -1.0, "cells[0] (w1.00_d1.00): latency_ms['1']['median'] is -1.0, below zero"),
    ("latency", math.inf, "latency_ms['1']['median'] is inf, not a finite number"),
    ("metric", math.nan, "cells[0] (w1.00_d1.00): metrics['accuracy'] is nan, not a finite "
                         "number"),
    ("metric", -math.inf, "metrics['accuracy'] is -inf, not a finite number"),
    ("bytes", -5, "cells[0] (w1.00_d1.00): 'bytes' is -5, below zero"),
    ("flops", math.nan, "cells[0] (w1.00_d1.00): 'flops' is nan, not a finite number"),
])
def test_select_refuses_non_finite_or_negative_numbers(copy, field, value, phrase):
    manifest = read(copy)
    entry = manifest["cells"][0]
    if field == "latency":
        entry["latency_ms"]["1"]["median"] = value
    elif field == "metric":
        entry["metrics"]["accuracy"] = value
    else:
        entry[field] = value
    write_manifest(copy, manifest)  # as json writes it: NaN, Infinity, read back as floats
    with pytest.raises(selection.SelectionError) as error:
        selection.select_cell(read(copy), max_latency_ms=0.001, directory=copy)
    assert str(error.value).endswith(phrase) and "\n" not in str(error.value)
    with pytest.raises(ModelFileError, match=r"manifest\.json: cells\[0\]"):
        load_spec(copy)  # the run-time reads the same manifest the same way


# issue case 5: negative metrics are real values (Pearson, MCC) and rank normally
def test_select_ranks_negative_metrics(copy):
    manifest = read(copy)
    for entry, value in zip(manifest["cells"], (-0.5, -0.1)):
        entry["metrics"] = {"accuracy": value}
    assert selection.select_cell(manifest, directory=copy)["cell"] == manifest["cells"][1]["cell"]


# issue case 6: a re-export keeps an earlier entry only if its file is the one it describes
def test_reexport_drops_a_truncated_entry(copy, exported):
    full = os.path.join(copy, f"{FULL}.tflite")
    with open(full, "r+b") as f:
        f.truncate(1000)
    manifest = export_lib.export_model(exported["work"], copy, "none", SEQ_LEN, SMALL,
                                       progress=False)
    assert [e["cell"] for e in manifest["cells"]] == [SMALL] == [
        e["cell"] for e in read(copy)["cells"]]
    manifest_check.check_files(copy, read(copy)["cells"])  # what is listed is what is there
    # an intact earlier entry is kept (with its latencies) by the next run
    identity = {key: read(copy).get(key) for key in ("model_sha256", "quantization", "seq_len")}
    assert list(manifest_lib.previous_entries(copy, identity)) == [SMALL]
    assert "latency_ms" not in entry_of(read(copy), SMALL)  # a new file: timed anew


# issue case 7: a file the manifest does not describe is caught before anything is timed
def test_benchmark_refuses_a_file_dropped_in(copy, capsys):
    full = os.path.join(copy, f"{FULL}.tflite")
    recorded = entry_of(read(copy), FULL)["bytes"]
    shutil.copyfile(os.path.join(copy, f"{SMALL}.tflite"), full)  # another model, same name
    before = snapshot(copy)
    check_one_line(*run_tool(benchmark_tool, [f"--tflite_dir={copy}", "--threads=1",
                                              "--runs=1", "--rounds=1", "--noplot"], capsys),
                   f"{full} does not match manifest.json ({os.path.getsize(full)} bytes, "
                   f"manifest.json says {recorded}); re-export it")
    assert snapshot(copy) == before


# issue case 7: same size, other content: the sha256 tells; the run-time refuses it too
def test_same_size_other_content_is_caught_by_sha256(copy):
    full = os.path.join(copy, f"{FULL}.tflite")
    with open(full, "r+b") as f:
        f.seek(os.path.getsize(full) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    before = snapshot(copy)
    phrase = f"{full} does not match manifest.json (sha256 "
    with pytest.raises(ExportError, match="^" + phrase.replace("(", r"\(")):
        litert.load_manifest(copy)
    with pytest.raises(ModelFileError, match="^" + phrase.replace("(", r"\(")):
        load_spec(copy)
    with pytest.raises(ModelFileError, match="^" + phrase.replace("(", r"\(")):
        load_spec(full)  # the file alone: the manifest beside it lists it
    assert load_spec(os.path.join(copy, f"{SMALL}.tflite")).cell_names == [SMALL]
    assert snapshot(copy) == before


# issue case 7: an entry without size and sha256 cannot vouch for its file
def test_an_entry_without_sha256_is_refused(copy):
    manifest = read(copy)
    del manifest["cells"][0]["sha256"]
    problem = manifest_check.file_problem(copy, manifest["cells"][0])
    assert problem == (f"manifest.json records no bytes and sha256 for {copy}/{FULL}.tflite "
                       f"(written by another tool?); re-export it")
    assert manifest_check.file_problem(copy, manifest["cells"][1]) is None
