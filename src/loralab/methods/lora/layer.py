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

INITS = ("normal", "kaiming", "pissa")


class LoRALinear(nn.Module):
    """A frozen linear layer plus a trainable low-rank update.

    ``init="normal"`` draws A from N(0, 1/rank²) (seed 002 draws A from a normal distribution;
    the 1/rank scale is PEFT's ``gaussian`` init, so both backends can start from the same
    values); ``init="kaiming"`` is loralib's and PEFT's default. ``init="pissa"`` (Meng et al.,
    2024) starts A and B from the top ``rank`` singular directions of W0 and keeps only the
    residual ``W0 − scaling·B0A0`` frozen, so the model is unchanged at the start but trains the
    principal directions; :meth:`plain_lora` turns the result back into an ordinary LoRA update
    of W0. ``use_rslora`` scales by ``alpha / sqrt(rank)`` instead of ``alpha / rank``
    (Kalajdzievski, 2023).

    >>> layer = LoRALinear(nn.Linear(8, 4), rank=2, alpha=4)
    >>> tuple(layer.lora_A.shape), tuple(layer.lora_B.shape), layer.scaling
    ((2, 8), (4, 2), 2.0)
    """

    pissa_A0: torch.Tensor  # buffers registered with init="pissa"
    pissa_B0: torch.Tensor

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
        self.init = init
        if init == "normal":
            nn.init.normal_(self.lora_A, std=1.0 / rank)
        elif init == "kaiming":
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        else:
            self._pissa_init()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    @torch.no_grad()
    def _pissa_init(self) -> None:
        # W0 = U S Vh; A0 = sqrt(S_r / scaling) Vh_r, B0 = U_r sqrt(S_r / scaling), so that
        # scaling · B0 A0 is the best rank-r part of W0 and the frozen weight keeps the rest.
        weight = self.base_layer.weight
        u, s, vh = torch.linalg.svd(weight.float(), full_matrices=False)  # (out,k), (k,), (k,in)
        root = (s[: self.rank] / self.scaling).sqrt()
        a0 = root[:, None] * vh[: self.rank]
        b0 = u[:, : self.rank] * root[None, :]
        self.lora_A.copy_(a0)
        self.lora_B.copy_(b0)
        weight.copy_((weight.float() - self.scaling * (b0 @ a0)).to(weight.dtype))
        # Kept (not saved with the module) to express the trained update as plain LoRA.
        self.register_buffer("pissa_A0", a0.to(weight.dtype), persistent=False)
        self.register_buffer("pissa_B0", b0.to(weight.dtype), persistent=False)

    def plain_lora(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, B) of an ordinary LoRA update of the *original* weight with the same scaling.

        For the default inits that is the adapter itself. For PiSSA the update relative to W0
        is ``scaling · (B A − B0 A0) = scaling · [B | −B0] [A ; A0]``: rank ``2·rank``, as PEFT
        converts it, so the saved adapter loads on the unmodified base model anywhere.
        """
        a, b = self.lora_A.detach(), self.lora_B.detach()
        if self.init != "pissa":
            return a, b
        return torch.cat([a, self.pissa_A0], dim=0), torch.cat([b, -self.pissa_B0], dim=1)

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
            raise ValueError("this adapter is already merged into its base layer; unmerge it first.")
        merged = self.base_layer.weight + self.delta_weight()
        if safe_merge and not torch.isfinite(merged).all():
            raise ValueError("merging this adapter gives non-finite weights; it was not merged.")
        self.base_layer.weight.copy_(merged)
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Subtract ΔW from the base weight again."""
        if not self.merged:
            raise ValueError("this adapter is not merged, so there is nothing to unmerge.")
        self.base_layer.weight.sub_(self.delta_weight())
        self.merged = False

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha}, scaling={self.scaling:g}, merged={self.merged}"
