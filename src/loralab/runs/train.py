"""Train one run (``loralab train``) and load a completed one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from loralab.config import TrainConfig
from loralab.data import DataSplits
from loralab.errors import RunError
from loralab.methods import Classifier, load_saved_classifier
from loralab.runs.execute import RunResult, execute
from loralab.runs.folder import RunFolder


def train_run(
    data: str | Path | DataSplits,
    config: TrainConfig,
    output_dir: str | Path,
    *,
    text_col: str = "text",
    label_col: str = "label",
    subset: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    resume: bool = False,
    on_epoch_hook: Callable[[dict], None] | None = None,
    evaluate_splits: Sequence[str] = ("validation", "test"),
) -> RunResult:
    """Train ``config.method`` on DATA into ``output_dir``: :func:`loralab.runs.execute.execute`
    with the data first, as ``loralab train`` takes it."""
    return execute(
        config,
        data,
        output_dir,
        text_col=text_col,
        label_col=label_col,
        subset=subset,
        overwrite=overwrite,
        progress=progress,
        resume=resume,
        on_epoch_hook=on_epoch_hook,
        evaluate_splits=evaluate_splits,
    )


def load_run(run_dir: str | Path) -> Classifier:
    """Load the classifier of a completed run folder."""
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
    return folder.load_checked(load_saved_classifier)
