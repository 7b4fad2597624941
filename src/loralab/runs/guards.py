"""Guard rails: say so when a trained model is useless, instead of reporting it as done.

A run can finish, reload identically and still be worthless: one epoch on 300 texts once
predicted one class for 296 of 299 test texts. Two checks catch that from the metrics alone,
on validation (the split used to choose), else on test:

- **collapse**: one class takes at least ``COLLAPSE_SHARE`` of the predictions although the
  true labels are spread more evenly than that;
- **no better than the majority class**: accuracy does not exceed that of always answering
  the most frequent training label.
"""

from __future__ import annotations

import warnings

# A class predicted for ≥ 95 % of texts, when its true share is at most 85 %, is a collapse.
COLLAPSE_SHARE = 0.95
COLLAPSE_TRUE_SHARE = 0.85


class ModelQualityWarning(UserWarning):
    """A trained model that is no better than a trivial rule."""


def quality_warnings(metrics: dict[str, dict], train_label_counts: dict[str, int]) -> list[str]:
    """Sentences describing what is wrong with the trained model, or an empty list.

    ``metrics`` maps a split to :func:`~loralab.evaluation.metrics.classification_metrics`.

    >>> m = {"n": 10, "accuracy": 0.5, "labels": ["a", "b"], "confusion_matrix": [[5, 0], [5, 0]]}
    >>> quality_warnings({"validation": m}, {"a": 6, "b": 4})[0][:45]
    "On validation the model predicts 'a' for 100%"
    """
    split = next((s for s in ("validation", "test") if metrics.get(s, {}).get("n")), None)
    if split is None or not train_label_counts:
        return []
    values = metrics[split]
    labels, confusion = values["labels"], values["confusion_matrix"]
    total = sum(map(sum, confusion))
    if not total:
        return []
    predicted = [sum(row[j] for row in confusion) for j in range(len(labels))]
    true = [sum(row) for row in confusion]
    found = []
    top = max(range(len(labels)), key=predicted.__getitem__)
    if predicted[top] / total >= COLLAPSE_SHARE and true[top] / total <= COLLAPSE_TRUE_SHARE:
        found.append(
            f"On {split} the model predicts '{labels[top]}' for {predicted[top] / total:.0%} of the "
            f"texts ({predicted[top]} of {total}) although {true[top] / total:.0%} are '{labels[top]}': "
            "it has collapsed to one class; train longer, on more data or with another learning rate."
        )
    majority = max(train_label_counts, key=train_label_counts.__getitem__)
    majority_accuracy = true[labels.index(majority)] / total if majority in labels else 0.0
    if values["accuracy"] <= majority_accuracy:
        found.append(
            f"On {split} the accuracy {values['accuracy']:.3f} does not beat always answering the "
            f"majority class '{majority}' ({majority_accuracy:.3f}); the model has learned nothing useful."
        )
    return found


def warn_about(problems: list[str], stacklevel: int = 2) -> None:
    """Raise each problem as a :class:`ModelQualityWarning`; ``stacklevel`` counts from the caller."""
    for problem in problems:
        warnings.warn(problem, ModelQualityWarning, stacklevel=stacklevel + 1)
