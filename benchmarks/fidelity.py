"""Fidelity report: does DynaBERT's method work here? Real MiniLM-L6, real rt_* tasks.

    python benchmarks/fidelity.py --root=workdirs/fidelity [--quick] [--seeds=1,2,3]
        [--tasks=rt_polarity,rt_rating] [--flagfile=configs/fidelity.flags]

Seed by seed (the report is rewritten after each, so a stopped run still reports the
seeds it finished, and a restarted one re-reads every finished stage), for every task it
trains one teacher, then each method below from that teacher
(each a real training path of `train.run`, switched by its flags), and reports test-split
metrics (nothing is selected on test):

  dynabert              rewiring + DynaBERT_w + DynaBERT (the method)
  dynabert_augment      the same, stages width and width_depth on the original plus
                        --aug_copies TinyBERT-augmented copies of each example (the paper's
                        "distillation and DA"; the teacher stays on the original data)
  dynabert_more_epochs  dynabert with width and width_depth trained (1 + --aug_copies)
                        epochs: dynabert_augment's step count on the original data only
                        (does augmentation help through its text or its extra steps?)
  no_distillation_more_epochs
                        no_distillation for as many epochs: label-only training at
                        dynabert_augment's step count (its fair label-only baseline)
  separate              each cell started from the pretrained checkpoint (its leading heads,
                        neurons, layers) and fine-tuned alone on labels (Table 3)
  vanilla               no rewiring, no distillation (label loss in both stages)
  no_rewiring           distillation without rewiring
  no_distillation       rewiring, label loss instead of distillation
  direct                rewired teacher distilled straight into width x depth (Table 5)
  depth_first           DynaBERT_D first, the teacher assistant of stage 2 (Table 6)
  inplace               DynaBERT_w by inplace distillation (Table 7)
  progressive_rewiring  DynaBERT_w with the widths added and rewired one by one (Table 8)
  universal             DynaBERT_w by universally slimmable training (Table 8)

The paper compares the ablations of Tables 7 and 8 on DynaBERT_w; here every method runs
the whole pipeline and is compared on the final grid. `--methods` picks a subset.

The report (benchmarks/results/fidelity.md + .json + one figure per task) holds mean ± std
per cell and method, the average over cells, and a verdict per claim computed from the
numbers: "holds" when the difference exceeds its bar (critical value x standard error),
"does not hold" when it is below minus the bar, else "within noise" (a "no gain" claim, and
the teacher claim, hold unless the difference is below minus the bar). With two or more seeds
the standard error is that of the paired per-seed differences and the critical value
Student's t (97.5%, n - 1 dof); with one seed it is the larger of the test set's sampling
error (binomial for accuracy, (1 - r^2)/sqrt(n - 3) for correlations) and the spread of the
per-cell differences, with critical value 2.

A seed's model weights and training checkpoints (about 16 GB for both tasks) are deleted
once that seed is reported; its stage summaries and grids stay, so a re-run still re-reads
it. `--keep_weights` keeps them (needed to add a method to a finished seed later).

Every finished (task, seed, method) also leaves a small record beside the report,
OUTPUT_DIR/runs/TASK/seedK/METHOD.json (its grid, its teacher's summary, the settings it
trained with). A re-run re-reads a record instead of training, so committing the records
with the report lets a run that takes longer than one machine's life go on from a fresh
clone, without --root. A record trained with other settings stops the run with one line.
"""

import argparse
import concurrent.futures
import dataclasses
import glob
import json
import multiprocessing
import os
import shutil
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import scipy.stats  # noqa: E402

from dynabert_tf.core import files  # noqa: E402

_PIPELINE = ("rewire", "width", "width_depth", "evaluate")


def _augment_step_count(base):
    """dynabert_augment sees (1 + aug_copies) x the examples: as many epochs of the originals."""
    copies = 1 + base.aug_copies
    return {"width_epochs": base.width_epochs * copies,
            "width_depth_epochs": base.width_depth_epochs * copies}


def _label_only_augment_step_count(base):
    return {**_augment_step_count(base), "distillation": False}


