"""Run folders: the manifest, one writer at a time, and never losing a finished run.

A run folder holds ``config.json``, ``manifest.json`` (written at start and updated until
the status is final, also when the run fails), ``metrics.json``, ``history.csv``, ``model/``
and ``predictions/``. Its files are written atomically (:mod:`loralab.runs.files`) by the one
process that holds its lock (:mod:`loralab.runs.locks`); a run replaced with ``--overwrite``
is kept aside until the new one completes.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import json
import os
import platform
import shutil
import socket
import subprocess
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from loralab.errors import RunError, known_failure
from loralab.runs.files import (
    apply_default_modes,
    read_json_file,
    safetensors_problem,
    write_csv,
    write_json,
)
from loralab.runs.locks import ExclusiveLock, process_alive

__all__ = ["RunFolder", "write_csv", "write_json", "environment", "now"]

MANIFEST = "manifest.json"
# The old run an --overwrite replaces waits here until the new one completes.
REPLACED_SUFFIX = ".replaced"


def _git_commit() -> str | None:
    source = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _cpu_name() -> str | None:
    """The processor's model name (``platform.processor()`` is often empty on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def environment() -> dict[str, Any]:
    # deferred: torch takes ~2 s to import; commands that only read run folders never need it
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
        "pid": os.getpid(),
        "platform": platform.platform(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "cpu": _cpu_name(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


T = TypeVar("T")


class RunFolder:
    """One run on disk, written by one process at a time (see :class:`ExclusiveLock`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.manifest: dict[str, Any] = {}
        self._started = time.perf_counter()
        self.lock = ExclusiveLock(self.path)
        self._replacing = False  # this object moved the run it replaces aside (create)

    @property
    def model_dir(self) -> Path:
        return self.path / "model"

    @property
    def replaced(self) -> Path:
        return self.path.parent / f".{self.path.name}{REPLACED_SUFFIX}"

    def exists(self) -> bool:
        return (self.path / MANIFEST).exists()

    def is_completed(self) -> bool:
        """Whether a run finished here and was reload-checked: the one test of "is it done?"."""
        return self.exists() and self.read_manifest().get("status") == "completed"

    def read_manifest(self) -> dict[str, Any]:
        """The manifest; a run left ``running`` by a process that is gone reads as ``stale``."""
        path = self.path / MANIFEST
        if not self.path.exists():
            raise RunError(f"{self.path}: no such run folder.")
        if not path.exists():
            raise RunError(f"{self.path}: not a loralab run folder (no {MANIFEST}).")
        manifest = read_json_file(path, "the run cannot be used; train it again with --overwrite")
        if not isinstance(manifest, dict):
            raise RunError(f"{path}: damaged, not a JSON object; train the run again with --overwrite.")
        if manifest.get("status") == "running" and not self._writer_alive(manifest):
            manifest["status"] = "stale"
            manifest["stale_reason"] = (
                f"left 'running' by process {manifest.get('pid', '?')} on {manifest.get('host', '?')}, "
                "which has stopped without recording an outcome (killed?)"
            )
        return manifest

    def _writer_alive(self, manifest: dict[str, Any]) -> bool:
        if self.lock.held:
            return True
        try:
            free = self.lock.acquire()
        except OSError:  # a read-only parent: judge by the recorded process instead
            pid, host = manifest.get("pid"), manifest.get("host")
            return not (isinstance(pid, int) and host == socket.gethostname() and not process_alive(pid))
        if free:
            self.lock.release()
        return not free

    def acquire(self) -> None:
        """Hold this run folder's lock until :meth:`finish`, or until the process exits. A lock
        held for a moment (another process checking whether this run's writer is alive, as
        :meth:`read_manifest` does) is waited for; a writer's is not given up for."""
        if self.lock.acquire(wait=2.0):
            return
        holder = ""
        with contextlib.suppress(OSError, ValueError, AttributeError):
            manifest = json.loads((self.path / MANIFEST).read_text())
            holder = f" (process {manifest['pid']} on {manifest['host']})"
        raise RunError(
            f"{self.path}: another loralab process is writing this run{holder}; wait for it to "
            "finish or choose another --output-dir."
        )

    def release(self) -> None:
        self.lock.release()

    def create(self, overwrite: bool) -> None:
        """Start a run here; refuse a folder that already holds a run unless ``overwrite``.

        The run ``overwrite`` replaces is moved aside, not deleted, until the new run
        completes; a new run that fails or is interrupted gives the folder back to it."""
        if self.path.exists() and self.path.is_file():
            raise RunError(f"{self.path}: is a file; choose a folder for --output-dir.")
        self.acquire()
        if self.path.exists() and any(self.path.iterdir()):
            if not overwrite:
                self.release()
                raise RunError(self._occupied_message())
            if not self.exists():
                self.release()
                raise RunError(
                    f"{self.path}: holds files that are not a loralab run; refusing to delete them."
                )
            if self.replaced.exists():
                shutil.rmtree(self.replaced)
            os.replace(self.path, self.replaced)
            self._replacing = True
        self.path.mkdir(parents=True, exist_ok=True)

    def _occupied_message(self) -> str:
        if not self.exists():
            return f"{self.path}: already holds files; choose another --output-dir or pass --overwrite."
        try:
            status = self.read_manifest().get("status")
        except RunError:
            status = "damaged"
        if status in ("interrupted", "stale", "failed"):
            return (
                f"{self.path}: already holds a run that is '{status}'; continue it with --resume, "
                "replace it with --overwrite, or choose another --output-dir."
            )
        return f"{self.path}: already holds a run; choose another --output-dir or pass --overwrite."

    def start(self, config: dict[str, Any], extra: dict[str, Any]) -> None:
        """Write ``config.json`` and a ``running`` manifest; a caller stopped here (full disk,
        Ctrl-C) gives the folder back with :meth:`discard`, or :meth:`release` on a resume."""
        self.acquire()
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
        """Record the final status and release the folder. A run that replaced another with
        ``--overwrite`` and did not complete gives the folder back to the old run (a resumed
        run that stops again keeps its folder and checkpoints)."""
        try:
            if status != "completed" and self._replacing and self.replaced.exists():
                self.discard()
                return
            self.update(status=status, finished=now(), **fields)
            if self.replaced.exists():
                shutil.rmtree(self.replaced, ignore_errors=True)
        finally:
            self.release()

    def discard(self) -> None:
        """Remove this unfinished run (and put back the run it was replacing, if any)."""
        try:
            shutil.rmtree(self.path, ignore_errors=True)
            if self.replaced.exists():
                os.replace(self.replaced, self.path)
        finally:
            self.release()

    def save_model(self, classifier) -> None:
        """Save to ``model.tmp`` first and rename, so ``model/`` is complete or absent; record
        each file's size so a damaged or missing file is named when the run is loaded."""
        tmp = self.path / "model.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        classifier.save(tmp)
        apply_default_modes(tmp)
        # The model card (README.md) is rewritten once the run's metrics are known; it is
        # documentation, not something the model loads, so its size is not recorded.
        self.manifest["model_files"] = {
            str(p.relative_to(tmp)): p.stat().st_size
            for p in sorted(tmp.rglob("*"))
            if p.is_file() and p.name != "README.md"
        }
        if self.model_dir.exists():
            shutil.rmtree(self.model_dir)
        os.replace(tmp, self.model_dir)

    def check_model_files(self, manifest: dict[str, Any]) -> None:
        """Refuse a ``model/`` folder whose files are missing, truncated or not parseable."""
        damaged = "the run is damaged; restore it from a copy or train it again with --overwrite"
        for name, size in (manifest.get("model_files") or {}).items():
            path = self.model_dir / name
            if not path.is_file():
                raise RunError(f"{path}: missing; {damaged}.")
            if path.stat().st_size != size:
                raise RunError(
                    f"{path}: has {path.stat().st_size:,} bytes where the run saved {size:,} "
                    f"(truncated or replaced); {damaged}."
                )
        for path in sorted(self.model_dir.rglob("*.json")):
            read_json_file(path, damaged)
        for path in sorted(self.model_dir.rglob("*.safetensors")):
            problem = safetensors_problem(path)
            if problem:
                raise RunError(f"{path}: damaged ({problem}); {damaged}.")

    def load_checked(self, load: Callable[[Path], T]) -> T:
        """``load(model_dir)`` after checking the files; a failure while loading is reported
        as a damaged run folder rather than a library's traceback."""
        self.check_model_files(self.read_manifest())
        try:
            loaded = load(self.model_dir)
        except RunError:
            raise
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
            reason = known_failure(err) or f"{type(err).__name__}: {str(err).strip()[:200]}"
            raise RunError(
                f"{self.model_dir}: the saved model cannot be loaded ({reason.rstrip('.')}); "
                "restore the run from a copy or train it again with --overwrite."
            ) from err
        _cap_max_length(loaded, self.path)
        return loaded


def _cap_max_length(classifier: Any, run: Path) -> None:
    """Cut texts at the model's positions when a run was saved with a longer ``max_length``
    (runs from before it was checked at training time): a long text would crash otherwise."""
    config = getattr(classifier, "config", None)
    model_config = getattr(getattr(classifier, "model", None), "config", None)
    if config is None or model_config is None:  # no transformer: nothing reads max_length
        return
    # deferred: loralab.models imports torch (~2 s); commands that only read run folders never need it
    from loralab.models.loading import max_tokens

    limit = max_tokens(model_config)
    if limit is None or config.max_length <= limit:
        return
    warnings.warn(
        f"{run} was saved with max_length {config.max_length}, more than its model reads; "
        f"texts are cut at {limit} tokens.",
        stacklevel=2,
    )
    classifier.config = config.replace(max_length=limit)
