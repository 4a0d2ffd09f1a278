"""`python -m mobile.search` end to end on a tiny 4-layer model (heavy: ~10 TFLite exports)."""

import json
import os

import pytest
from absl import flags

from dynabert_tf.core import grid as grid_lib
from dynabert_tf.elastic import cost, layerwise
from mobile import cli
from mobile.search import __main__ as search_cli, latency_model
from tests.helpers import TINY_DEEP
from tests.mobile.export.test_mobile_export import make_workdir

CELLS = ((1.0, 1.0), (0.5, 0.5))  # a two-cell eval grid keeps the exports few


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = make_workdir(str(tmp_path_factory.mktemp("search_cli")))
    cells = {grid_lib.cell_name(w, d): {"width_mult": w, "depth_mult": d,
                                        "metrics": {"accuracy": 0.5},
                                        "params": cost.count_params(TINY_DEEP, w, d),
                                        "flops": cost.count_flops(TINY_DEEP, w, d)}
             for w, d in CELLS}
    with open(os.path.join(root, "eval_grid.json"), "w") as f:
        json.dump({"task": "rt_polarity", "primary_metric": "accuracy", "cells": cells}, f)
    return root


def run(capsys, *args):
    """(exit status, stdout, stderr) of mobile.search in this process."""
    flag_values = cli.define(search_cli.define_flags, flags.FlagValues())
    try:
        cli.call(search_cli.main, cli.parse(flag_values, ["mobile.search", *args]), flag_values)
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("args, message", [
    (["--budgets_ms=fast"], "error: --budgets_ms must be positive numbers"),
    (["--budgets_ms=1,-2"], "error: --budgets_ms must be positive numbers"),
    (["--num_measured=2"], "error: --num_measured must be an integer >= 5, got 2"),
    (["--quantization=int8"], "error: flag --quantization=int8"),
    (["--model_dir={empty}"], "error: no trained DynaBERT in {empty}"),
])
def test_bad_input_is_one_line(workdir, tmp_path, capsys, args, message):
    empty = str(tmp_path / "empty")
    os.makedirs(empty)
    args = [a.format(empty=empty) for a in args]
    if not any(a.startswith("--model_dir") for a in args):
        args.append(f"--model_dir={workdir}")
    code, _, err = run(capsys, *args, f"--output_dir={tmp_path / 'out'}")
    assert code in (1, 2) and err.strip().splitlines()[-1].startswith(
        message.format(empty=empty)), err
    assert "Traceback" not in err


def test_search_end_to_end(workdir, tmp_path, capsys):
    out = tmp_path / "out"
    common = [f"--model_dir={workdir}", f"--output_dir={out}", "--num_measured=5",
              "--seq_len=32", "--runs=4", "--rounds=2", "--warmup=1", "--population=4",
              "--parents=2", "--mutations=2", "--crossovers=1", "--generations=1"]
    code, stdout, err = run(capsys, *common)
    assert code == 0, err[-2000:]
    assert "held-out relative error" in stdout and "wrote" in stdout
    result = json.load(open(out / "search.json"))
    fitted = latency_model.load(str(out / "latency_model.json"))
    assert len(result["budgets"]) == 3 and result["dev_halves"]["report"] == 527
    for row in result["budgets"]:
        found = layerwise.LayerwiseConfig.from_dict(result["configs"][row["searched"]]["config"])
        assert fitted.predict_one(found) <= row["budget_ms"]  # the search kept to the budget
        assert os.path.isfile(result["configs"][row["searched"]]["file"])
    assert set(grid_lib.cell_name(w, d) for w, d in CELLS) <= set(result["configs"])
    assert os.path.getsize(out / "pareto_search.png") > 1000
    assert "| budget ms |" in open(out / "search.md").read()

    # A second run reuses the measurements and metrics: no export, no new evaluation.
    metrics = json.load(open(out / "metrics.json"))
    code, _, err = run(capsys, *common, "--budgets_ms=" + ",".join(
        str(r["budget_ms"]) for r in result["budgets"]))
    assert code == 0, err[-2000:]
    assert json.load(open(out / "metrics.json")) == metrics
    code, _, err = run(capsys, *common, "--budgets_ms=0.0001")
    assert code == 1 and "below the smallest configuration" in err.strip().splitlines()[-1]