# method: (settings overrides, or a function of the base settings that returns them; stages)
METHODS = {
    "dynabert": ({}, _PIPELINE),
    "dynabert_augment": ({"augment": True}, ("rewire", "augment", "width", "width_depth",
                                             "evaluate")),  # aug_copies: --aug_copies
    "dynabert_more_epochs": (_augment_step_count, _PIPELINE),
    "no_distillation_more_epochs": (_label_only_augment_step_count, _PIPELINE),
    "separate": ({}, ("separate",)),
    "vanilla": ({"rewiring": False, "distillation": False}, _PIPELINE),
    "no_rewiring": ({"rewiring": False}, _PIPELINE),
    "no_distillation": ({"distillation": False}, _PIPELINE),
    "direct": ({"direct": True}, ("rewire", "width_depth", "evaluate")),
    "depth_first": ({"first_stage": "depth"}, ("rewire", "depth", "width_depth", "evaluate")),
    "inplace": ({"width_teacher": "inplace"}, _PIPELINE),
    "progressive_rewiring": ({"progressive_rewiring": True}, _PIPELINE),
    "universal": ({"width_sampling": "universal"}, _PIPELINE),
}
# (name, method a, method b, kind): the paper claims a > b ("beats"), or that b brings no
# gain over a ("no_gain": holds unless a is significantly worse, as the teacher claim).
CLAIMS = [
    ("DynaBERT beats separate networks fine-tuned from the pretrained checkpoint (Table 3)",
     "dynabert", "separate", "beats"),
    ("rewiring helps (Table 4)", "dynabert", "no_rewiring", "beats"),
    ("distillation helps (Table 4)", "dynabert", "no_distillation", "beats"),
    ("distillation with augmentation beats label-only training (Tables 3, 4)",
     "dynabert_augment", "no_distillation", "beats"),
    ("augmentation helps distillation (Table 4)", "dynabert_augment", "dynabert", "beats"),
    ("augmentation helps beyond its extra steps", "dynabert_augment", "dynabert_more_epochs",
     "beats"),
    ("distillation with augmentation beats label-only training of as many steps",
     "dynabert_augment", "no_distillation_more_epochs", "beats"),
    ("distillation helps at the augmented step count", "dynabert_more_epochs",
     "no_distillation_more_epochs", "beats"),
    ("DynaBERT_w before DynaBERT beats direct distillation (Table 5)", "dynabert", "direct",
     "beats"),
    ("DynaBERT beats vanilla training", "dynabert", "vanilla", "beats"),
    ("width first beats depth first (Table 6)", "dynabert", "depth_first", "beats"),
    ("inplace distillation brings no gain over the fixed teacher (Table 7)", "dynabert",
     "inplace", "no_gain"),
    ("progressive rewiring brings no gain over rewiring once (Table 8)", "dynabert",
     "progressive_rewiring", "no_gain"),
    ("universally slimmable training brings no gain over the width list (Table 8)",
     "dynabert", "universal", "no_gain"),
]


def _settings(flagfile, **overrides):
    from absl import flags

    import train.run  # noqa: F401  (defines the flags)
    from train.run import settings_from_flags

    flags.FLAGS.unparse_flags()
    flags.FLAGS([sys.argv[0], f"--flagfile={flagfile}", "--task=rt_polarity", "--workdir=."])
    return dataclasses.replace(settings_from_flags(), **overrides)


def _copy_stage(src_workdir, dst_workdir, stage):
    src, dst = os.path.join(src_workdir, stage), os.path.join(dst_workdir, stage)
    if os.path.isfile(os.path.join(src, "stage.json")) and not os.path.exists(dst):
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("checkpoints", "logs"))
        _mark_copy(os.path.join(dst, "stage.json"), src)


def _mark_copy(stage_file, src):
    """A copied stage cost nothing here: its timing stays with the original."""
    summary = files.read_json(stage_file)
    summary.update(wall_seconds=0, copied_from=src)
    files.write_json(stage_file, summary)


def method_settings(base, method):
    """(the settings a method trains with, its stages)."""
    overrides, stages = METHODS[method]
    if callable(overrides):
        overrides = overrides(base)
    return dataclasses.replace(base, **overrides), stages


