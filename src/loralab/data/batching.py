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


# Tokens per CPU thread in an inference batch once padded. 128 texts of 512 tokens make
# activations no cache holds: on MiniLM with two threads, this cap predicted 1.5× (fp32) and
# 1.9× (bf16) the texts/s of 128-text batches at 512 tokens, in 54–59 % of the memory, and
# changed nothing measurable at 128 (docs/performance.md). Scaling with the threads is assumed.
TOKENS_PER_THREAD = 1024


def token_budget(device: torch.device | str | None = None) -> int | None:
    """Padded tokens per inference batch on ``device``: a CPU's threads × TOKENS_PER_THREAD;
    no limit on accelerators, which want large batches."""
    if torch.device(device or "cpu").type != "cpu":
        return None
    return TOKENS_PER_THREAD * torch.get_num_threads()


def sorted_batches(lengths: Sequence[int], batch_size: int, max_tokens: int | None = None) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first (for inference).

    A batch has at most ``batch_size`` texts and, with ``max_tokens``, at most that many tokens
    once padded to its longest text (but always one text): long texts come in smaller batches,
    which also pad less, since their lengths are closer together."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches = []
    start = 0
    while start < len(order):
        size = batch_size
        if max_tokens is not None:  # the first text is the batch's longest: rows pad to it
            size = max(1, min(batch_size, max_tokens // max(lengths[order[start]], 1)))
        batches.append(order[start : start + size])
        start += size
    return batches
