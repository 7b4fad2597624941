"""``loralab report``: one self-contained HTML file and a Markdown summary, read from run folders.

A report opens with what ran where (hardware, model, versions, wall time) and any warning,
then the results, then what explains them: per-class figures, confusion matrices, reliability
diagrams, the most confident mistakes and an example of each kind of error. Configurations
are folded away at the end of each run's section.
"""

from __future__ import annotations

import json
from pathlib import Path

from loralab.analysis.tables import diagnostics_table, rank_table
from loralab.errors import RunError
from loralab.reports import plots
from loralab.reports.costs import summary_costs
from loralab.reports.explain import averaging_note, history, overview, read_json, run_sections
from loralab.reports.page import Report, fmt
from loralab.runs.recommend import CROSSFIT_NOTE, judged_column, judged_header, judged_mark


def _data_section(report: Report, summary: dict) -> None:
    if not summary:
        return
    report.heading("Data")
    report.paragraph(f"Source: {summary.get('source')}; labels: {', '.join(summary.get('labels', []))}.")
    rows = []
    for name, info in summary.get("splits", {}).items():
        counts = ", ".join(f"{k} {v:,}" for k, v in info.get("label_counts", {}).items())
        rows.append([name, info.get("size"), counts, info.get("origin", "file")])
    report.table(["split", "rows", "label counts", "origin"], rows)
    for note in summary.get("notes", []):
        report.paragraph(f"Note: {note}")


def _run_details(report: Report, runs: dict[str, Path]) -> None:
    histories = {name: history(path) for name, path in runs.items()}
    histories = {k: v for k, v in histories.items() if v}
    if histories:
        report.heading("Training curves")
        report.image(
            "training_curves.png",
            plots.training_curves(histories),
            "training and validation loss, and validation accuracy, per epoch",
        )
    report.heading("Each run explained" if len(runs) > 1 else "The model explained")
    for name, path in runs.items():
        run_sections(report, name, path)


def _size_key(size) -> float:
    return float("inf") if size in (None, "all") else float(size)


def compare_report(folder: Path) -> Report:
    results = read_json(folder / "results.json")
    if not results:
        raise RunError(f"{folder}: the comparison has no results.json yet; run loralab compare first.")
    meta = read_json(folder / "compare.json")
    summary = results["summary"]
    report = Report(f"loralab comparison — {results['data']}")
    runs = {r["run"]: folder / r["run"] for r in results["runs"]}
    overview(report, runs)
    report.heading("Results")
    costs = summary_costs(folder, results["runs"])
    several_sizes = len({x.get("train_size") for x in summary}) > 1
    rows = []
    cached = False
    for r in summary:

        def pm(key: str, row: dict = r):
            return f"{row[key]:.4f} ± {row[key + '_std']:.4f}" if row["seeds"] > 1 else row[key]

        cost = costs[(r["method"], str(r["train_size"]))]
        cached = cached or cost.cached  # its infer cell says "(cached)", whatever the seeds
        cells = cost.cells()
        train = cells["train"]
        if r["seeds"] > 1:
            train = f"{r['train_seconds']:.1f} ± {r['train_seconds_std']:.1f}"
        rows.append(
            [
                f"{r['method']} @ {r['train_size']}/class" if several_sizes else r["method"],
                cells["trainable"],
                cells["share"],
                train,
                cells["infer"],
                fmt(pm(judged_column(r))) + judged_mark(r),
                pm("test_accuracy"),
                pm("test_macro_f1"),
            ]
        )
    report.table(
        [
            "method",
            "trainable",
            "share of model",
            "train s",
            "infer texts/s",
            judged_header(summary),
            "test acc",
            "test macro-F1",
        ],
        rows,
    )
    note = (
        "Trainable: the numbers fitted to the labels (for TF-IDF models, one coefficient per "
        "vocabulary term and class). Share: trainable / all parameters the model predicts with, "
        "the frozen encoder included."
    )
    if cached:  # explained only when a cell shows it: there is no column of that name
        note += (
            " (cached): features read from the feature cache; the first run's encoding time is the real cost."
        )
    report.paragraph(note)
    if any(r.get("validation_crossfit") for r in summary):
        report.paragraph(CROSSFIT_NOTE)
    _recommendation_section(report, results)
    if len({r.get("train_size") for r in summary}) > 1:
        train = meta.get("data_summary", {}).get("splits", {}).get("train", {})
        classes = len(train.get("label_counts") or {}) or 1
        all_per_class = train["size"] / classes if train.get("size") else None
        report.image(
            "learning_curves.png",
            plots.learning_curves(summary, all_per_class),
            "test accuracy against training set size",
        )
        summary = [
            r
            for r in summary
            if r.get("train_size") == max((r.get("train_size") for r in summary), key=_size_key)
        ]
    report.begin_figures()
    report.image(
        "accuracy_vs_parameters.png",
        plots.accuracy_scatter(summary, "trainable_parameters", "trainable parameters (log scale)", True),
        "test accuracy against trainable parameters",
    )
    report.image(
        "accuracy_vs_time.png",
        plots.accuracy_scatter(summary, "train_seconds", "training time (s)", False),
        "test accuracy against training time",
    )
    report.end_figures()
    _data_section(report, meta.get("data_summary", {}))
    _run_details(report, runs)
    return report