def run_method(base, task, seed, method, root):
    """Trains one method for (task, seed); reuses the teacher (and rewiring when identical)."""
    from train.stages import is_complete, run_stages
    from train import task_data

    settings, stages = method_settings(base, method)
    teacher_dir = os.path.join(root, task, f"seed{seed}", "teacher_run")
    workdir = os.path.join(root, task, f"seed{seed}", method)
    settings = dataclasses.replace(settings, task=task, seed=seed, workdir=workdir)
    data = task_data.load(settings)
    run_stages(dataclasses.replace(settings, workdir=teacher_dir), data, ["teacher"])
    os.makedirs(workdir, exist_ok=True)
    _copy_stage(teacher_dir, workdir, "teacher")
    if settings.rewiring and "rewire" in stages:
        _copy_stage(os.path.join(root, task, f"seed{seed}", "dynabert"), workdir, "rewire")
    grid_file = os.path.join(
        workdir, "eval_grid_separate.json" if method == "separate" else "eval_grid.json")
    trained = all(is_complete(settings, stage) for stage in stages if stage != "evaluate")
    if not (trained and os.path.isfile(grid_file)):  # a finished method is only re-read
        run_stages(settings, data, list(stages))
    with open(grid_file) as f:
        grid = json.load(f)
    with open(os.path.join(teacher_dir, "teacher", "stage.json")) as f:
        teacher = json.load(f)
    return grid, teacher, len(data.test_examples["test"])


# Settings that change how a run is driven or shown, not what it trains.
_UNRECORDED = ("workdir", "stages", "progress", "verbose", "checkpoint_every", "run_eagerly")


def recorded_settings(base, task, seed, method):
    """The settings (task, seed, method) trains with, as its record stores them."""
    settings, _ = method_settings(dataclasses.replace(base, task=task, seed=seed), method)
    values = json.loads(json.dumps(dataclasses.asdict(settings)))  # tuples -> lists
    return {k: v for k, v in values.items() if k not in _UNRECORDED}


def record_path(output_dir, task, seed, method):
    return os.path.join(output_dir, "runs", task, f"seed{seed}", f"{method}.json")


_RECORD_KEYS = ("settings", "grid", "teacher", "n_test")


class BadRecord(ValueError):
    """A record this run cannot use: not a record, or (StaleRecord) other settings."""


class StaleRecord(BadRecord):
    """A record trained with other settings than this run's."""


def read_record(path, settings):
    """A finished run's record, or None if there is none; BadRecord if it is not one,
    StaleRecord naming the first differing setting if it trained with other settings."""
    if not os.path.isfile(path):
        return None
    try:
        record = files.read_json(path, "fidelity record")
    except ValueError as e:
        raise BadRecord(f"{e}; delete the record to retrain it") from None
    missing = [k for k in _RECORD_KEYS if not isinstance(record, dict) or k not in record]
    if missing:
        raise BadRecord(f"{path} is not a fidelity record (no {', '.join(missing)}); delete "
                        "it to retrain it")
    differing = sorted(k for k in settings.keys() | record["settings"].keys()
                       if settings.get(k) != record["settings"].get(k))
    if differing:
        k = differing[0]
        raise StaleRecord(f"{path} was trained with {k}={record['settings'].get(k)!r}, this run "
                         f"has {k}={settings.get(k)!r} ({len(differing)} setting(s) differ); "
                         "delete the record or pick another --output_dir")
    return record


def _stage_seconds(workdir):
    """Training time of the stages a method ran itself (copied stages count 0 s)."""
    return sum(files.read_json(path).get("wall_seconds", 0)
               for path in glob.glob(os.path.join(workdir, "**", "stage.json"), recursive=True))


def run_or_reread(args, base, task, seed, method):
    """A (task, seed, method) record: {grid, teacher, n_test, stage_seconds, settings}; read
    if it exists, else trained (in a fresh process, see _in_fresh_process) and written."""
    path = record_path(args.output_dir, task, seed, method)
    settings = recorded_settings(base, task, seed, method)
    record = read_record(path, settings)
    if record is None:
        grid, teacher, n_test = _in_fresh_process(run_method, base, task, seed, method,
                                                  args.root)
        record = {"settings": settings, "grid": grid, "teacher": teacher, "n_test": n_test,
                  "stage_seconds": _stage_seconds(os.path.join(args.root, task,
                                                               f"seed{seed}", method))}
        files.write_json(path, record)
    return record


