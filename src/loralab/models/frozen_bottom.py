"""Serve the frozen bottom layers of an encoder from a cache, computed once per text.

With ``--lora-layers N`` only the top N encoder layers carry adapters, so the embeddings and
every layer below them are frozen and give a text the same output in every epoch. Those
outputs are computed once (in eval mode) and a stand-in for the embeddings serves them by row
index while the bottom layers step aside. On the embedded MiniLM with ``--lora-layers 2``,
four of its six layers then run once per text instead of once per text and epoch.

:class:`loralab.models.speedups.FrozenBottomCache` is the plugin around it: switched by
``--fast-paths`` / ``--no-fast-paths``, verified against the plain forward before training.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from loralab.data.batching import collate, sorted_batches, token_budget
from loralab.models.targets import encoder_layers

# Above this size the bottom-layer cache would crowd out training; train through the model.
BOTTOM_CACHE_LIMIT_BYTES = 4 * 1024**3


class _StopAfter(Exception):
    """Raised by a forward hook to stop an encoder pass after the layer it watches."""

    def __init__(self, output: torch.Tensor) -> None:
        self.output = output


class CachedBottom(nn.Module):
    """Stands in for the embeddings: ``input_ids[:, 0]`` are row indices into the cached
    output of the frozen bottom layers, which is returned padded to the batch's width."""

    def __init__(
        self, flat: torch.Tensor, offsets: torch.Tensor, lengths: torch.Tensor, layer_outputs: int = 0
    ) -> None:
        super().__init__()
        self.flat = flat  # (total tokens, H): every text's tokens, one after another
        self.offsets = offsets  # (N,) where each text starts in ``flat``
        self.lengths = lengths  # (N,)
        # What a layer returns: 0 for the hidden states alone, n for a tuple of n (DeBERTa's
        # layers also return their attention), which the layers standing aside return too.
        self.layer_outputs = layer_outputs

    def forward(self, input_ids: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
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

    def __init__(self, layer: nn.Module, outputs: int = 0) -> None:
        super().__init__()
        self.outputs = outputs  # see CachedBottom.layer_outputs
        # ModernBERT's encoder picks each layer's attention mask by the layer's attention_type.
        if hasattr(layer, "attention_type"):
            self.attention_type = layer.attention_type

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if self.outputs:
            return (hidden_states,) + (None,) * (self.outputs - 1)
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
        layers[index] = PassThrough(layers[index], stand_in.layer_outputs)
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
    return the stand-in, or ``None`` when the layers are not called in order (another
    architecture) or the cache would need more than :data:`BOTTOM_CACHE_LIMIT_BYTES`. Whether
    it gives the model's own logits is checked by the plugin's ``verify``."""
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
    layer_outputs = 0
    try:
        with torch.no_grad():  # not inference_mode: the cache is read while training
            for batch_idx in sorted_batches(lengths.tolist(), batch_size, token_budget()):
                try:
                    encoder(**collate([ids[i] for i in batch_idx], pad))
                    return None  # the hook never fired: layers are not called in order
                except _StopAfter as stop:
                    hidden = stop.output[0] if isinstance(stop.output, tuple) else stop.output
                    layer_outputs = len(stop.output) if isinstance(stop.output, tuple) else 0
                for row, i in enumerate(batch_idx):
                    flat[offsets[i] : offsets[i] + lengths[i]] = hidden[row, : lengths[i]].cpu()
                bar.update(len(batch_idx))
    finally:
        hook.remove()
        bar.close()
        model.train(was_training)
    return CachedBottom(flat, offsets, lengths, layer_outputs)


def _raise(output) -> None:
    raise _StopAfter(output)


def frozen_layer_count(model: nn.Module, lora_layers: int) -> int:
    """How many encoder layers of ``model`` sit below the top ``lora_layers`` (0 when none)."""
    _, layers = _encoder_parts(model)
    return max(0, len(layers) - lora_layers)
