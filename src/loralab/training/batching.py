"""Length-bucketed training batches: similar lengths share a batch, so dynamic padding
(:func:`loralab.data.batching.collate`) wastes little compute.

Shuffling happens at two levels (which texts share a bucket, and the order of the batches)
so training stays stochastic.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch


class LengthBucketBatches:
    """A batch sampler: shuffle, cut into pools of ``pool_batches`` batches, sort each pool
    by length, cut into batches and shuffle the batch order. Epoch ``k`` uses seed ``seed + k``
    so a run is reproducible."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, pool_batches: int = 50) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.pool = batch_size * pool_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        batches = []
        for start in range(0, len(order), self.pool):
            pool = sorted(order[start : start + self.pool], key=lambda i: -self.lengths[i])
            batches += [pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        for index in torch.randperm(len(batches), generator=generator).tolist():
            yield batches[index]
        self.epoch += 1
