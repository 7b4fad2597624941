"""Low-rank structure of a fine-tuning update (seed 002 tasks 5–7).

For each targeted layer with pretrained weight W0 and fine-tuned weight W:

- version 1 replaces W by its best rank-r approximation;
- version 2 keeps W0 and adds the best rank-r approximation of ΔW = W − W0, which is what
  LoRA can represent at rank r.

Accuracy against r (halving from full rank down to 1) shows how low-rank the update is.
"""

from __future__ import annotations

from pathlib import Path

import torch

from loralab.data import load_labelled_file
from loralab.errors import LoralabError
from loralab.models.loading import load_classifier
from loralab.models.surgery import extract


def approximate(matrix: torch.Tensor, rank: int) -> torch.Tensor:
    """Best rank-``rank`` approximation of ``matrix`` (Eckart–Young), by truncated SVD.

    >>> m = torch.randn(6, 4)
    >>> torch.allclose(approximate(m, 4), m, atol=1e-5)
    True
    """
    if rank < 1:
        raise ValueError(f"rank must be ≥ 1, got {rank}")
    u, s, vh = torch.linalg.svd(matrix.float(), full_matrices=False)  # (m, k), (k,), (k, n)
    rank = min(rank, s.numel())
    return ((u[:, :rank] * s[:rank]) @ vh[:rank]).to(matrix.dtype)


def halving_ranks(full: int) -> list[int]:
    """``[full, full // 2, …, 1]``."""
    ranks = []
    rank = full
    while rank >= 1:
        ranks.append(rank)
        rank //= 2
    return ranks


def lowrank_study(
    run_dir: str | Path,
    data: str,
    *,
    split: str = "test",
    targets: list[str] | None = None,
    text_col: str = "text",
    label_col: str = "label",
) -> dict:
    """Accuracy of versions 1 and 2 at halving ranks for a fully fine-tuned run."""
    from loralab.runs.evaluate import check_labels
    from loralab.runs.train import evaluate_classifier, load_run

    classifier = load_run(run_dir)
    if classifier.method != "full":
        raise LoralabError(
            f"{run_dir}: the low-rank study needs a fully fine-tuned run (--method full); this run is "
            f"'{classifier.method}'."
        )
    part, where, _ = load_labelled_file(data, split, text_col, label_col)
    check_labels(part, classifier.labels, where)
    config = classifier.config
    pretrained = load_classifier(config.model, classifier.labels).model
    tuned_layers = extract(classifier.model, targets or config.target_modules)
    base_layers = extract(pretrained, list(tuned_layers))
    originals = {name: layer.weight.detach().clone() for name, layer in tuned_layers.items()}
    full_rank = min(min(w.shape) for w in originals.values())
    reference = evaluate_classifier(classifier, part)[0]["accuracy"]
    rows = []
    try:
        for version in (1, 2):
            for rank in halving_ranks(full_rank):
                with torch.no_grad():
                    for name, layer in tuned_layers.items():
                        w, w0 = originals[name], base_layers[name].weight
                        layer.weight.copy_(
                            approximate(w, rank) if version == 1 else w0 + approximate(w - w0, rank)
                        )
                accuracy = evaluate_classifier(classifier, part)[0]["accuracy"]
                rows.append({"version": version, "rank": rank, "accuracy": accuracy})
    finally:
        with torch.no_grad():
            for name, layer in tuned_layers.items():
                layer.weight.copy_(originals[name])
    # Seed 002's replace test: random clones of the targeted layers should break the model, and
    # putting the originals back should restore it exactly.
    from torch import nn

    from loralab.models.surgery import replace

    torch.manual_seed(0)
    clones = {}
    for name, layer in tuned_layers.items():
        clone = nn.Linear(layer.in_features, layer.out_features)
        nn.init.normal_(clone.weight, mean=0.0, std=0.01)
        clones[name] = clone
    replace(classifier.model, clones)
    replaced = evaluate_classifier(classifier, part)[0]["accuracy"]
    replace(classifier.model, tuned_layers)
    restored = evaluate_classifier(classifier, part)[0]["accuracy"]
    return {
        "replace_test": {"random_clones": replaced, "restored": restored},
        "run": str(run_dir),
        "data": where,
        "layers": list(tuned_layers),
        "full_rank": full_rank,
        "fine_tuned_accuracy": reference,
        "rows": rows,
    }
