"""What the LoRA backends share: training only the top layers, from a cache of the bottom ones.

With ``--lora-layers N`` only the top N encoder layers carry adapters, so everything below
them is frozen and computes the same output for a text in every epoch. That output is
computed once per text (:func:`loralab.methods.frozen.cache_bottom_layers`) and served by a
stand-in while the loop trains.
"""

from __future__ import annotations

import time
import warnings

from loralab.config import TrainConfig
from loralab.data import DataSplits
from loralab.methods.base import NeuralMethod, Prepared, TrainingData
from loralab.methods.frozen import bottom_swapped, cache_bottom_layers
from loralab.models.targets import encoder_layers


class LoraMethod(NeuralMethod):
    """A LoRA backend: adapters on chosen layers, encoder frozen, head trains."""

    supports_lora_layers = True
    trains_adapters = True

    def training_data(
        self, prepared: Prepared, splits: DataSplits, config: TrainConfig, *, progress: bool = True
    ) -> TrainingData:
        data = super().training_data(prepared, splits, config, progress=progress)
        if config.lora_layers is None:
            return data
        return cached_bottom_data(prepared, data, config, progress=progress) or data


def cached_bottom_data(
    prepared: Prepared, data: TrainingData, config: TrainConfig, *, progress: bool = True
) -> TrainingData | None:
    """Train with the frozen bottom layers' outputs computed once per text.

    Token id lists become ``[row, *ids[1:]]`` (same lengths, so the same batches), and the
    stand-in serves row ``row`` of the cache. Returns ``None`` to train through the model."""
    model = prepared.model
    unwrap = getattr(model, "get_base_model", None)  # a PEFT model wraps the encoder model
    frozen = len(encoder_layers(unwrap() if unwrap else model)[1]) - (config.lora_layers or 0)
    if frozen <= 0:
        return None
    begin = time.perf_counter()
    every = data.train_ids + (data.validation[0] if data.validation else [])
    stand_in = cache_bottom_layers(model, every, data.pad_id, frozen, config.eval_batch_size, progress)
    if stand_in is None:
        warnings.warn(
            "--lora-layers: the frozen layers' outputs cannot be cached for this model; "
            "training runs through all layers.",
            stacklevel=2,
        )
        return None
    rows = [[i, *ids[1:]] for i, ids in enumerate(every)]
    n_train = len(data.train_ids)
    validation = (rows[n_train:], data.validation[1]) if data.validation is not None else None
    return TrainingData(
        rows[:n_train],
        data.train_labels,
        validation,
        data.pad_id,
        context=bottom_swapped(model, stand_in, frozen),
        cache_seconds=time.perf_counter() - begin,
    )
