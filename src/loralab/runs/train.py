"""Train one run (``loralab train``) and load a completed one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from loralab.config import TrainConfig
from loralab.data import DataSplits
from loralab.runs.execute import RunResult, execute
from loralab.runs.load import load_run

__all__ = ["load_run", "train_run"]


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
