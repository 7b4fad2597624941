"""Live progress of a comparison, read from its folder only.

Every run folder inside a compare folder has ``manifest.json`` (status) and, for methods that
train in epochs, ``history.csv`` (one row per finished epoch, written as it finishes). Reading
those files, rather than keeping state in the web process, is what makes a page reload or a
second browser tab show the same truth as the worker.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from loralab.config import TrainConfig
from loralab.errors import LoralabError
from loralab.methods import get_method
from loralab.methods.neural import NeuralMethod
from loralab.ui.runs_index import COMPARE_FILE, MANIFEST, hidden, run_status


@dataclass
class RunProgress:
    name: str
    method: str
    status: str
    epoch: int = 0
    epochs: int = 0
    train_loss: float | None = None
    validation_accuracy: float | None = None
    seconds_left: float | None = None
    test_accuracy: float | None = None


@dataclass
class CompareProgress:
    folder: Path
    methods: list[str]
    runs: list[RunProgress] = field(default_factory=list)
    results: dict | None = None

    @property
    def waiting(self) -> list[str]:
        """Methods with no run folder yet."""
        started = {r.method for r in self.runs}
        return [m for m in self.methods if m not in started]


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _history(folder: Path) -> list[dict]:
    try:
        with open(folder / "history.csv", newline="") as handle:
            return list(csv.DictReader(handle))
    except OSError:
        return []


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _planned_epochs(folder: Path, method: str, manifest: dict) -> int:
    """Epochs the run will train, as training decides them: its config's, else its method's
    default raised by the step floor on a small training set; 0 for a method that does not
    train in epochs (an untrained head inherits a default it never uses)."""
    settings = read_json(folder / "config.json")
    try:
        known = get_method(method)
        config = TrainConfig.from_dict(settings, strict=False)
    except (LoralabError, TypeError, ValueError):  # a run of another installation or version
        return int(settings.get("epochs") or 0)
    if not (known.trains_in_epochs and isinstance(known, NeuralMethod)):
        return 0
    train = ((manifest.get("data") or {}).get("splits") or {}).get("train") or {}
    if not isinstance(train.get("size"), int):  # not known yet: the method's own epochs
        return int(config.epochs or known.default_epochs or 0)
    return known.planned(train["size"], known.settled(config))[1]


def run_progress(folder: Path, name: str) -> RunProgress:
    manifest = read_json(folder / MANIFEST)
    method = str(manifest.get("method", "?"))
    status = run_status(folder, manifest) if manifest else "starting"
    progress = RunProgress(name=name, method=method, status=status)
    rows = _history(folder)
    progress.epochs = _planned_epochs(folder, method, manifest)
    if rows:
        last = rows[-1]
        progress.epoch = int(float(last.get("epoch") or len(rows)))
        progress.train_loss = _number(last.get("train_loss"))
        progress.validation_accuracy = _number(last.get("val_accuracy"))
        seconds = [s for s in (_number(r.get("epoch_seconds")) for r in rows) if s is not None]
        if progress.status == "running" and seconds and progress.epochs > progress.epoch:
            progress.seconds_left = sum(seconds) / len(seconds) * (progress.epochs - progress.epoch)
        if progress.status == "completed":  # stopped early on validation: it trained this many
            progress.epochs = progress.epoch
    metrics = read_json(folder / "metrics.json")
    progress.test_accuracy = (metrics.get("test") or {}).get("accuracy")
    if progress.validation_accuracy is None:  # methods without epochs report it once, at the end
        progress.validation_accuracy = (metrics.get("validation") or {}).get("accuracy")
    return progress


def compare_progress(folder: Path) -> CompareProgress:
    """Where the comparison in ``folder`` stands: one row per run folder started so far."""
    plan = read_json(folder / COMPARE_FILE)
    state = CompareProgress(folder=folder, methods=list(plan.get("methods", [])))
    # In the order the runs started (manifest times are ISO strings, so they sort as text).
    manifests = sorted(
        (p for p in folder.rglob(MANIFEST) if not hidden(p.parent, folder)),
        key=lambda p: str(read_json(p).get("started", "")),
    )
    for manifest in manifests:
        state.runs.append(run_progress(manifest.parent, str(manifest.parent.relative_to(folder))))
    results = read_json(folder / "results.json")
    state.results = results or None
    return state