def _recommendation_section(report: Report, results: dict) -> None:
    """The method to use, chosen on validation within noise (see loralab.runs.recommend)."""
    if results.get("validation_cut"):
        report.paragraph(f"Note: {results['validation_cut']}")
    by_size = results.get("recommendations") or {}
    final = results.get("recommendation")
    if final is None:
        return
    report.heading("Recommendation")
    report.paragraph(f"Use {final['method']}. {final.get('summary') or ''}".rstrip())
    report.paragraph(f"In detail: {final['reason']}")
    if len(by_size) > 1:
        report.table(
            [
                "texts per class",
                "use",
                judged_header(results.get("summary") or [], short=False),
                "best on validation",
                "weighed against",
                "1 s.e.",
            ],
            [
                [
                    size,
                    r["method"],
                    r["validation_accuracy"],
                    r["best_method"],
                    r.get("noise_against") or "–",
                    r["noise"],
                ]
                for size, r in by_size.items()
            ],
        )
    report.paragraph(
        "Chosen on validation accuracy (mean over seeds; cross-fitted for methods that chose their "
        "epoch on it): the cheapest method within one standard error of its difference from the "
        "best and at most one point below it, the methods paired seed by seed; with at most 64 "
        "training texts per class, a method built for few labelled texts (SetFit) within that "
        "standard error is preferred. 1 s.e. is that of the difference between the best and the "
        "method it was weighed against. Test figures are reported above, never used to choose."
    )


def run_report(folder: Path) -> Report:
    manifest = read_json(folder / "manifest.json")
    metrics = read_json(folder / "metrics.json")
    report = Report(f"loralab run — {folder.name} ({manifest.get('method')})")
    overview(report, {folder.name: folder})
    report.heading("Results")
    first: dict = next(iter(metrics.values()), {})
    average = f" ({first['positive_label']})" if first.get("positive_label") else " (macro)"
    # Of three or more classes the F1 column is the macro average: one column, not two equal ones.
    macro = ["macro-F1"] if first.get("positive_label") else []
    columns = ["split", "accuracy", f"precision{average}", f"recall{average}", f"F1{average}", *macro]
    rows = [
        [split, m["accuracy"], m["precision"], m["recall"], m["f1"], *[m["macro_f1"] for _ in macro], m["n"]]
        for split, m in metrics.items()
    ]
    report.table([*columns, "texts"], rows)
    report.paragraph(averaging_note(first))
    report.paragraph(
        f"Trainable parameters: {fmt(manifest.get('trainable_parameters'))} of "
        f"{fmt(manifest.get('total_parameters'))}; "
        f"training time {fmt(manifest.get('train_seconds'))} s; status {manifest.get('status')}."
    )
    _lowrank_section(report, folder)
    _data_section(report, manifest.get("data", {}))
    _run_details(report, {folder.name: folder})
    return report


def _lowrank_section(report: Report, folder: Path) -> None:
    """The low-rank study written by ``loralab lowrank``, when the run has one."""
    study = read_json(folder / "lowrank.json")
    if not study.get("rows"):
        return
    report.heading("Low-rank study")
    report.paragraph(
        f"Truncated-SVD approximations of the {len(study['layers'])} targeted layers, evaluated on "
        f"{study['data']}. Version 1 replaces W by its rank-r approximation; version 2 keeps W0 and "
        "adds the rank-r approximation of ΔW = W − W0."
    )
    report.table(*rank_table(study))
    report.image("lowrank.png", plots.lowrank_curve(study), "accuracy against rank")
    swap = study["replace_test"]
    report.paragraph(
        f"Replace test: random clones of the targeted layers give {swap['random_clones']:.4f}; "
        f"the originals put back give {swap['restored']:.4f}."
    )
    if study.get("diagnostics"):
        report.heading("ΔW diagnostics")
        report.table(*diagnostics_table(study))
        for kind, png in plots.delta_spectra(study).items():
            report.image(f"delta_{kind}.png", png, f"singular values of ΔW, {kind} layers")


def sweep_report(folder: Path) -> Report:
    # deferred: loralab.runs.sweep brings the training loop, Accelerate and PEFT (~2 s more)
    from loralab.runs.sweep import summarise

    summary = summarise(folder)
    axes = summary["axes"]
    report = Report(f"loralab sweep — {folder.name}")
    report.heading("Points")
    report.paragraph(
        f"Data {summary['spec']['data']}; fixed settings {json.dumps(summary['spec']['base'])}. "
        "Sorted by validation accuracy; the test accuracy is for reading the chosen point only."
    )
    rows = [
        [r[a] for a in axes]
        + [r.get("validation_accuracy"), r.get("test_accuracy"), r.get("train_seconds"), r["status"]]
        for r in summary["rows"]
    ]
    report.table(axes + ["validation accuracy", "test accuracy", "train s", "status"], rows)
    best = summary["best"]
    if best:
        report.paragraph(
            "Best: "
            + ", ".join(f"{a}={best[a]}" for a in axes)
            + f" (validation {best['validation_accuracy']:.4f}, test {best['test_accuracy']:.4f})."
        )
        if len(axes) >= 2:
            report.image(
                "heatmap.png", plots.sweep_heatmap(summary, axes[0], axes[1]), "validation accuracy heatmap"
            )
    return report


def write_report(path: str | Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` into a compare, sweep or run folder."""
    folder = Path(path)
    if (folder / "sweep.json").exists():
        report = sweep_report(folder)
    elif (folder / "compare.json").exists():
        report = compare_report(folder)
    elif (folder / "manifest.json").exists():
        if not (folder / "metrics.json").exists():
            status = read_json(folder / "manifest.json").get("status")
            raise RunError(f"{folder}: the run has no metrics.json (status: {status}).")
        report = run_report(folder)
    else:
        raise RunError(f"{folder}: neither a run folder (manifest.json) nor a compare folder (compare.json).")
    return report.write(folder)
