"""Low-rank structure of a fine-tuning update (seed 002 tasks 5–7).

For each targeted layer with pretrained weight W0 and fine-tuned weight W (for a LoRA run,
W = W0 + ΔW with the adapter merged):

- version 1 replaces W by its best rank-r approximation;
- version 2 keeps W0 and adds the best rank-r approximation of ΔW = W − W0, which is what
  LoRA can represent at rank r.

Accuracy against r (halving from full rank down to 1) shows how low-rank the update is. The
study also records the ΔW diagnostics of :mod:`loralab.analysis.delta` and, with a second run
of the same base model, how much the two updates share their top directions.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from loralab.analysis.delta import update_diagnostics
from loralab.data.dataset import stratified_subset
from loralab.errors import LoralabError, RunError
from loralab.evaluation.evaluate import evaluate_classifier
from loralab.methods import get_method, method_names
from loralab.methods.merge import merge_adapters
from loralab.methods.neural import TransformerClassifier
from loralab.models.loading import load_classifier
from loralab.models.surgery import extract, replace
from loralab.runs.evaluate import check_labels, split_for_run
from loralab.runs.train import load_run


def study_methods() -> list[str]:
    """Methods whose runs change encoder weights, so that ΔW can be studied."""
    return [name for name in method_names() if get_method(name).has_weight_update]


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


def run_base_model(run_dir: str | Path) -> tuple[str, str]:
    """(method, base model) a run folder was trained with, read from its saved config."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise RunError(f"{run_dir}: not a run folder (no config.json).")
    config = json.loads(path.read_text())
    return config.get("method", "?"), config.get("model", "?")


def check_same_base(run_dir: str | Path, other_dir: str | Path) -> None:
    """Refuse to compare runs of different base models, naming both."""
    (_, model), (_, other) = run_base_model(run_dir), run_base_model(other_dir)
    if model != other:
        raise LoralabError(
            f"{run_dir} and {other_dir} adapt different base models ({model} and {other}); "
            "the low-rank study compares updates of the same pretrained weights."
        )


def check_head_run(run_dir: str | Path, head_dir: str | Path) -> None:
    """Refuse a ``--head-run`` that is not a head-tuned run of the same base model."""
    method, _ = run_base_model(head_dir)
    if method != "head":
        raise LoralabError(
            f"--head-run {head_dir}: is a '{method}' run; the reference line is a head-tuned run "
            "(trained with --method head)."
        )
    check_same_base(run_dir, head_dir)


def _updates(run_dir, targets: list[str] | None, *, targets_from_user: bool = True):
    """The run's classifier (adapters merged), its targeted layers, and ΔW for each.

    An adapter run's update lies in the layers its adapters target, so those are studied;
    ``targets`` given by the user (``--target-modules``) must name them or be left out."""
    classifier = load_run(run_dir)
    if not get_method(classifier.method).has_weight_update:
        raise LoralabError(
            f"{run_dir}: the low-rank study needs a run that changes encoder weights "
            f"({', '.join(study_methods())}); this run is '{classifier.method}'."
        )
    assert isinstance(classifier, TransformerClassifier)  # every study method adapts an encoder
    classifier.model, adapted = merge_adapters(classifier.model)
    modules = sorted({name.rpartition(".")[2] for name in adapted})
    if adapted and targets and targets_from_user and set(targets) not in (set(adapted), set(modules)):
        raise LoralabError(
            f"{run_dir}: --target-modules chooses the layers of a full run; this {classifier.method} "
            f"run changed only the layers its adapters target ({', '.join(modules)}), which the study "
            "uses — leave --target-modules out."
        )
    names = adapted or targets or classifier.config.target_modules
    tuned = extract(classifier.model, names)
    pretrained = load_classifier(classifier.config.model, classifier.labels).model
    base = extract(pretrained, list(tuned))
    for name in tuned:
        if tuned[name].weight.shape != base[name].weight.shape:
            raise LoralabError(
                f"{run_dir}: layer {name} is {tuple(tuned[name].weight.shape)} in the run but "
                f"{tuple(base[name].weight.shape)} in {classifier.config.model}."
            )
    updates = {n: (tuned[n].weight - base[n].weight).detach() for n in tuned}
    return classifier, tuned, base, updates


def lowrank_study(
    run_dir: str | Path,
    data: str,
    *,
    split: str = "test",
    targets: list[str] | None = None,
    against: str | Path | None = None,
    text_col: str = "text",
    label_col: str = "label",
    subset: int | None = None,
) -> dict:
    """Accuracy of versions 1 and 2 at halving ranks, the replace test, and ΔW diagnostics.

    ``against`` is a second run of the same base model (the full run for a LoRA run, say):
    its accuracy becomes a reference line and its updates the reference for the subspace
    similarity.
    """
    if against is not None:
        check_same_base(run_dir, against)
    classifier, tuned_layers, base_layers, updates = _updates(run_dir, targets)
    part, where, notes = split_for_run(run_dir, data, split, text_col, label_col)
    check_labels(part, classifier.labels, where)
    if subset is not None:
        part = stratified_subset(part, subset, seed=42)

    def accuracy(model_classifier=classifier) -> float:
        return evaluate_classifier(model_classifier, part).metrics.accuracy

    rank = classifier.config.lora_rank
    reference = None
    study: dict = {"run": str(run_dir), "method": classifier.method, "data": where, "notes": notes}
    if against is not None:
        other, _, _, reference = _updates(against, list(tuned_layers), targets_from_user=False)
        study["against"] = {"run": str(against), "method": other.method, "accuracy": accuracy(other)}
        del other
    originals = {name: layer.weight.detach().clone() for name, layer in tuned_layers.items()}
    full_rank = min(min(w.shape) for w in originals.values())
    study.update(
        layers=list(tuned_layers),
        full_rank=full_rank,
        lora_rank=rank if get_method(classifier.method).trains_adapters else None,
        fine_tuned_accuracy=accuracy(),
        diagnostics=update_diagnostics(updates, rank, reference),
    )
    rows = []
    try:
        for version in (1, 2):
            for r in halving_ranks(full_rank):
                with torch.no_grad():
                    for name, layer in tuned_layers.items():
                        w, w0 = originals[name], base_layers[name].weight
                        layer.weight.copy_(approximate(w, r) if version == 1 else w0 + approximate(w - w0, r))
                rows.append({"version": version, "rank": r, "accuracy": accuracy()})
    finally:
        with torch.no_grad():
            for name, layer in tuned_layers.items():
                layer.weight.copy_(originals[name])
    study["rows"] = rows
    # Seed 002's replace test: random clones of the targeted layers should break the model, and
    # putting the originals back should restore it exactly.
    torch.manual_seed(0)
    clones = {}
    for name, layer in tuned_layers.items():
        clone = nn.Linear(layer.in_features, layer.out_features)
        nn.init.normal_(clone.weight, mean=0.0, std=0.01)
        clones[name] = clone
    replace(classifier.model, clones)
    replaced = accuracy()
    replace(classifier.model, tuned_layers)
    study["replace_test"] = {"random_clones": replaced, "restored": accuracy()}
    return study


def lowest_rank_above(study: dict, threshold: float, version: int = 2) -> int | None:
    """Lowest rank whose ``version`` accuracy still exceeds ``threshold`` (e.g. head tuning)."""
    ranks = [r["rank"] for r in study["rows"] if r["version"] == version and r["accuracy"] > threshold]
    return min(ranks) if ranks else None
