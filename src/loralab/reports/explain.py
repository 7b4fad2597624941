"""Report sections that explain a model: what ran where, per-class results, its mistakes and
whether its probabilities can be trusted. They read run folders only."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd

from loralab.reports import plots
from loralab.reports.calibration import reliability
from loralab.reports.page import Report
from loralab.runs.card import hub_model_name

MISTAKES_SHOWN = 5
EXAMPLE_CHARS = 240


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def history(run: Path) -> list[dict]:
    path = run / "history.csv"
    return list(csv.DictReader(path.open())) if path.exists() else []


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1] + "…"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{seconds:.1f} s"


def overview(report: Report, runs: dict[str, Path]) -> None:
    """Hardware, base model, versions and wall time at a glance, then any warnings."""
    manifests = {name: read_json(path / "manifest.json") for name, path in runs.items()}
    configs = {name: read_json(path / "config.json") for name, path in runs.items()}
    first = next(iter(manifests.values()), {})
    cpu = first.get("cpu") or first.get("platform", "?")
    hardware = (
        f"{cpu}; {first.get('cpu_count', '?')} cores, {first.get('torch_threads', '?')} torch threads; "
        f"device {first.get('device', '?')}; host {first.get('host', '?')}"
    )
    models = sorted({str(c.get("model")) for c in configs.values() if c.get("model")})
    # The largest parameter count among the runs is the whole encoder with its head.
    totals = [m.get("total_parameters") or 0 for m in manifests.values()]
    encoder = max(totals, default=0)
    names = ", ".join(hub_model_name(m) or f"local folder {Path(m).name}" for m in models)
    model = f"{names}; {encoder:,} parameters, {encoder * 4 / 1e6:,.1f} MB in fp32" if encoder else names
    versions = first.get("versions") or {}
    wall = sum(m.get("elapsed_seconds") or 0.0 for m in manifests.values())
    facts = [
        ("Hardware", hardware),
        ("Model", model),
        (
            "Versions",
            ", ".join(f"{k} {v}" for k, v in versions.items() if v) + f"; Python {first.get('python')}",
        ),
        ("Wall time", _duration(wall) + (f" over {len(runs)} runs" if len(runs) > 1 else "")),
        ("Started", str(first.get("started", "–")) + f"; git commit {first.get('git_commit') or '–'}"),
    ]
    report.facts(facts)
    for name, manifest in manifests.items():
        if manifest.get("warnings"):
            text = " ".join(manifest["warnings"])
            report.warning(f"{name}: {text}" if len(runs) > 1 else text)


def averaging_note(metrics: dict) -> str:
    """Which class the headline precision/recall/F1 are about."""
    if metrics.get("positive_label"):
        return (
            f"Precision, recall and F1 are those of the positive class '{metrics['positive_label']}' "
            "(the second label in sorted order); the per-class table gives both classes."
        )
    return "Precision, recall and F1 are macro averages over the classes."


def _predictions(path: Path, split: str) -> pd.DataFrame | None:
    file = path / "predictions" / f"{split}.csv"
    if not file.exists():
        return None
    frame = pd.read_csv(file, keep_default_na=False, dtype={"label": str, "predicted": str})
    return frame if {"label", "predicted", "probability"} <= set(frame.columns) and len(frame) else None


def run_sections(report: Report, name: str, path: Path, level: int = 3) -> None:
    """Per-class results, confusion matrix, reliability, mistakes and configuration of one run."""
    metrics = read_json(path / "metrics.json")
    split = "test" if metrics.get("test", {}).get("n") else "validation"
    values = metrics.get(split)
    report.heading(name, level)
    if values:
        report.paragraph(f"Per class, on {split}:")
        rows = [
            [label, v["precision"], v["recall"], v["f1"], v["support"]]
            for label, v in values["per_class"].items()
        ]
        report.table(["class", "precision", "recall", "F1", "support"], rows)
        report.begin_figures()
        slug = name.replace("/", "_")
        report.image(
            f"confusion_{slug}.png",
            plots.confusion(values["confusion_matrix"], values["labels"], name),
            f"confusion matrix of {name}",
        )
        frame = _predictions(path, split)
        if frame is not None:
            correct = (frame["label"] == frame["predicted"]).to_numpy()
            bins = reliability(frame["probability"].to_numpy(dtype=float), correct)
            report.image(
                f"reliability_{slug}.png",
                plots.reliability_diagram(bins, f"{name} ({split})"),
                f"reliability diagram of {name}",
            )
        report.end_figures()
        if frame is not None:
            report.paragraph(
                f"Expected calibration error on {split}: {bins.ece:.3f} (0 when a confidence of p is "
                "right a fraction p of the time)."
            )
            _mistakes(report, frame, values["labels"])
    _configuration(report, name, path)


def _mistakes(report: Report, frame: pd.DataFrame, labels: list[str]) -> None:
    wrong = frame[frame["label"] != frame["predicted"]].sort_values("probability", ascending=False)
    if len(wrong):
        report.paragraph(f"The {min(MISTAKES_SHOWN, len(wrong))} most confident mistakes:")
        rows = [
            [r.label, r.predicted, float(r.probability), _clip(r.text)]
            for r in wrong.head(MISTAKES_SHOWN).itertuples()
        ]
        report.table(["true", "predicted", "probability", "text"], rows, text_columns=(3,))
    # One example per cell of the confusion matrix, chosen at random with a fixed seed.
    rng = np.random.default_rng(0)
    rows = []
    for (true, predicted), cell in frame.groupby(["label", "predicted"], sort=False):
        pick = cell.iloc[int(rng.integers(len(cell)))]
        rows.append([true, predicted, len(cell), float(pick["probability"]), _clip(pick["text"])])
    order = {label: i for i, label in enumerate(labels)}
    rows.sort(key=lambda r: (order.get(r[0], len(order)), order.get(r[1], len(order))))
    report.paragraph("One example from each cell of the confusion matrix:")
    report.table(["true", "predicted", "texts in cell", "probability", "example"], rows, text_columns=(4,))


def _configuration(report: Report, name: str, path: Path) -> None:
    manifest = read_json(path / "manifest.json")
    details = {
        "config": read_json(path / "config.json"),
        "resolved": manifest.get("resolved"),
        "status": manifest.get("status"),
        "trainable_parameters": manifest.get("trainable_parameters"),
        "total_parameters": manifest.get("total_parameters"),
        "train_seconds": manifest.get("train_seconds"),
        "elapsed_seconds": manifest.get("elapsed_seconds"),
    }
    report.details(f"Configuration of {name}", json.dumps(details, indent=2))
