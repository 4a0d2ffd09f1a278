"""The report of `mobile.search`: found configurations vs grid cells, measured, on held-out data.

The grid cells and the configurations found per budget are exported by the grid cells' path
(`mobile.export.cells.export_layerwise`) and timed in one interleaved LiteRT run, so their
latencies are comparable; each is scored on the report half of the dev split (which no
choice saw), with the bootstrap standard deviation of its metric (`dev_halves.bootstrap`).
Per budget the found configuration faces the best grid cell whose *measured* latency fits:

* `grid_by_search_half`: picked on the search half, as the search picks (the verdict);
* `grid_by_report_half`: the best on the report half itself, the grid's most favourable case.

"Beats" means a report-half metric higher by more than the noise, the larger of the two
bootstrap standard deviations; the paired bootstrap standard deviation of the difference
(same resampled examples for both) is reported beside it.
"""

import os

from dynabert_tf.core import files
from dynabert_tf.core import grid as grid_lib
from dynabert_tf.core import progress as progress_lib
from dynabert_tf.elastic import cost
from mobile import export as export_lib
from mobile import pareto
from mobile.litert.directory import markdown_table
import mobile.search.dev_halves as dev_halves
import mobile.search.latency_measure as latency_measure

SEARCH_MD = "search.md"
PARETO = "pareto_search.png"


def _files(model, grid, found, directory, measured, args, progress):
    """({name: .tflite path}, names exported here): the grid cells' files from the latency
    measurements (`measured`: {config.name: path}; timing depends on the shapes only), and
    every found configuration exported from `model` to `directory`."""
    os.makedirs(directory, exist_ok=True)
    paths = {name: measured[c.name] for name, c in grid.items() if c.name in measured}
    todo = [(name, c) for name, c in {**grid, **found}.items() if name not in paths]
    for name, config in progress_lib.wrap(todo, progress, "export", unit="cell"):
        paths[name] = os.path.join(directory, f"{config.name}.tflite")
        export_lib.export_layerwise(model, config, paths[name], seq_len=args["seq_len"],
                                    quantization=args["quantization"])
    return paths, {name for name, _ in todo}


def report(model, grid, found, budgets, tflite_dir, measured, args, predictor, search_half,
           report_half, score, task, metric, progress=True):
    """{"timing", "configs", "budgets", "claim"} (module doc).

    Args:
      grid: {cell name: LayerwiseConfig}; found: {budget: evolution.SearchResult}.
      tflite_dir, measured: where the found configurations are exported; the measured
        files ({config.name: path}) that time the grid cells.
      score: half -> (config -> metric), cached (`pipeline.scorer`).
    """
    cfg, num_outputs = model.bert_config, model.num_outputs
    searched = {}
    for budget in budgets:
        if found[budget].best not in grid.values():
            searched[found[budget].best.name] = found[budget].best
    configs = {**grid, **searched}
    paths, exported = _files(model, grid, searched, tflite_dir, measured, args, progress)
    timings = latency_measure.time_files(paths, args, progress)
    predictions = {name: dev_halves.predict(model, c, report_half)
                   for name, c in progress_lib.wrap(configs.items(), progress, "report half",
                                                    unit="cell")}
    entries = {}
    for name, config in configs.items():
        alone = dev_halves.bootstrap(task, metric, report_half.labels, predictions[name])
        entries[name] = {
            "config": config.to_dict(), "grid_cell": name if name in grid else None,
            "file": os.path.abspath(paths[name]), "exported_from_this_model": name in exported,
            "bytes": os.path.getsize(paths[name]),
            "params": cost.count_params_layerwise(cfg, config, num_outputs),
            "flops": cost.count_flops_layerwise(cfg, config, args["seq_len"], num_outputs),
            "latency_ms": timings[name]["latency_ms"],
            "predicted_latency_ms": predictor.predict_one(config),
            "search_half": score(search_half)(config),
            "report_half": dev_halves.metric(task, predictions[name], report_half.labels,
                                             metric),
            "report_half_std": alone["std"][0]}
    measured = lambda name: entries[name]["latency_ms"]["median"]
    rows = []
    for budget in budgets:
        result = found[budget]
        name = next(n for n, c in configs.items() if c == result.best)
        fits = [n for n in grid if measured(n) <= budget]
        row = {"budget_ms": budget, "searched": name, "evaluated": len(result.evaluated),
               "history": result.history,
               "searched_within_budget_measured": measured(name) <= budget}
        for key, half in (("grid_by_search_half", "search_half"),
                          ("grid_by_report_half", "report_half")):
            if not fits:
                row[key] = None
                continue
            best = min(fits, key=lambda n: (-entries[n][half], measured(n)))
            paired = dev_halves.bootstrap(task, metric, report_half.labels, predictions[name],
                                          predictions[best])
            difference = entries[name]["report_half"] - entries[best]["report_half"]
            noise = max(paired["std"])
            row[key] = {"cell": best, "difference": difference, "noise": noise,
                        "difference_std": paired["difference_std"],
                        "beats": bool(difference > noise)}
        rows.append(row)
    verdicts = [r["grid_by_search_half"]["beats"] for r in rows if r["grid_by_search_half"]]
    held = [abs(e["predicted_latency_ms"] - e["latency_ms"]["median"]) / e["latency_ms"]["median"]
            for e in entries.values() if e["grid_cell"] is None]
    return {"timing": {"load_average": next(iter(timings.values()))["load_average"]},
            "configs": entries, "budgets": rows,
            "searched_prediction_error": {"mean": sum(held) / len(held), "max": max(held)}
            if held else None,
            "claim": {"statement": "at three or more latency budgets a searched configuration "
                                   "beats the best grid cell within the budget by more than "
                                   "the dev-set noise",
                      "budgets_beaten": int(sum(verdicts)), "budgets": len(verdicts),
                      "holds": bool(sum(verdicts) >= 3)}}


