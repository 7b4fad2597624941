"""Tokenise once, then batch by length with dynamic padding (never pad to ``max_length``).

Batches of similar length waste little compute on padding; shuffling happens at two levels
(which texts share a bucket, and the order of the batches) so training stays stochastic.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from loralab.data.long_text import TextInput


def encode(tokenizer, texts: Sequence[str], max_length: int | TextInput) -> list[list[int]]:
    """Token ids per text, truncated to ``max_length`` (or as a :class:`TextInput` says), without padding."""
    if isinstance(max_length, TextInput):
        return max_length.encode(tokenizer, texts)
    out = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
    return out["input_ids"]


def collate(
    ids: Sequence[Sequence[int]], pad_token_id: int, labels: Sequence[int] | None = None
) -> dict[str, torch.Tensor]:
    """Pad a batch to its own longest sequence."""
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_token_id, dtype=torch.long)  # (B, T)
    attention_mask = torch.zeros((len(ids), width), dtype=torch.long)  # (B, T)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        attention_mask[row, : len(seq)] = 1
    batch = {"input_ids": input_ids, "attention_mask": attention_mask}
    if labels is not None:
        batch["labels"] = torch.as_tensor(labels, dtype=torch.long)  # (B,)
    return batch


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


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first (for inference)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
