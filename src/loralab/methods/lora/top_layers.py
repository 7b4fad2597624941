"""What the LoRA backends share: training only the top layers, from a cache of the bottom ones.

With ``--lora-layers N`` only the top N encoder layers carry adapters, so everything below
them is frozen and computes the same output for a text in every epoch. That output is
computed once per text (:func:`loralab.models.frozen_bottom.cache_bottom_layers`) and served
by a stand-in while the loop trains: the ``frozen-bottom`` speed-up of
:mod:`loralab.models.speedups`, switched off with ``--no-fast-paths``.
"""

from __future__ import annotations

import time

from loralab.config import TrainConfig
from loralab.data import DataSplits
from loralab.data.batching import collate
from loralab.methods.neural import NeuralMethod, Prepared, TrainingData
from loralab.models.frozen_bottom import cache_bottom_layers, frozen_layer_count
from loralab.models.speedups import FrozenBottomCache, enter_verified, is_chosen, switched_off
from loralab.models.targets import lora_targets

# The frozen-bottom speed-up as named in loralab.models.speedups.SPEEDUPS (it holds no cache).
SPEEDUP = FrozenBottomCache()
# Texts whose logits, served from the cache and computed, must agree before training starts.
PROBE_TEXTS = 8


class LoraMethod(NeuralMethod):
    """A LoRA backend: adapters on chosen layers, encoder frozen, head trains."""

    supports_lora_layers = True
    trains_adapters = True
    lora_based = True

    def check_model(self, config: TrainConfig, labels: list[str]) -> None:
        """Resolve the target modules on the model, as :meth:`prepare` does: a name that matches
        no layer, a rank too large for one or more --lora-layers than the model has fails here."""
        loaded = self.base(labels, self.settled(config))
        lora_targets(loaded.model, loaded.head_modules, config)

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
    """Train with the frozen bottom layers' outputs computed once per text, when the
    ``frozen-bottom`` speed-up is chosen and verifies.

    Token id lists become ``[row, *ids[1:]]`` (same lengths, so the same batches), and the
    stand-in serves row ``row`` of the cache. Returns ``None`` to train through the model."""
    model = prepared.model
    name = FrozenBottomCache.name
    if not is_chosen(config, name) or not SPEEDUP.applies(model, config):
        return None
    frozen = frozen_layer_count(model, config.lora_layers or 0)
    begin = time.perf_counter()
    every = data.train_ids + (data.validation[0] if data.validation else [])
    stand_in = cache_bottom_layers(model, every, data.pad_id, frozen, config.eval_batch_size, progress)
    if stand_in is None:
        switched_off(
            SPEEDUP,
            model,
            "--lora-layers: the frozen layers' outputs cannot be cached for this model; "
            "training runs through all layers",
        )
        return None
    speedup = FrozenBottomCache(stand_in, frozen)
    if not enter_verified(speedup, model, collate(every[:PROBE_TEXTS], data.pad_id)):
        return None
    speedup.exit(model)  # on again, through the data's context, while the loop trains
    rows = [[i, *ids[1:]] for i, ids in enumerate(every)]
    n_train = len(data.train_ids)
    validation = (rows[n_train:], data.validation[1]) if data.validation is not None else None
    return TrainingData(
        rows[:n_train],
        data.train_labels,
        validation,
        data.pad_id,
        context=speedup.entered(model),
        cache_seconds=time.perf_counter() - begin,
    )
