"""Evaluate a run on any data with the same label set, optionally next to the untrained model."""

from __future__ import annotations

from pathlib import Path

from loralab.data import LabelledTexts, load_labelled_file
from loralab.errors import DataError
from loralab.methods import Classifier, TransformerClassifier, get_method
from loralab.runs.train import evaluate_classifier, load_run


def untrained_classifier(trained: Classifier) -> Classifier:
    """The base model with a freshly initialised head, seeded as the run was ("before")."""
    if not isinstance(trained, TransformerClassifier):
        raise DataError(f"--before needs a transformer run; this run's method is '{trained.method}'.")
    from loralab.data import DataSplits, LabelledTexts

    empty = LabelledTexts([], [])
    splits = DataSplits(empty, empty, empty, trained.labels, source="none")
    classifier, _ = get_method("untrained").fit(splits, trained.config, progress=False)
    return classifier


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
    before: bool = False,
) -> dict:
    classifier = load_run(run)
    part, where, notes = load_labelled_file(data, split, text_col, label_col)
    check_labels(part, classifier.labels, where)
    results: dict = {"_data": where, "_notes": notes}
    if before:
        results["before"] = evaluate_classifier(untrained_classifier(classifier), part)[0]
        results["after"] = evaluate_classifier(classifier, part)[0]
    else:
        results["trained"] = evaluate_classifier(classifier, part)[0]
    return results
