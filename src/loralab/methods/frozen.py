"""Train a head on what a frozen encoder computes, encoding every text once.

With the encoder frozen, each epoch of head tuning would otherwise run the same encoder
forward pass again. Instead the encoder's outputs that classification heads read (the first
token's hidden state and, where the model has one, the pooler output) are computed once,
and a stand-in encoder serves them by row index while the model's own head code (dropout,
pre-classifier, classifier) trains unchanged. A check on a few texts confirms that the
stand-in gives the model's own logits; heads that read more than the first token (mean
pooling, for example) fail the check and train through the encoder instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers.modeling_outputs import BaseModelOutputWithPooling

from loralab.data.batching import collate, encode, sorted_batches, token_budget
from loralab.data.long_text import TextInput

EQUIVALENCE_TOLERANCE = 1e-4


class CachedEncoder(nn.Module):
    """Stands in for an encoder: ``input_ids[:, 0]`` are row indices into cached outputs."""

    def __init__(self, first_token: torch.Tensor, pooled: torch.Tensor | None, config) -> None:
        super().__init__()
        self.first_token = first_token  # (N, H)
        self.pooled = pooled  # (N, H) or None
        self.config = config

    def forward(self, input_ids: torch.Tensor, attention_mask=None, **kwargs) -> BaseModelOutputWithPooling:
        rows = input_ids[:, 0]
        return BaseModelOutputWithPooling(
            last_hidden_state=self.first_token[rows].unsqueeze(1),  # (B, 1, H)
            pooler_output=None if self.pooled is None else self.pooled[rows],  # (B, H)
        )


def encode_frozen(
    encoder: nn.Module,
    tokenizer,
    texts: Sequence[str],
    max_length: int | TextInput,
    batch_size: int,
    progress: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    ids = encode(tokenizer, texts, max_length)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    first = pooled = None
    encoder.eval()
    bar = tqdm(
        total=len(texts),
        desc="encoding once (frozen encoder)",
        unit="texts",
        disable=None if progress else True,
    )
    with torch.inference_mode():
        for batch_idx in sorted_batches([len(x) for x in ids], batch_size, token_budget()):
            out = encoder(**collate([ids[i] for i in batch_idx], pad))
            hidden = out.last_hidden_state[:, 0]  # (B, H)
            if first is None:
                first = torch.zeros((len(texts), hidden.shape[-1]), dtype=hidden.dtype)
                if getattr(out, "pooler_output", None) is not None:
                    pooled = torch.zeros_like(first)
            first[batch_idx] = hidden
            if pooled is not None:
                pooled[batch_idx] = out.pooler_output
            bar.update(len(batch_idx))
    bar.close()
    if first is None:
        raise ValueError("encode_frozen needs at least one text.")
    return first.clone(), None if pooled is None else pooled.clone()


@contextlib.contextmanager
def swapped_encoder(model: nn.Module, stand_in: nn.Module) -> Iterator[None]:
    prefix = str(model.base_model_prefix)
    original = getattr(model, prefix)
    setattr(model, prefix, stand_in)
    try:
        yield
    finally:
        setattr(model, prefix, original)


def cache_encoder_outputs(
    model: nn.Module,
    tokenizer,
    texts: Sequence[str],
    max_length: int | TextInput,
    batch_size: int,
    progress: bool,
) -> CachedEncoder | None:
    """Encode ``texts`` once; return the stand-in, or ``None`` if the head reads more than it holds."""
    encoder = getattr(model, str(model.base_model_prefix))
    first, pooled = encode_frozen(encoder, tokenizer, texts, max_length, batch_size, progress)
    stand_in = CachedEncoder(first, pooled, encoder.config)
    probe = list(range(min(8, len(texts))))
    ids = encode(tokenizer, [texts[i] for i in probe], max_length)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        real = model(**collate(ids, pad)).logits
        with swapped_encoder(model, stand_in):
            served = model(input_ids=torch.tensor(probe).unsqueeze(1)).logits
    model.train(was_training)
    if not np.allclose(real.numpy(), served.numpy(), atol=EQUIVALENCE_TOLERANCE):
        return None
    return stand_in
