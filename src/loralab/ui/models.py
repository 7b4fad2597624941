"""Using finished runs from the page: classify typed texts, score a file, export a run.

Loaded classifiers are kept per run folder (keyed by its manifest's modification time, so a
retrained or deleted run is never answered from memory); the page usually asks the same run
several questions in a row and loading a transformer takes seconds.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse

from loralab.data.readers import is_blank
from loralab.errors import DataError, LoralabError, RunError
from loralab.methods import Classifier, get_method
from loralab.methods import method_names as registry_names
from loralab.ui.jobs import JOB_FILE
from loralab.ui.progress import read_json
from loralab.ui.runs_index import resolve_in
from loralab.ui.uploads import safe_name, uploads_dir

# Transformer runs hold ~100 MB each; two is enough to switch between a pair of runs.
LOADED_RUNS = 2
EXPORTS = "exports"
SCORED_PREFIX = "scored-"


def method_names() -> list[str]:
    return registry_names()


def method_summaries() -> list[tuple[str, str]]:
    return [(name, get_method(name).summary) for name in registry_names()]


class LoadedRuns:
    """A small cache of classifiers loaded for prediction, most recently used last."""

    def __init__(self, size: int = LOADED_RUNS) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._loaded: OrderedDict[Path, tuple[float, Classifier]] = OrderedDict()

    def get(self, folder: Path) -> Classifier:
        # could be at module level: loralab.runs.predict takes no time once loralab.methods is loaded
        from loralab.runs.predict import load_for_prediction

        stamp = (folder / "manifest.json").stat().st_mtime
        with self._lock:
            hit = self._loaded.get(folder)
            if hit is not None and hit[0] == stamp:
                self._loaded.move_to_end(folder)
                return hit[1]
            classifier = load_for_prediction(folder)
            self._loaded[folder] = (stamp, classifier)
            while len(self._loaded) > self.size:
                self._loaded.popitem(last=False)
            return classifier


def _run_folder(root: Path, name: str) -> Path:
    if not name:
        raise RunError("Pick a completed run first.")
    folder = resolve_in(root, name)
    if not (folder / "manifest.json").exists():
        raise RunError(f"{name}: not a run folder (no manifest.json).")
    return folder


def _text_column(folder: Path, root: Path) -> str:
    """The text column the run was trained on: a comparison started from the page records it
    in its job file (its runs' manifests are given ready-made splits); else the manifest's."""
    for parent in folder.parents:
        if parent == root or root not in parent.parents:
            break
        request = read_json(parent / JOB_FILE).get("request") or {}
        if request.get("text_col"):
            return str(request["text_col"])
    manifest = read_json(folder / "manifest.json")
    return str((manifest.get("columns") or {}).get("text", "text"))


def add_routes(app: FastAPI, root: Path, page: Callable, error: Callable) -> None:
    """The Try and Ship sections' routes."""
    loaded = LoadedRuns()

    @app.post("/try/classify", response_class=HTMLResponse)
    def classify(request: Request, run: str = Form(""), texts: str = Form("")) -> HTMLResponse:
        lines = [line.strip() for line in texts.splitlines() if not is_blank(line)]
        try:
            if not lines:
                raise DataError("Type at least one text, one per line.")
            classifier = loaded.get(_run_folder(root, run))
            probs = classifier.predict_proba(lines)
        except LoralabError as err:
            return error(request, err)
        rows = [
            (text, classifier.labels[int(p.argmax())], list(zip(classifier.labels, p.tolist(), strict=True)))
            for text, p in zip(lines, probs, strict=True)
        ]
        return page(request, "classified.html", rows=rows, labels=classifier.labels)

    @app.post("/try/score", response_class=HTMLResponse)
    def score(
        request: Request, run: str = Form(""), text_col: str = Form(""), file: UploadFile = File(...)
    ) -> HTMLResponse:
        # could be at module level: loralab.runs.predict takes no time once loralab.methods is loaded
        from loralab.runs.predict import predict_file

        folder_out = uploads_dir(root)
        folder_out.mkdir(parents=True, exist_ok=True)
        name = safe_name(file.filename or "texts.csv")
        suffix = "".join(Path(name).suffixes)
        fd, tmp = tempfile.mkstemp(prefix=".score-", suffix=suffix, dir=folder_out)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        output = folder_out / f"{SCORED_PREFIX}{stamp}-{name}"
        try:
            with os.fdopen(fd, "wb") as handle:
                while chunk := file.file.read(1 << 20):
                    handle.write(chunk)
            folder = _run_folder(root, run)
            classifier = loaded.get(folder)
            rows = predict_file(
                classifier, Path(tmp), output, text_col.strip() or _text_column(folder, root)
            ).rows
        except LoralabError as err:
            return error(request, DataError(str(err).replace(tmp, file.filename or name)))
        finally:
            Path(tmp).unlink(missing_ok=True)
        return page(request, "scored.html", rows=rows, output=output.name, source=file.filename)

    @app.get("/download/{name}")
    def download(request: Request, name: str):
        path = uploads_dir(root) / safe_name(name)
        if not name.startswith(SCORED_PREFIX) or not path.is_file():
            return page(request, "error_page.html", message=f"{name}: no such scored file (deleted?).")
        # scored-STAMP-NAME is offered for download as scored-NAME.
        return FileResponse(path, filename=SCORED_PREFIX + name[len(SCORED_PREFIX) :].split("-", 2)[-1])

    @app.post("/ship/export", response_class=HTMLResponse)
    def export(request: Request, run: str = Form("")) -> HTMLResponse:
        # deferred: loralab.runs.export brings the training loop and Accelerate (~1.3 s)
        from loralab.runs.export import export_run

        try:
            folder = _run_folder(root, run)
            out = root / EXPORTS / run.replace("/", "--")
            result = export_run(folder, out, overwrite=True)
        except LoralabError as err:
            return error(request, err)
        card = out / "README.md"
        return page(
            request,
            "exported.html",
            result=result,
            out=out,
            run=folder,
            files=sorted(p.name for p in out.iterdir()),
            card=card.read_text()[:4000] if card.exists() else None,
        )
