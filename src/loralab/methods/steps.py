"""Enough optimizer steps on small data: a floor on the steps a default schedule takes.

A method's default epochs suit thousands of texts. With 16 texts per class, three epochs in
batches of 32 are one to three optimizer steps: the head barely moves from its random start,
and a comparison would call the method useless when it was simply not trained. So when the
epochs are not set by the user, they are raised until training takes at least
``min_train_steps`` steps; the best epoch on validation is kept, and training stops early
once a quarter of the floor has passed without a better validation accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Steps without a better validation accuracy that stop a floored schedule, as a share of the floor.
PATIENCE_SHARE = 0.25


@dataclass(frozen=True)
class Schedule:
    epochs: int
    steps_per_epoch: int
    patience: int | None  # epochs without improvement that stop training; None: never stop early
    raised_from: int | None = None  # the default epochs, when the floor raised them

    def to_dict(self) -> dict:
        return {
            "epochs": self.epochs,
            "steps_per_epoch": self.steps_per_epoch,
            "patience": self.patience,
            "raised_from": self.raised_from,
        }


def steps_per_epoch(train_texts: int, batch_size: int, grad_accum_steps: int = 1) -> int:
    """Optimizer steps in one pass over ``train_texts`` texts.

    >>> steps_per_epoch(32, 32), steps_per_epoch(8530, 32), steps_per_epoch(100, 16, 2)
    (1, 267, 4)
    """
    batches = math.ceil(train_texts / batch_size)
    return max(1, math.ceil(batches / grad_accum_steps))


def floored_schedule(
    train_texts: int,
    batch_size: int,
    default_epochs: int,
    min_train_steps: int,
    grad_accum_steps: int = 1,
    patience: int | None = None,
) -> Schedule:
    """The default epochs, raised so that training takes at least ``min_train_steps`` steps.

    >>> floored_schedule(32, 32, 3, 100)
    Schedule(epochs=100, steps_per_epoch=1, patience=25, raised_from=3)
    >>> floored_schedule(8530, 32, 3, 100).epochs
    3
    """
    per_epoch = steps_per_epoch(train_texts, batch_size, grad_accum_steps)
    needed = math.ceil(min_train_steps / per_epoch)
    if needed <= default_epochs:
        return Schedule(default_epochs, per_epoch, patience)
    if patience is None:
        patience = max(1, math.ceil(PATIENCE_SHARE * min_train_steps / per_epoch))
    return Schedule(needed, per_epoch, patience, raised_from=default_epochs)
