"""Load the classifier of a completed run folder.

Apart from :mod:`loralab.runs.train` so that loading imports neither the training loop nor
Accelerate: predicting with a TF-IDF run needs only scikit-learn.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from functools import partial
from pathlib import Path

from loralab.config_files import JobConfig
from loralab.errors import RunError
from loralab.methods import Classifier, load_saved_classifier
from loralab.runs.folder import MANIFEST, RunFolder


def recorded_columns(run_dir: str | Path) -> dict[str, str]:
    """The columns the run read its texts and labels from (``{"text": …, "label": …}``), as its
    manifest records them; empty for a folder without a readable manifest (an ONNX export)."""
    if not (Path(run_dir) / MANIFEST).is_file():
        return {}
    try:
        columns = RunFolder(run_dir).read_manifest().get("columns")
    except RunError:  # a damaged manifest: loading the run says so
        return {}
    if not isinstance(columns, dict):
        return {}
    return {k: v for k, v in columns.items() if k in ("text", "label") and isinstance(v, str)}


def run_column(
    run_dir: str | Path, role: str, given: str | None, columns: Collection[str] | None
) -> tuple[str, str | None]:
    """The ``role`` ("text" or "label") column to read data with: ``given``; else the one the
    run was trained on, where the data has it (``columns``; ``None`` when they are not known);
    else the usual default. With a note when the column is the run's rather than the default."""
    default = {f.name: f.default for f in dataclasses.fields(JobConfig)}[f"{role}_col"]
    if given is not None:
        return given, None
    recorded = recorded_columns(run_dir).get(role)
    if recorded is None or recorded == default or columns is None or recorded not in columns:
        return str(default), None
    what = "Texts" if role == "text" else "Labels"
    return (
        recorded,
        f"{what} read from column '{recorded}', the run's {role} column (--{role}-col chooses another).",
    )


def completed_run(run_dir: str | Path) -> RunFolder:
    """The folder of a completed run with a model, checked without loading the model."""
    folder = RunFolder(run_dir)
    if (folder.path / "compare.json").exists():
        runs = sorted(str(p.parent.relative_to(folder.path)) for p in folder.path.rglob("manifest.json"))
        raise RunError(
            f"{folder.path}: is a compare folder, not a run; pass one of its runs ({', '.join(runs[:8])})."
        )
    if not folder.is_completed():
        manifest = folder.read_manifest()
        raise RunError(
            f"{folder.path}: the run is '{manifest.get('status')}', not completed; it has no usable model."
        )
    if not folder.model_dir.exists():
        raise RunError(f"{folder.path}: the run has no model/ folder.")
    return folder


def load_run(run_dir: str | Path, *, for_prediction: bool = False) -> Classifier:
    """Load the classifier of a completed run folder; ``for_prediction`` gives its fastest form
    that predicts the same (see :func:`loralab.methods.load_saved_classifier`)."""
    folder = completed_run(run_dir)
    return folder.load_checked(partial(load_saved_classifier, for_prediction=for_prediction))