def prune_weights(seed_dir):
    """Deletes the weights and training checkpoints under a reported seed's directory."""
    freed = 0
    for path in glob.glob(os.path.join(seed_dir, "**", "*.safetensors"), recursive=True):
        freed += os.path.getsize(path)
        os.remove(path)
    for path in glob.glob(os.path.join(seed_dir, "**", "checkpoints"), recursive=True):
        freed += sum(os.path.getsize(os.path.join(d, f))
                     for d, _, files in os.walk(path) for f in files)
        shutil.rmtree(path)
    return freed


def _in_fresh_process(function, *args):
    """function(*args) in a new Python process. One process keeps about a gigabyte per
    trained method (TensorFlow's graphs and allocator), more than this machine holds over
    the dozens a report trains."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


def _noise(values_a, values_b, metric, n_test, cell_differences=None):
    """(standard error of mean(a) - mean(b), the critical value a verdict compares against).

    With two or more seeds: paired over seeds (every method of a seed starts from that
    seed's teacher), with Student's t at n - 1 degrees of freedom. With one seed: the larger
    of the test-set sampling error of one cell (binomial for accuracy, (1 - r^2)/sqrt(n - 3)
    for correlations) and, for a grid average, the spread of the per-cell differences /
    sqrt(cells), a proxy for training noise that one seed cannot measure; critical value 2.
    """
    if len(values_a) == len(values_b) > 1:
        paired = np.asarray(values_a) - np.asarray(values_b)
        n = len(paired)
        return (float(np.std(paired, ddof=1) / np.sqrt(n)),
                float(scipy.stats.t.ppf(0.975, n - 1)))
    if metric == "accuracy":
        p = float(np.clip(np.mean(values_a), 0.01, 0.99))
        sampling = float(np.sqrt(2 * p * (1 - p) / n_test))
    else:
        r = float(np.clip(np.mean(values_a), -0.99, 0.99))  # delta method for a correlation
        sampling = float(np.sqrt(2.0) * (1 - r * r) / np.sqrt(n_test - 3))
    if cell_differences is not None and len(cell_differences) > 1:
        spread = float(np.std(cell_differences, ddof=1) / np.sqrt(len(cell_differences)))
        return max(sampling, spread), 2.0
    return sampling, 2.0


def verdict(diff, noise, critical=2.0):
    if diff > critical * noise:
        return "holds"
    if diff < -critical * noise:
        return "does not hold"
    return "within noise"


def summarise(results, teachers, metric, n_test):
    """results: {method: [grid per seed]} -> the report dict for one task."""
    from dynabert_tf.core import grid as grid_lib

    cells = [grid_lib.cell_name(w, d) for w, d in grid_lib.grid()
             if grid_lib.cell_name(w, d) in results["dynabert"][0]["cells"]]
    table = {method: {cell: [g["cells"][cell]["test_metrics"][metric] for g in grids]
                      for cell in cells} for method, grids in results.items()}
    averages = {method: [float(np.mean([table[method][c][i] for c in cells]))
                         for i in range(len(grids))] for method, grids in results.items()}
    claims = []
    for name, a, b, kind in CLAIMS:
        if a in averages and b in averages:
            diff = float(np.mean(averages[a]) - np.mean(averages[b]))
            per_cell = [np.mean(table[a][c]) - np.mean(table[b][c]) for c in cells]
            noise, critical = _noise(averages[a], averages[b], metric, n_test, per_cell)
            wins = sum(np.mean(table[a][c]) > np.mean(table[b][c]) for c in cells)
            found = verdict(diff, noise, critical)
            if kind == "no_gain":
                found = "does not hold" if found == "does not hold" else "holds"
            claims.append({"claim": name, "difference": diff, "standard_error": noise,
                           "critical": critical, "cells_won": f"{wins}/{len(cells)}",
                           "verdict": found})
    teacher = [t["test"][metric] for t in teachers]
    for method, what in (("dynabert", "full-size DynaBERT"),
                         ("dynabert_augment", "full-size DynaBERT with augmentation")):
        if method not in table:
            continue
        full = table[method]["w1.00_d1.00"]
        diff = float(np.mean(full) - np.mean(teacher))
        noise, critical = _noise(full, teacher, metric, n_test)
        claims.append({"claim": f"{what} matches its teacher", "difference": diff,
                       "standard_error": noise, "critical": critical, "cells_won": "-",
                       "verdict": "does not hold"
                       if verdict(diff, noise, critical) == "does not hold" else "holds"})
    return {"metric": metric, "cells": cells, "table": table, "averages": averages,
            "teacher": teacher, "claims": claims,
            "flops": {c: results["dynabert"][0]["cells"][c]["flops"] for c in cells}}


def _fmt(values):
    values = 100 * np.asarray(values)
    return f"{values.mean():.2f} ± {values.std(ddof=1):.2f}" if len(values) > 1 else \
        f"{values.mean():.2f}"


def write_markdown(report, path, header):
    lines = [header, ""]
    for task, rep in report["tasks"].items():
        methods = list(rep["table"])
        lines += [f"### {task} — test {rep['metric']} (×100), mean ± std over seeds "
                  f"{report['seeds']}", "", "| cell | " + " | ".join(methods) + " |",
                  "|---" * (len(methods) + 1) + "|"]
        for cell in rep["cells"]:
            lines.append(f"| {cell} | " + " | ".join(_fmt(rep["table"][m][cell])
                                                    for m in methods) + " |")
        lines.append("| **average** | " + " | ".join(_fmt(rep["averages"][m])
                                                     for m in methods) + " |")
        lines += ["", f"Teacher (full size): {_fmt(rep['teacher'])}", "",
                  "| claim | difference (×100) | std. error | bar (critical × s.e.) "
                  "| cells won | verdict |", "|---|---|---|---|---|---|"]
        lines += [f"| {c['claim']} | {100 * c['difference']:+.2f} | "
                  f"{100 * c['standard_error']:.2f} | "
                  f"{100 * c['critical'] * c['standard_error']:.2f} | {c['cells_won']} | "
                  f"**{c['verdict']}** |" for c in rep["claims"]]
        lines += ["", f"![{task}](fidelity_{task}.png)", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def plot(rep, task, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method, marker in (("dynabert", "o"), ("separate", "s")):
        if method in rep["table"]:
            xs = [rep["flops"][c] / 1e9 for c in rep["cells"]]
            values = [100 * np.asarray(rep["table"][method][c]) for c in rep["cells"]]
            errors = [v.std(ddof=1) if len(v) > 1 else 0.0 for v in values]
            ax.errorbar(xs, [v.mean() for v in values], yerr=errors, fmt=marker, capsize=3,
                        label=method)
    ax.axhline(100 * np.mean(rep["teacher"]), linestyle="--", color="gray", label="teacher")
    ax.set_xlabel("GFLOPs per sequence (seq 128)")
    ax.set_ylabel(f"test {rep['metric']} (×100)")
    ax.set_title(f"{task}: DynaBERT sub-networks vs separate networks\n"
                 f"(mean ± std over {len(rep['teacher'])} seed(s))", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _training_seconds(records):
    """(seconds the recorded methods and their teachers trained, records without timing)."""
    teachers = {(r["settings"]["task"], r["settings"]["seed"]): r["teacher"] for r in records}
    untimed = sum(r.get("stage_seconds") is None for r in records)
    return (sum(r.get("stage_seconds") or 0 for r in records)
            + sum(t.get("wall_seconds", 0) for t in teachers.values()), untimed)


def write_report(args, base, all_seeds, done, results, teachers, n_tests, records, start):
    """Report over the first `done` seeds, the ones finished so far (rewritten after each)."""
    from dynabert_tf.data import get_task

    seeds = all_seeds[:done]
    report = {"seeds": seeds, "flagfile": args.flagfile, "quick": args.quick,
              "max_train_examples": base.max_train_examples, "tasks": {}}
    os.makedirs(args.output_dir, exist_ok=True)
    for task, task_results in results.items():
        metric = get_task(task).primary_metric
        report["tasks"][task] = summarise(task_results, teachers[task], metric, n_tests[task])
        plot(report["tasks"][task], task, os.path.join(args.output_dir, f"fidelity_{task}.png"))
    report["wall_seconds"] = round(time.time() - start)
    # Training cost even when finished methods were only re-read: every stage's own timing.
    report["stage_seconds"], untimed = _training_seconds(records)
    files.write_json(os.path.join(args.output_dir, "fidelity.json"), report)
    examples = base.max_train_examples or "all"
    pending = f" (seeds {all_seeds[done:]} not finished yet)" if all_seeds[done:] else ""
    untimed = f", {untimed} of {len(records)} runs without timings" if untimed else ""
    header = (f"Command: `python benchmarks/fidelity.py {' '.join(sys.argv[1:])}` — seeds "
              f"{seeds}{pending}, {examples} training examples per task; its stages took "
              f"{report['stage_seconds']} s{untimed} (this call {report['wall_seconds']} s).")
    write_markdown(report, os.path.join(args.output_dir, "fidelity.md"), header)
    return report


def _check_arguments(parser, args, tasks, methods):
    """One error line (argparse's) before anything trains."""
    from dynabert_tf.data import TASKS

    unknown = [t for t in tasks if t not in TASKS] + [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown task or method {', '.join(unknown)}; tasks: {', '.join(TASKS)}; "
                     f"methods: {', '.join(METHODS)}")
    if "dynabert" not in methods:
        parser.error("--methods must include dynabert (every claim compares against it)")
    if not all(s.strip().isdigit() for s in args.seeds.split(",")):
        parser.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    if args.aug_copies is not None and args.aug_copies < 1:
        parser.error(f"--aug_copies must be at least 1, got {args.aug_copies}")
    if not os.path.isfile(args.flagfile):
        parser.error(f"no flagfile at {args.flagfile}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="workdirs/fidelity")
    parser.add_argument("--flagfile", default="configs/fidelity.flags")
    parser.add_argument("--tasks", default="rt_polarity,rt_rating")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--quick", action="store_true",
                        help="one seed, half the flagfile's training examples (1,000 if all)")
    parser.add_argument("--output_dir", default="benchmarks/results")
    parser.add_argument("--keep_weights", action="store_true",
                        help="keep each reported seed's weights and checkpoints")
    parser.add_argument("--aug_copies", type=int, default=None,
                        help="augmented copies per example for dynabert_augment (default: the "
                             "flagfile's, else TinyBERT's 20)")
    args = parser.parse_args()
    tasks, methods = args.tasks.split(","), args.methods.split(",")
    _check_arguments(parser, args, tasks, methods)
    seeds = [1] if args.quick else [int(s) for s in args.seeds.split(",")]
    base = _settings(args.flagfile)
    if args.aug_copies is not None:
        base = dataclasses.replace(base, aug_copies=args.aug_copies)
    if args.quick:
        base = dataclasses.replace(base, max_train_examples=(base.max_train_examples or 2000) // 2)
    start = time.time()
    results = {task: {} for task in tasks}
    teachers = {task: [] for task in tasks}
    n_tests, records = {}, []
    for done, seed in enumerate(seeds, 1):  # seeds outermost: every finished seed is reported
        for task in tasks:
            for method in methods:
                try:
                    record = run_or_reread(args, base, task, seed, method)
                except BadRecord as e:
                    sys.exit(f"error: {e}")
                records.append(record)
                results[task].setdefault(method, []).append(record["grid"])
                n_tests[task] = record["n_test"]
            teachers[task].append(record["teacher"])
        write_report(args, base, seeds, done, results, teachers, n_tests, records, start)
        if not args.keep_weights:
            freed = sum(prune_weights(os.path.join(args.root, task, f"seed{seed}"))
                        for task in tasks)
            print(f"seed {seed} reported; deleted {freed / 2**30:.1f} GB of its weights")
    print(open(os.path.join(args.output_dir, "fidelity.md")).read())


if __name__ == "__main__":
    main()
