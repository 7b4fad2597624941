"""ΔW diagnostics: how much of a fine-tuning update lives in a few directions.

Pure functions on tensors (upcast to fp32), plus :func:`update_diagnostics`, which applies them
to every targeted layer of a run. For a LoRA run ΔW is the merged update ``scaling · B A``;
for a fully fine-tuned run it is ``W − W0``. The subspace similarity is §7 of the LoRA paper
(Hu et al., 2021): ``φ(i, j) = ‖U_iᵀ V_j‖²_F / min(i, j)`` for the top-i and top-j left
singular vectors of two updates, 1 when one subspace contains the other and about
``max(i, j) / d`` for random subspaces of dimension d.
"""

from __future__ import annotations

import torch

ENERGY_RANKS = (1, 2, 4, 8, 16, 32, 64)
SPECTRUM_LENGTH = 64


def singular_values(matrix: torch.Tensor) -> torch.Tensor:
    """Singular values of ``matrix`` in descending order, in fp32."""
    return torch.linalg.svdvals(matrix.float())


def effective_rank(values: torch.Tensor) -> float:
    """exp of the entropy of the normalised singular values (Roy & Vetterli, 2007).

    Equals k for k equal non-zero singular values and 1 for a rank-one matrix.

    >>> round(effective_rank(torch.tensor([2.0, 2.0, 0.0])), 6)
    2.0
    """
    total = values.sum()
    if total <= 0:
        return 0.0
    p = values[values > 0] / total
    return float(torch.exp(-(p * p.log()).sum()))


def energy(values: torch.Tensor, rank: int) -> float:
    """Share of ‖ΔW‖²_F in the top ``rank`` singular directions (what a rank-r LoRA can keep)."""
    squares = values.float() ** 2
    total = squares.sum()
    return float(squares[:rank].sum() / total) if total > 0 else 0.0


def subspace_similarity(a: torch.Tensor, b: torch.Tensor, i: int, j: int | None = None) -> float:
    """Normalised overlap of the top-``i`` left singular subspace of ``a`` with the top-``j`` of ``b``.

    >>> m = torch.randn(8, 5)
    >>> round(subspace_similarity(m, 3 * m, 2), 5)
    1.0
    """
    j = i if j is None else j
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"the updates have different output sizes ({a.shape[0]} and {b.shape[0]}).")
    ua = torch.linalg.svd(a.float(), full_matrices=False)[0][:, :i]
    ub = torch.linalg.svd(b.float(), full_matrices=False)[0][:, :j]
    return float((ua.T @ ub).pow(2).sum() / min(ua.shape[1], ub.shape[1]))


def layer_type(name: str) -> str:
    """``encoder.layer.3.attention.self.query`` → ``query``."""
    return name.rsplit(".", 1)[-1]


def update_diagnostics(
    updates: dict[str, torch.Tensor], rank: int, reference: dict[str, torch.Tensor] | None = None
) -> list[dict]:
    """Per layer: spectrum (top singular values), effective rank, energy at ranks 1, 2, 4, …, and —
    with ``reference`` updates of the same layers — the subspace similarity at ``rank``."""
    rows = []
    for name, delta in updates.items():
        values = singular_values(delta)
        row = {
            "layer": name,
            "type": layer_type(name),
            "norm": float(values.pow(2).sum().sqrt()),
            "effective_rank": effective_rank(values),
            "energy": {str(r): energy(values, r) for r in ENERGY_RANKS if r <= values.numel()},
            "singular_values": values[:SPECTRUM_LENGTH].tolist(),
        }
        if reference is not None and name in reference:
            row["similarity"] = subspace_similarity(delta, reference[name], rank)
            row["similarity_rank"] = rank
        rows.append(row)
    return rows
