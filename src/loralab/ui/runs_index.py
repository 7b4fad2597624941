"""Every run and comparison under the runs directory, read from their folders each time.

Nothing is cached between requests: a run trained from the CLI, or a folder deleted by hand,
shows up (or disappears) at the next page load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from loralab.errors import RunError
from loralab.runs.exportable import export_refusal
from loralab.runs.folder import RunFolder
from loralab.runs.recommend import judged_column

MANIFEST = "manifest.json"
COMPARE_FILE = "compare.json"


@dataclass
class RunEntry:
    """One run folder as the page lists it."""

    path: Path
    name: str
    kind: str  # "run" or "compare"
    status: str
    method: str
    data: str
    accuracy: float | None
    date: str
    exportable: bool = True  # loralab export can write it (see loralab.runs.exportable)

    @property
    def completed(self) -> bool:
        return self.status == "completed"


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def run_status(folder: Path, manifest: dict) -> str:
    """The run's status as its manifest says, except that a run left ``running`` by a process
    that has gone (the server was stopped or killed mid-run) reads ``stopped``: no lock is held
    on it any more (see :class:`loralab.runs.folder.RunFolder`)."""
    status = str(manifest.get("status", "unknown"))
    if status != "running":
        return status
    try:
        stale = RunFolder(folder).read_manifest().get("status") == "stale"
    except (RunError, OSError):
        return status
    return "stopped" if stale else status


def hidden(folder: Path, root: Path) -> bool:
    """A folder loralab keeps to itself under ``root`` (a run being replaced, moved aside)."""
    return any(part.startswith(".") for part in folder.relative_to(root).parts)


def _date(path: Path) -> str:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    except OSError:
        return ""


def _run_entry(folder: Path, root: Path) -> RunEntry:
    manifest = _read(folder / MANIFEST)
    metrics = _read(folder / "metrics.json")
    data = manifest.get("data") or {}
    return RunEntry(
        path=folder,
        name=str(folder.relative_to(root)),
        kind="run",
        status=run_status(folder, manifest),
        method=str(manifest.get("method", "?")),
        data=str(data.get("source", "")) if isinstance(data, dict) else str(data),
        accuracy=(metrics.get("test") or {}).get("accuracy"),
        date=str(manifest.get("finished") or manifest.get("started") or _date(folder))[:16].replace("T", " "),
        exportable=export_refusal(folder, manifest) is None,
    )


def _compare_entry(folder: Path, root: Path) -> RunEntry:
    plan = _read(folder / COMPARE_FILE)
    results = _read(folder / "results.json")
    job = _read(folder / "job.json")
    summary = results.get("summary") or []
    best = max(summary, key=lambda r: r.get(judged_column(r)) or -1.0, default=None)
    status = job.get("status") or ("completed" if results else "incomplete")
    return RunEntry(
        path=folder,
        name=str(folder.relative_to(root)),
        kind="compare",
        status=status,
        method=", ".join(plan.get("methods", [])),
        data=str(plan.get("data", "")),
        accuracy=best.get("test_accuracy") if best else None,
        date=_date(folder / ("results.json" if results else COMPARE_FILE)),
    )


def list_runs(root: Path) -> list[RunEntry]:
    """Compare folders and run folders under ``root``, newest first."""
    if not root.exists():
        return []
    entries = [_compare_entry(p.parent, root) for p in root.rglob(COMPARE_FILE)]
    entries += [_run_entry(p.parent, root) for p in root.rglob(MANIFEST) if not hidden(p.parent, root)]
    return sorted(entries, key=lambda e: (e.date, e.name), reverse=True)


def completed_runs(root: Path) -> list[RunEntry]:
    return [e for e in list_runs(root) if e.kind == "run" and e.completed]


def ship_choice(runs: list[RunEntry], preferred: list[str]) -> str | None:
    """The run Ship starts from: the first of ``preferred`` (a comparison's runs, best first)
    that can be exported, else the newest run that can; ``None`` when none can."""
    shippable = [run.name for run in runs if run.exportable]
    return next((name for name in preferred if name in shippable), shippable[0] if shippable else None)


def inside(root: Path, name: str) -> Path:
    """``root/name``, refusing names that leave ``root`` (``..``, absolute paths)."""
    root = root.resolve()
    folder = (root / name).resolve()
    if folder == root or root not in folder.parents:
        raise RunError(f"{name}: not a folder under {root}.")
    return folder


def resolve_in(root: Path, name: str, what: str = "run") -> Path:
    """The existing folder ``root/name``; a folder that is gone gets a sentence saying so."""
    folder = inside(root, name)
    if not folder.exists():
        raise RunError(
            f"{root / name}: this {what} folder no longer exists (deleted or moved); the list below "
            "shows what is there now."
        )
    return folder