def format_latency_model(result):
    model = result["latency_model"]
    coefficients = model["coefficients_ms"]
    held = model["held_out_error"]
    line = (f"latency model: {coefficients['fixed']:.3f} ms + per kept layer "
            f"({coefficients['layers']:.4f} ms + {coefficients['heads']:.4f} ms x heads + "
            f"{coefficients['neurons'] * 1e3:.4f} us x neurons), fitted on {held['fitted_on']}")
    if held.get("mean") is not None:
        line += (f"; held-out relative error on {held['held_out']}: mean "
                 f"{100 * held['mean']:.1f}%, max {100 * held['max']:.1f}%")
    return line


def format_table(result, markdown=False):
    """One row per budget: the found configuration vs the best grid cell within it."""
    entries, metric = result["configs"], result["metric"]
    header = ["budget ms", "searched", "ms (pred)", f"{metric} report", "grid cell (search "
              "half)", "ms", f"{metric} report", "diff", "noise", "beats",
              "grid cell (report half)", "diff", "beats"]
    rows = []
    pct = lambda v: f"{100 * v:.2f}"
    for row in result["budgets"]:
        s = entries[row["searched"]]
        line = [f"{row['budget_ms']:g}", row["searched"],
                f"{s['latency_ms']['median']:.2f} ({s['predicted_latency_ms']:.2f})",
                f"{pct(s['report_half'])} ± {pct(s['report_half_std'])}"]
        versus = row["grid_by_search_half"]
        if versus is None:
            line += ["none fits", "-", "-", "-", "-", "-"]
        else:
            g = entries[versus["cell"]]
            line += [versus["cell"], f"{g['latency_ms']['median']:.2f}",
                     f"{pct(g['report_half'])} ± {pct(g['report_half_std'])}",
                     f"{100 * versus['difference']:+.2f}", pct(versus["noise"]),
                     "yes" if versus["beats"] else "no"]
        versus = row["grid_by_report_half"]
        line += ([versus["cell"], f"{100 * versus['difference']:+.2f}",
                  "yes" if versus["beats"] else "no"] if versus else ["none fits", "-", "-"])
        rows.append(line)
    if markdown:
        return markdown_table(header, rows)
    return "\n".join(["\t".join(header)] + ["\t".join(r) for r in rows])


def write_outputs(result, output_dir):
    """OUT/search.md (latency model, table, claim) and OUT/pareto_search.png."""
    claim = result["claim"]
    text = [format_latency_model(result), "", format_table(result, markdown=True), "",
            f"claim: {claim['statement']}: {claim['budgets_beaten']} of {claim['budgets']} "
            f"budgets -> {'holds' if claim['holds'] else 'does not hold'}"]
    files.write_atomic(os.path.join(output_dir, SEARCH_MD), ("\n".join(text) + "\n").encode())
    threads, metric = str(result["settings"]["threads"]), result["metric"]

    def entry(name, e, **extra):
        return {"cell": name, "bytes": e["bytes"], "flops": e["flops"], "params": e["params"],
                "latency_ms": {threads: e["latency_ms"]}, "metrics": {metric: e["report_half"]},
                **extra}

    cells = []
    for name, e in result["configs"].items():
        if e["grid_cell"]:
            w, d = grid_lib.parse_cell_name(name)
            cells.append(entry(name, e, width_mult=w, depth_mult=d))
    searched = [entry(row["searched"], result["configs"][row["searched"]],
                      label=f"S{i + 1} (≤{row['budget_ms']:g} ms)")
                for i, row in enumerate(result["budgets"])
                if not result["configs"][row["searched"]]["grid_cell"]]
    manifest = {"task": result["task"], "seq_len": result["settings"]["seq_len"],
                "quantization": result["settings"]["quantization"], "primary_metric": metric,
                "cells": cells}
    pareto.plot_pareto(manifest, os.path.join(output_dir, PARETO), int(threads), searched,
                       result["budgets_ms"], f"dev {metric}, report half "
                       f"({result['dev_halves']['report']} examples)")
