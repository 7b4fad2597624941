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
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers.modeling_outputs import BaseModelOutputWithPooling

from loralab.data.batching import collate, encode, sorted_batches
from loralab.data.long_text import TextInput
from loralab.models.targets import encoder_layers

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
        for batch_idx in sorted_batches([len(x) for x in ids], batch_size):
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


# Above this size the bottom-layer cache would crowd out training; train through the model.
BOTTOM_CACHE_LIMIT_BYTES = 4 * 1024**3


class _StopAfter(Exception):
    """Raised by a forward hook to stop an encoder pass after the layer it watches."""

    def __init__(self, output: torch.Tensor) -> None:
        self.output = output


class CachedBottom(nn.Module):
    """Stands in for the embeddings: ``input_ids[:, 0]`` are row indices into the cached
    output of the frozen bottom layers, which is returned padded to the batch's width."""

    def __init__(self, flat: torch.Tensor, offsets: torch.Tensor, lengths: torch.Tensor) -> None:
        super().__init__()
        self.flat = flat  # (total tokens, H): every text's tokens, one after another
        self.offsets = offsets  # (N,) where each text starts in ``flat``
        self.lengths = lengths  # (N,)

    def forward(self, input_ids: torch.Tensor, **kwargs) -> torch.Tensor:
        rows = input_ids[:, 0].cpu()
        positions = torch.arange(input_ids.shape[1]).unsqueeze(0)  # (1, T)
        last = (self.lengths[rows] - 1).unsqueeze(1)  # (B, 1); padding repeats the last token
        index = self.offsets[rows].unsqueeze(1) + torch.minimum(positions, last)  # (B, T)
        return self.flat[index].to(input_ids.device)  # (B, T, H)


def _encoder_parts(model: nn.Module) -> tuple[Any, nn.ModuleList]:
    unwrap = getattr(model, "get_base_model", None)  # PEFT's wrapper
    base: Any = unwrap() if callable(unwrap) else model
    encoder = getattr(base, base.base_model_prefix)
    return encoder, encoder_layers(base)[1]


class PassThrough(nn.Module):
    """Stands in for a frozen encoder layer whose output the stand-in embeddings already give."""

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return hidden_states


@contextlib.contextmanager
def bottom_swapped(model: nn.Module, stand_in: CachedBottom, frozen: int) -> Iterator[None]:
    """Serve the first ``frozen`` layers' output from ``stand_in`` instead of computing it:
    the embeddings and those layers are replaced in the module tree (they have nothing to
    train) and put back afterwards."""
    encoder, layers = _encoder_parts(model)
    original = encoder.embeddings
    bottom = list(layers[:frozen])
    encoder.embeddings = stand_in
    for index in range(frozen):
        layers[index] = PassThrough()
    try:
        yield
    finally:
        encoder.embeddings = original
        for index, layer in enumerate(bottom):
            layers[index] = layer


def cache_bottom_layers(
    model: nn.Module,
    ids: Sequence[Sequence[int]],
    pad: int,
    frozen: int,
    batch_size: int,
    progress: bool,
) -> CachedBottom | None:
    """Run the embeddings and the first ``frozen`` layers once over ``ids`` (in eval mode) and
    return the stand-in, or ``None`` when it would not give the model's own logits (another
    architecture) or would need more than :data:`BOTTOM_CACHE_LIMIT_BYTES`."""
    encoder, layers = _encoder_parts(model)
    lengths = torch.tensor([len(x) for x in ids])
    if int(lengths.sum()) * encoder.config.hidden_size * 4 > BOTTOM_CACHE_LIMIT_BYTES:
        return None
    offsets = torch.cumsum(lengths, 0) - lengths
    flat = torch.empty((int(lengths.sum()), encoder.config.hidden_size), dtype=next(model.parameters()).dtype)
    hook = layers[frozen - 1].register_forward_hook(lambda module, args, output: _raise(output))
    was_training = model.training
    model.eval()
    bar = tqdm(
        total=len(ids),
        desc=f"caching the {frozen} frozen layers",
        unit="texts",
        disable=None if progress else True,
    )
    try:
        with torch.no_grad():  # not inference_mode: the cache is read while training
            for batch_idx in sorted_batches(lengths.tolist(), batch_size):
                try:
                    encoder(**collate([ids[i] for i in batch_idx], pad))
                    return None  # the hook never fired: layers are not called in order
                except _StopAfter as stop:
                    hidden = stop.output[0] if isinstance(stop.output, tuple) else stop.output
                for row, i in enumerate(batch_idx):
                    flat[offsets[i] : offsets[i] + lengths[i]] = hidden[row, : lengths[i]].cpu()
                bar.update(len(batch_idx))
    finally:
        hook.remove()
        bar.close()
        model.train(was_training)
    stand_in = CachedBottom(flat, offsets, lengths)
    return stand_in if _serves_like_the_model(model, stand_in, ids, pad, frozen) else None


def _raise(output) -> None:
    raise _StopAfter(output)


def _serves_like_the_model(model, stand_in: CachedBottom, ids, pad: int, frozen: int) -> bool:
    probe = list(range(min(8, len(ids))))
    batch = collate([ids[i] for i in probe], pad)
    rows = collate([[i, *ids[i][1:]] for i in probe], pad)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            real = model(**batch).logits
            with bottom_swapped(model, stand_in, frozen):
                served = model(**rows).logits
    finally:
        model.train(was_training)
    return bool(np.allclose(real.numpy(), served.numpy(), atol=EQUIVALENCE_TOLERANCE))
