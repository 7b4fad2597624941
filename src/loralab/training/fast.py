"""CPU fast paths for training: cheaper dropout masks, with the same keep probability.

On these CPUs a LoRA step of a small encoder spends about a fifth of its time drawing dropout
masks: ``torch.nn.functional.dropout`` draws one random number per element through
``bernoulli_``, about 100 M elements/s on one core. A mask can instead be cut from 64-bit
random words, 16 bits per element (4 elements per draw), at about 3× the rate; an element is
kept when its 16 bits fall above ``round(p · 2^16)``, so the drop probability is ``p`` to
within 2^-17. The draws come from torch's CPU generator, so seeded runs stay reproducible.

PyTorch has no such kernel and transformers computes attention dropout inside
``scaled_dot_product_attention``, so both the dropout modules and the attention function are
swapped for the duration of training (:func:`cpu_fast_paths`), never in a saved model.
GPUs have a fast counter-based generator of their own; nothing changes there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

_SPAN = 1 << 16


def keep_mask(shape: torch.Size, p: float) -> torch.Tensor:
    """A boolean mask of ``shape``; each element is False with probability ``p`` (± 2^-17)."""
    count = 1
    for size in shape:
        count *= size
    words = torch.empty((count + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
    lanes = words.view(torch.int16)[:count].view(shape)  # 4 uniform 16-bit lanes per word
    return lanes >= round(p * _SPAN) - _SPAN // 2


class _Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        scaled = keep_mask(x.shape, p).to(x.dtype).mul_(1.0 / (1.0 - p))  # 0 or 1/(1-p)
        ctx.save_for_backward(scaled)
        return x * scaled

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (scaled,) = ctx.saved_tensors
        return grad * scaled, None


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Inverted dropout like ``F.dropout``, with :func:`keep_mask` on CPU tensors."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return nn.functional.dropout(x, p, training)
    return _Dropout.apply(x, p)


class FastDropout(nn.Dropout):
    """``nn.Dropout`` whose CPU masks come from :func:`keep_mask` (same ``p``, same state dict)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inplace:
            return super().forward(x)
        return dropout(x, self.p, self.training)


def _attention_with_fast_dropout(original):
    """Wrap transformers' ``sdpa`` attention: with dropout on a CPU, compute softmax attention
    explicitly and drop probabilities with :func:`dropout` (what SDPA itself falls back to on a
    CPU when dropout is on, with PyTorch's slower mask); otherwise call the original."""

    def attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
        plain = (
            dropout
            and query.device.type == "cpu"
            and not getattr(module, "is_causal", False)
            and getattr(module, "num_key_value_groups", 1) == 1
            and all(kwargs.get(k) is None for k in ("position_bias", "cache", "softcap"))
        )
        if not plain:
            return original(
                module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
            )
        scaling = scaling if scaling is not None else query.shape[-1] ** -0.5
        scores = torch.matmul(query, key.transpose(-1, -2)) * scaling  # (B, heads, T, T)
        if attention_mask is not None:
            if attention_mask.dtype == torch.bool:
                scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
            else:
                scores = scores + attention_mask
        probs = globals()["dropout"](scores.softmax(-1), dropout)
        return torch.matmul(probs, value).transpose(1, 2).contiguous(), None

    attention.loralab_original = original
    return attention


@contextlib.contextmanager
def cpu_fast_paths(model: nn.Module) -> Iterator[None]:
    """Use :class:`FastDropout` and the fast-dropout attention while training ``model`` on a CPU."""
    on_cpu = next(model.parameters()).device.type == "cpu"
    swapped = [m for m in model.modules() if type(m) is nn.Dropout] if on_cpu else []
    for module in swapped:
        module.__class__ = FastDropout  # same attributes and no parameters: the swap is exact
    registry = original = None
    if on_cpu:
        from transformers.modeling_utils import AttentionInterface

        registry = AttentionInterface._global_mapping
        original = registry.get("sdpa")
        if original is not None and not hasattr(original, "loralab_original"):
            registry["sdpa"] = _attention_with_fast_dropout(original)
        else:
            original = None
    try:
        yield
    finally:
        for module in swapped:
            module.__class__ = nn.Dropout
        if original is not None:
            registry["sdpa"] = original
