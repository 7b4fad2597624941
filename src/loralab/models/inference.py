"""Batched inference: sorted by length, dynamic padding, ``torch.inference_mode``.

It sits with the models because every layer above predicts with it: a classifier of the
methods, the training loop's validation, evaluation and serving.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from loralab.data.batching import collate, sorted_batches, token_budget
from loralab.data.long_text import TextInput, aggregate_window_logits


def autocast(
    precision: str, device: torch.device, *, inference: bool = False
) -> contextlib.AbstractContextManager:
    """The forward pass's context: bf16 autocast, or nothing. In training fp16 goes through
    Accelerate, which pairs it with loss scaling; in ``inference`` (no gradients, nothing to
    scale) fp16 is a plain autocast too."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp16" and inference:
        return torch.autocast(device.type, dtype=torch.float16)
    return contextlib.nullcontext()


def predict_logits(
    model: nn.Module,
    tokenizer,
    texts: Sequence[str],
    text_input: TextInput | int,
    batch_size: int = 128,
    device: torch.device | str | None = None,
    precision: str = "fp32",
) -> np.ndarray:
    """Logits ``(N, num_labels)`` in the order of ``texts``; ``precision`` is a resolved one
    (fp32, bf16 or fp16, see :mod:`loralab.training.precision`).

    ``text_input`` says how long texts are cut (a bare ``max_length`` keeps the head); with
    chunks, every window of every text runs in one length-sorted stream and the windows'
    logits are pooled per text."""
    if len(texts) == 0:
        return np.zeros((0, cast(Any, model.config).num_labels), dtype=np.float32)
    if not isinstance(text_input, TextInput):
        text_input = TextInput(max_length=text_input)
    ids, documents = text_input.encode_documents(tokenizer, texts)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    logits = predict_logits_from_ids(model, ids, pad, batch_size, device, precision)
    if text_input.chunks:
        return aggregate_window_logits(logits, documents, len(texts), text_input.chunk_aggregation)
    return logits


def predict_logits_from_ids(
    model: nn.Module,
    ids: Sequence[Sequence[int]],
    pad: int,
    batch_size: int = 128,
    device: torch.device | str | None = None,
    precision: str = "fp32",
) -> np.ndarray:
    """Logits for token ids that are already encoded, batched longest first."""
    device = torch.device(device or next(model.parameters()).device)
    out = np.zeros((len(ids), cast(Any, model.config).num_labels), dtype=np.float32)
    was_training = model.training
    model.eval()
    with torch.inference_mode(), autocast(precision, device, inference=True):
        for batch_idx in sorted_batches([len(x) for x in ids], batch_size, token_budget(device)):
            batch = collate([ids[i] for i in batch_idx], pad)
            logits = model(**{k: v.to(device) for k, v in batch.items()}).logits
            out[batch_idx] = logits.float().cpu().numpy()
    model.train(was_training)
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)
