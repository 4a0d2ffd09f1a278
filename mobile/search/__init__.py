"""Per-layer sub-networks beyond the 12 grid cells, found under LiteRT latency budgets (HAT).

    from mobile.search import SearchSettings, run_search
    result = run_search("WORKDIR", "OUT", SearchSettings(budgets_ms=(1.5, 2.5, 3.5)))

(`python -m mobile.search` is the command line, `mobile/search/__main__.py`.)

1. Measure: the grid cells and `num_measured` random per-layer configurations are exported
   (`mobile.export.export_layerwise`, the grid cells' path; dynamic range, seq 128 by default)
   and timed in LiteRT (`latency_measure`, cached in the latency dir: latency depends on
   the architecture only, so one measurement serves every model of that shape).
2. Fit: `latency_model` on the grid cells and 70% of the random configurations; the
   held-out relative error is measured on the other 30% (OUT/latency_model.json).
3. Search: for each budget, `evolution` maximises the primary dev metric of
   `model(x, subnetwork=config)` on the *search half* of the dev split (`dev_halves`)
   subject to predicted latency <= budget; the grid cells within the budget seed it (hidden
   states of shared layer prefixes are reused: `dev_halves.PrefixCachedPredictor`). Default
   budgets: a quarter, half and three quarters of the way from the fastest grid cell's
   measured latency to the slowest's. Metrics are cached per configuration (OUT/metrics.json).
4. Report: the found configurations are exported from the model (OUT/tflite/) and timed
   with the grid cells' measured files in one interleaved LiteRT run; all are scored on the
   *report half*, which no choice saw, with its bootstrap standard deviation as the noise.
   Per budget the found configuration is compared with the best grid cell within the budget
   (by measured latency) picked on the search half, as the search picks, and with the best
   on the report half (the grid's most favourable case); `report`.

Writes OUT/search.json, OUT/search.md (the table) and OUT/pareto_search.png (grid cells and
found configurations, report-half metric vs measured latency and size).

Modules:

    pipeline         run_search and its SearchSettings: the four steps above
    preflight        the settings and the model dir, checked before TensorFlow is imported
    latency_measure  configurations exported and timed once, cached (measurements.json)
    latency_model    the linear latency model (numpy + scipy only)
    evolution        the evolutionary search under a budget (numpy only)
    dev_halves       the dev split in a search half and a report half; metric, bootstrap
    report           found configurations vs grid cells: search.json's report, search.md,
                     pareto_search.png
"""

from mobile.errors import ExportError
from mobile.search import preflight
from mobile.search.pipeline import (CLOCKS, QUANTIZATIONS, SEARCH_JSON, SearchSettings,
                                    default_budgets, parse_budgets, run_search)
from mobile.search.report import format_latency_model, format_table

__all__ = ["CLOCKS", "ExportError", "QUANTIZATIONS", "SEARCH_JSON", "SearchSettings",
           "default_budgets", "format_latency_model", "format_table", "parse_budgets",
           "preflight", "run_search"]
