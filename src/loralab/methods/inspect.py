"""Trainable and total parameters of each method, measured on the model it prepares."""

from __future__ import annotations

from collections.abc import Sequence

from loralab.config import TrainConfig
from loralab.methods.base import default_ladder, get_method
from loralab.methods.neural import NeuralMethod
from loralab.models.loading import count_parameters


def trained_neural_methods() -> list[str]:
    """The methods of the default ladder that train an encoder model in epochs."""
    return [name for name in default_ladder() if get_method(name).trains_in_epochs]


def parameter_table(
    config: TrainConfig, labels: list[str], methods: Sequence[str] | None = None
) -> list[dict]:
    """Trainable and total parameters of each method, measured on the prepared model."""
    rows = []
    for name in methods or trained_neural_methods():
        method = get_method(name)
        if not isinstance(method, NeuralMethod):
            continue  # only methods that adapt an encoder have a model to count
        prepared = method.build(labels, config.replace(method=name))
        trainable, total = count_parameters(prepared.model)
        rows.append({"method": name, "trainable": trainable, "total": total, "share": trainable / total})
    return rows
