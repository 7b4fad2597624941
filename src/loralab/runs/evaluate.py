"""Evaluate a run on any data with the same label set, optionally next to the untrained model."""

from __future__ import annotations

from pathlib import Path

from loralab.data import DataSplits, LabelledTexts, load_labelled_file
from loralab.data.dataset import stratified_subset
from loralab.errors import DataError
from loralab.evaluation.evaluate import evaluate_classifier
from loralab.methods import Classifier, TransformerClassifier, untrained_method
from loralab.runs.train import load_run


def untrained_classifier(trained: Classifier) -> Classifier:
    """The base model with a freshly initialised head, seeded as the run was ("before")."""
    if not isinstance(trained, TransformerClassifier):
        raise DataError(f"--before needs a transformer run; this run's method is '{trained.method}'.")
    empty = LabelledTexts([], [])
    splits = DataSplits(empty, empty, empty, trained.labels, source="none")
    return untrained_method().fit(splits, trained.config, progress=False).classifier


def check_labels(part: LabelledTexts, known: list[str], where: str) -> None:
    unseen = sorted(set(part.labels) - set(known))
    if unseen:
        raise DataError(
            f"{where}: label(s) {', '.join(map(repr, unseen))} were never seen by this model, "
            f"which knows {', '.join(map(repr, known))}."
        )


def evaluate_run(
    run: str | Path,
    data: str,
    *,
    split: str = "test",
    text_col: str = "text",
    label_col: str = "label",
    subset: int | None = None,
    seed: int = 42,
    before: bool = False,
) -> dict:
    """Metrics of the run on one split of DATA (``subset``: a stratified sample of at most
    that many texts), and of the untrained model too with ``before``."""
    classifier = load_run(run)
    part, where, notes = load_labelled_file(data, split, text_col, label_col)
    check_labels(part, classifier.labels, where)
    if subset is not None and len(part) > subset:  # the CLI has checked subset ≥ 1
        part = stratified_subset(part, subset, seed)
        notes = [*notes, f"Evaluated on a stratified subset of {subset} of {where}'s rows (seed {seed})."]
    results: dict = {"_data": where, "_notes": notes}
    if before:
        results["before"] = evaluate_classifier(untrained_classifier(classifier), part).metrics.to_dict()
        results["after"] = evaluate_classifier(classifier, part).metrics.to_dict()
    else:
        results["trained"] = evaluate_classifier(classifier, part).metrics.to_dict()
    return results
