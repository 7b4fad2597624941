"""Fit any method: the loop for methods that train in epochs, the method's own ``fit`` else.

This is where a method's prepared model meets the training loop: the method chooses what
trains and what the loop reads (:class:`~loralab.methods.neural.TrainingData`), the loop
trains, and the outcome is handed on as one typed :class:`~loralab.methods.base.FitResult`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from loralab.config import TrainConfig
from loralab.data import DataSplits
from loralab.methods.base import FitResult, Method
from loralab.methods.neural import NeuralMethod
from loralab.training.checkpoints import Checkpointing
from loralab.training.loop import ValidationScores, train_model


@dataclass
class TrainingHooks:
    """What a caller sees of training while it runs, and where it checkpoints."""

    progress: bool = True
    on_epoch: Callable[[dict], None] | None = None  # each epoch's history row
    on_step: Callable[[dict, int], None] | None = None  # (values, optimizer step), for trackers
    checkpoints: Checkpointing | None = None  # methods that train in seconds ignore it


def fit_method(
    method: Method,
    splits: DataSplits,
    config: TrainConfig,
    *,
    validation_scores: ValidationScores,
    hooks: TrainingHooks | None = None,
) -> FitResult:
    """Train ``method`` on ``splits.train``, choosing the best epoch on ``splits.validation``
    by ``validation_scores``' ``val_accuracy``."""
    hooks = hooks or TrainingHooks()
    config = method.settled(config)
    if not (method.trains_in_epochs and isinstance(method, NeuralMethod)):
        return method.fit(splits, config, progress=hooks.progress)
    prepared = method.build(splits.labels, config)
    lr, epochs, batch_size, schedule = method.planned(len(splits.train), config)
    details = method.fit_details(config)
    if schedule is not None:
        config = config.replace(patience=schedule.patience)
        if schedule.raised_from is not None:
            details["step_floor"] = schedule.to_dict()
    config = config.replace(batch_size=batch_size)
    data = method.training_data(prepared, splits, config, progress=hooks.progress)
    with data.context:
        result = train_model(
            prepared.model,
            data,
            config,
            lr=lr,
            epochs=epochs,
            validation_scores=validation_scores,
            progress=hooks.progress,
            on_epoch=hooks.on_epoch,
            checkpoints=hooks.checkpoints if data.checkpointable else None,
            on_step=hooks.on_step,
        )
    return FitResult(
        method.classifier(prepared, splits.labels, config),
        history=result.history,
        train_seconds=result.train_seconds + data.cache_seconds,
        train_tokens=result.train_tokens,
        cache_seconds=data.cache_seconds,
        best_epoch=result.best_epoch,
        crossfit_validation_accuracy=result.crossfit_validation_accuracy,
        crossfit_validation_balanced_accuracy=result.crossfit_validation_balanced_accuracy,
        stopped_early=result.stopped_early,
        lr=lr,
        epochs=epochs,
        batch_size=batch_size,
        precision=result.precision,
        fast_paths=result.fast_paths,
        head_modules=prepared.loaded.head_modules,
        newly_initialised=prepared.loaded.newly_initialised,
        details=details,
    )
