"""Load the classifier of a completed run folder.

Apart from :mod:`loralab.runs.train` so that loading imports neither the training loop nor
Accelerate: predicting with a TF-IDF run needs only scikit-learn.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from loralab.errors import RunError
from loralab.methods import Classifier, load_saved_classifier
from loralab.runs.folder import RunFolder


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
