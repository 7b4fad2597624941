"""``loralab report``: one self-contained HTML file and a Markdown summary, read from run folders.

The HTML embeds its images as base64 PNG, so it opens offline and can be mailed as one file;
the Markdown summary sits next to PNG files of the same plots.
"""

from __future__ import annotations

import base64
import csv
import html
import json
from pathlib import Path

from loralab.errors import RunError
from loralab.reports import plots

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; display: block; margin: 0.5em 0 1.5em; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
"""


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _history(run: Path) -> list[dict]:
    path = run / "history.csv"
    return list(csv.DictReader(path.open())) if path.exists() else []


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


class Report:
    def __init__(self, title: str) -> None:
        self.title = title
        self.html: list[str] = [f"<h1>{html.escape(title)}</h1>"]
        self.md: list[str] = [f"# {title}", ""]
        self.images: dict[str, bytes] = {}

    def heading(self, text: str) -> None:
        self.html.append(f"<h2>{html.escape(text)}</h2>")
        self.md += [f"## {text}", ""]

    def paragraph(self, text: str) -> None:
        self.html.append(f"<p>{html.escape(text)}</p>")
        self.md += [text, ""]

    def table(self, columns: list[str], rows: list[list]) -> None:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows
        )
        self.html.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        self.md += ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
        self.md += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
        self.md.append("")

    def image(self, name: str, png: bytes, alt: str) -> None:
        self.images[name] = png
        data = base64.b64encode(png).decode()
        self.html.append(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')
        self.md += [f"![{alt}]({name})", ""]

    def code(self, text: str) -> None:
        self.html.append(f"<pre>{html.escape(text)}</pre>")
        self.md += ["```json", text, "```", ""]

    def write(self, folder: Path) -> tuple[Path, Path]:
        page = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(self.html)}</body></html>"
        )
        out_html, out_md = folder / "report.html", folder / "report.md"
        for name, png in self.images.items():
            (folder / name).write_bytes(png)
        out_html.write_text(page, encoding="utf-8")
        out_md.write_text("\n".join(self.md) + "\n", encoding="utf-8")
        return out_html, out_md


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
    histories = {name: _history(path) for name, path in runs.items()}
    histories = {k: v for k, v in histories.items() if v}
    if histories:
        report.heading("Training curves")
        report.image(
            "training_curves.png",
            plots.training_curves(histories),
            "training loss and validation accuracy per epoch",
        )
    report.heading("Confusion matrices (test)")
    for name, path in runs.items():
        test = _read_json(path / "metrics.json").get("test")
        if test:
            report.image(
                f"confusion_{name.replace('/', '_')}.png",
                plots.confusion(test["confusion_matrix"], test["labels"], name),
                f"confusion matrix of {name}",
            )
    report.heading("Configuration and versions")
    for name, path in runs.items():
        manifest = _read_json(path / "manifest.json")
        details = {
            "config": _read_json(path / "config.json"),
            "versions": manifest.get("versions"),
            "git_commit": manifest.get("git_commit"),
            "device": manifest.get("device"),
            "host": manifest.get("host"),
            "status": manifest.get("status"),
        }
        report.paragraph(name)
        report.code(json.dumps(details, indent=2))


def _share(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2%}" if value >= 0.001 or value == 0 else f"{value * 100:.2g}%"


def _size_key(size) -> float:
    return float("inf") if size in (None, "all") else float(size)


def compare_report(folder: Path) -> Report:
    results = _read_json(folder / "results.json")
    if not results:
        raise RunError(f"{folder}: the comparison has no results.json yet; run loralab compare first.")
    meta = _read_json(folder / "compare.json")
    summary = results["summary"]
    report = Report(f"loralab comparison — {results['data']}")
    report.heading("Results")
    rows = []
    for r in summary:

        def pm(key: str, row: dict = r):
            return f"{row[key]:.4f} ± {row[key + '_std']:.4f}" if row["seeds"] > 1 else row[key]

        several_sizes = len({x.get("train_size") for x in summary}) > 1
        rows.append(
            [
                f"{r['method']} @ {r['train_size']}/class" if several_sizes else r["method"],
                r["trainable_parameters"],
                _share(r.get("trainable_share")),
                f"{r['train_seconds']:.1f}",
                "–" if not r.get("inference_texts_per_second") else f"{r['inference_texts_per_second']:,.0f}",
                pm("validation_accuracy"),
                pm("test_accuracy"),
                pm("test_macro_f1"),
            ]
        )
    report.table(
        [
            "method",
            "trainable params",
            "share of model",
            "train s",
            "infer texts/s",
            "val acc",
            "test acc",
            "test macro-F1",
        ],
        rows,
    )
    _recommendation_section(report, results)
    if len({r.get("train_size") for r in summary}) > 1:
        report.image(
            "learning_curves.png", plots.learning_curves(summary), "test accuracy against training set size"
        )
        summary = [
            r
            for r in summary
            if r.get("train_size") == max((r.get("train_size") for r in summary), key=_size_key)
        ]
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
    _data_section(report, meta.get("data_summary", {}))
    runs = {r["run"]: folder / r["run"] for r in results["runs"]}
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
    report.paragraph(f"Use {final['method']}. Why: {final['reason']}")
    if len(by_size) > 1:
        report.table(
            ["texts per class", "use", "validation acc", "best on validation", "noise (1 s.e.)"],
            [
                [size, r["method"], r["validation_accuracy"], r["best_method"], r["noise"]]
                for size, r in by_size.items()
            ],
        )
    report.paragraph(
        "Chosen on validation accuracy (mean over seeds): the cheapest method within one standard "
        "error of the best. Test figures are reported above, never used to choose."
    )


def run_report(folder: Path) -> Report:
    manifest = _read_json(folder / "manifest.json")
    metrics = _read_json(folder / "metrics.json")
    report = Report(f"loralab run — {folder.name} ({manifest.get('method')})")
    report.heading("Results")
    rows = [
        [split, m["accuracy"], m["precision"], m["recall"], m["f1"], m["macro_f1"], m["n"]]
        for split, m in metrics.items()
    ]
    report.table(["split", "accuracy", "precision", "recall", "F1", "macro-F1", "texts"], rows)
    report.paragraph(
        f"Trainable parameters: {_fmt(manifest.get('trainable_parameters'))} of "
        f"{_fmt(manifest.get('total_parameters'))}; "
        f"training time {_fmt(manifest.get('train_seconds'))} s; status {manifest.get('status')}."
    )
    _lowrank_section(report, folder)
    _data_section(report, manifest.get("data", {}))
    _run_details(report, {folder.name: folder})
    return report


def _lowrank_section(report: Report, folder: Path) -> None:
    """The low-rank study written by ``loralab lowrank``, when the run has one."""
    from loralab.analysis.tables import diagnostics_table, rank_table

    study = _read_json(folder / "lowrank.json")
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
            status = _read_json(folder / "manifest.json").get("status")
            raise RunError(f"{folder}: the run has no metrics.json (status: {status}).")
        report = run_report(folder)
    else:
        raise RunError(f"{folder}: neither a run folder (manifest.json) nor a compare folder (compare.json).")
    return report.write(folder)
