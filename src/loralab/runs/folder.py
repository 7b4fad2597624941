"""Run folders: atomic JSON writes, the manifest, and refusing to overwrite a finished run.

A run folder holds ``config.json``, ``manifest.json`` (written at start and updated until
the status is final, also when the run fails), ``metrics.json``, ``history.csv``, ``model/``
and ``predictions/``.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from loralab.errors import RunError

MANIFEST = "manifest.json"


def write_json(path: Path, data: Any) -> None:
    """Write JSON to a temporary name in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, default=str)
        handle.write("\n")
    os.replace(tmp, path)


def write_csv(path: Path, rows: list[dict]) -> None:
    fieldnames: list[str] = []
    for row in rows:
        fieldnames += [k for k in row if k not in fieldnames]
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _git_commit() -> str | None:
    source = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment() -> dict[str, Any]:
    import importlib.metadata as md

    import torch

    versions: dict[str, str | None] = {}
    for name in ("loralab", "torch", "transformers", "peft", "accelerate", "scikit-learn", "pandas"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    return {
        "versions": versions,
        "python": platform.python_version(),
        "git_commit": _git_commit(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunFolder:
    """One run on disk."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.manifest: dict[str, Any] = {}
        self._started = time.perf_counter()

    @property
    def model_dir(self) -> Path:
        return self.path / "model"

    def exists(self) -> bool:
        return (self.path / MANIFEST).exists()

    def is_completed(self) -> bool:
        """Whether a run finished here and was reload-checked: the one test of "is it done?"."""
        path = self.path / MANIFEST
        return path.exists() and json.loads(path.read_text()).get("status") == "completed"

    def read_manifest(self) -> dict[str, Any]:
        path = self.path / MANIFEST
        if not path.exists():
            raise RunError(f"{self.path}: not a loralab run folder (no {MANIFEST}).")
        return json.loads(path.read_text())

    def create(self, overwrite: bool) -> None:
        """Start a run here; refuse a folder that already holds a run unless ``overwrite``."""
        if self.path.exists() and self.path.is_file():
            raise RunError(f"{self.path}: is a file; choose a folder for --output-dir.")
        if self.path.exists() and any(self.path.iterdir()):
            if not overwrite:
                what = "a run" if self.exists() else "files"
                raise RunError(
                    f"{self.path}: already holds {what}; choose another --output-dir or pass --overwrite."
                )
            if not self.exists():
                raise RunError(
                    f"{self.path}: holds files that are not a loralab run; refusing to delete them."
                )
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)

    def start(self, config: dict[str, Any], extra: dict[str, Any]) -> None:
        write_json(self.path / "config.json", config)
        self.manifest = {
            "status": "running",
            "started": now(),
            **environment(),
            **extra,
        }
        write_json(self.path / MANIFEST, self.manifest)

    def update(self, **fields: Any) -> None:
        self.manifest.update(fields)
        self.manifest["elapsed_seconds"] = round(time.perf_counter() - self._started, 3)
        write_json(self.path / MANIFEST, self.manifest)

    def finish(self, status: str, **fields: Any) -> None:
        self.update(status=status, finished=now(), **fields)

    def save_model(self, classifier) -> None:
        """Save to ``model.tmp`` first and rename, so ``model/`` is complete or absent."""
        tmp = self.path / "model.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        classifier.save(tmp)
        if self.model_dir.exists():
            shutil.rmtree(self.model_dir)
        os.replace(tmp, self.model_dir)
