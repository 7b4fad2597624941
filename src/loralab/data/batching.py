"""Tokenised batches: tokenise once, pad each batch to its own longest text (never to
``max_length``), and group texts of similar length for inference.

Training's shuffled length buckets are in :mod:`loralab.training.batching`; these pieces sit
below the models and methods, which encode texts and cache frozen outputs with them too.
"""

from __future__ import annotations

from collections.abc import Sequence

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


# An inference batch holds ``batch_size`` texts of up to this many tokens, and proportionally
# fewer longer ones, so that its padded size (and memory) stays that of ``batch_size`` short
# texts at any ``--max-length``.
TOKENS_PER_TEXT = 128


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first (for inference).

    A batch has at most ``batch_size`` texts and ``batch_size × TOKENS_PER_TEXT`` tokens once
    padded to its longest text (at least one text): at 512 tokens, a quarter of the texts.
    Smaller batches of long texts also pad less, since their lengths are closer together."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    budget = batch_size * TOKENS_PER_TEXT
    batches = []
    start = 0
    while start < len(order):
        # the first text is the batch's longest: every row is padded to its length
        size = max(1, min(batch_size, budget // max(lengths[order[start]], 1)))
        batches.append(order[start : start + size])
        start += size
    return batches
