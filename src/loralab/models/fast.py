"""CPU fast paths for training: cheaper dropout masks, with the same keep probability.

On these CPUs a LoRA step of a small encoder spends about a fifth of its time drawing dropout
masks: ``torch.nn.functional.dropout`` draws one random number per element through
``bernoulli_``, about 100 M elements/s on one core. A mask can instead be cut from 64-bit
random words, 16 bits per element (4 elements per draw), at about 3× the rate; an element is
kept when its 16 bits fall above ``round(p · 2^16)``, so the drop probability is ``p`` to
within 2^-17. The draws come from torch's CPU generator, so seeded runs stay reproducible.

PyTorch has no such kernel, so while a model trains its ``nn.Dropout`` modules are wrapped
by :class:`FastDropout`, and transformers' attention (which drops attention probabilities
inside ``scaled_dot_product_attention``) is pointed at :func:`fast_dropout_attention`, an
attention function registered under its own name. Both are undone when training ends, so
a saved model never contains them. GPUs have a fast counter-based generator of their own;
nothing changes there.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

_SPAN = 1 << 16
# The name under which fast_dropout_attention is registered with transformers.
ATTENTION_NAME = "loralab_fast_dropout"


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
    def forward(ctx: Any, x: torch.Tensor, p: float) -> torch.Tensor:
        scaled = keep_mask(x.shape, p).to(x.dtype).mul_(1.0 / (1.0 - p))  # 0 or 1/(1-p)
        ctx.save_for_backward(scaled)
        return x * scaled

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (scaled,) = ctx.saved_tensors
        return grad * scaled, None


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Inverted dropout like ``F.dropout``, with :func:`keep_mask` on CPU tensors."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return nn.functional.dropout(x, p, training)
    result: torch.Tensor = _Dropout.apply(x, p)
    return result


class FastDropout(nn.Module):
    """Wraps an ``nn.Dropout`` (kept as ``plain``, whose ``p`` it reads) and draws its CPU
    masks with :func:`keep_mask`. It has no parameters, so a state dict is unchanged."""

    def __init__(self, plain: nn.Dropout) -> None:
        super().__init__()
        self.plain = plain
        self.train(plain.training)

    @property
    def p(self) -> float:
        """The wrapped module's drop probability (attention modules read ``dropout.p``)."""
        return float(self.plain.p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.plain.inplace:
            result: torch.Tensor = self.plain(x)
            return result
        return dropout(x, self.plain.p, self.training)


def fast_dropout_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' ``sdpa`` attention, except that with dropout on a CPU the softmax
    attention is computed explicitly and its probabilities dropped with :func:`dropout` (what
    SDPA itself falls back to on a CPU when dropout is on, with PyTorch's slower mask)."""
    # deferred: transformers' model code takes ~2–3 s to import; a loaded model has done it
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    explicit = (
        dropout
        and query.device.type == "cpu"
        and not getattr(module, "is_causal", False)
        and getattr(module, "num_key_value_groups", 1) == 1
        and all(kwargs.get(k) is None for k in ("position_bias", "cache", "softcap"))
    )
    if not explicit:
        return sdpa_attention_forward(
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


def register_fast_dropout_attention() -> None:
    """Register :func:`fast_dropout_attention` with transformers under :data:`ATTENTION_NAME`,
    with SDPA's attention masks (it takes the masks SDPA takes). Registering adds a name;
    the ``sdpa`` entry other models use is left as it is."""
    # deferred: transformers' model code takes ~2–3 s to import; a loaded model has done it
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION_NAME, fast_dropout_attention)
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)
