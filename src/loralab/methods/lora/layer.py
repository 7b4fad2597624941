"""LoRA written out: a layer that wraps a frozen ``nn.Linear``, and the surgery that puts it in.

    y = W0 x + b + (alpha / rank) * B (A dropout(x))        A: (rank, in), B: (out, rank)

B starts at zero, so a freshly injected adapter changes nothing (Hu et al., 2021). The layer
wraps the original linear layer (``base_layer``) instead of subclassing it, so the pretrained
weights stay where they were and ``merge`` / ``unmerge`` are explicit.
"""

from __future__ import annotations

import math

import torch
from torch import nn

INITS = ("normal", "kaiming")


class LoRALinear(nn.Module):
    """A frozen linear layer plus a trainable low-rank update.

    ``init="normal"`` draws A from N(0, 1/rank²) (seed 002 draws A from a normal distribution;
    the 1/rank scale is PEFT's ``gaussian`` init, so both backends can start from the same
    values); ``init="kaiming"`` is loralib's and PEFT's default. ``use_rslora`` scales by
    ``alpha / sqrt(rank)`` instead of ``alpha / rank`` (Kalajdzievski, 2023).

    >>> layer = LoRALinear(nn.Linear(8, 4), rank=2, alpha=4)
    >>> tuple(layer.lora_A.shape), tuple(layer.lora_B.shape), layer.scaling
    ((2, 8), (4, 2), 2.0)
    """

    def __init__(
        self,
        base_layer: nn.Linear,
        rank: int,
        alpha: float,
        dropout: float = 0.0,
        init: str = "normal",
        use_rslora: bool = False,
    ) -> None:
        super().__init__()
        if rank < 1 or rank > min(base_layer.in_features, base_layer.out_features):
            raise ValueError(
                f"rank {rank} does not fit a {base_layer.in_features}→{base_layer.out_features} layer."
            )
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}; got '{init}'.")
        self.base_layer = base_layer
        for param in base_layer.parameters():
            param.requires_grad = False
        self.rank = rank
        self.alpha = alpha
        self.scaling = alpha / math.sqrt(rank) if use_rslora else alpha / rank
        weight = base_layer.weight
        self.lora_A = nn.Parameter(
            torch.empty(rank, base_layer.in_features, dtype=weight.dtype, device=weight.device)
        )
        self.lora_B = nn.Parameter(
            torch.zeros(base_layer.out_features, rank, dtype=weight.dtype, device=weight.device)
        )
        if init == "normal":
            nn.init.normal_(self.lora_A, std=1.0 / rank)
        else:
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    @property
    def in_features(self) -> int:
        return self.base_layer.in_features

    @property
    def out_features(self) -> int:
        return self.base_layer.out_features

    def delta_weight(self) -> torch.Tensor:
        """ΔW = scaling · B A, shaped like the base weight ``(out, in)``."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = self.base_layer(x)  # (..., out)
        if self.merged:
            return result
        update = self.dropout(x) @ self.lora_A.T  # (..., rank)
        return result + (update @ self.lora_B.T) * self.scaling

    @torch.no_grad()
    def merge(self, safe_merge: bool = True) -> None:
        """Add ΔW into the base weight; with ``safe_merge``, refuse non-finite results."""
        if self.merged:
            return
        merged = self.base_layer.weight + self.delta_weight()
        if safe_merge and not torch.isfinite(merged).all():
            raise ValueError("merging this adapter gives non-finite weights; it was not merged.")
        self.base_layer.weight.copy_(merged)
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if not self.merged:
            return
        self.base_layer.weight.sub_(self.delta_weight())
        self.merged = False

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha}, scaling={self.scaling:g}, merged={self.merged}"
