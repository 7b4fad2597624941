"""Classification metrics as pure functions of true and predicted class names."""

from __future__ import annotations

from collections.abc import Sequence

from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


def classification_metrics(true: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict:
    """Accuracy, precision, recall and F1, per class and averaged, plus the confusion matrix.

    For two classes the headline precision/recall/F1 are those of the positive class, which
    is the second label in sorted order (``positive`` over ``negative``, ``1`` over ``0``) and is
    named in ``positive_label``; for more classes they are macro averages.

    >>> classification_metrics(["a", "b"], ["a", "a"], ["a", "b"])["accuracy"]
    0.5
    """
    labels = list(labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        true, predicted, labels=labels, zero_division=0
    )
    macro = precision_recall_fscore_support(true, predicted, labels=labels, average="macro", zero_division=0)
    result: dict = {
        "n": len(true),
        "accuracy": float(accuracy_score(true, predicted)) if len(true) else 0.0,
        "macro_precision": float(macro[0]),
        "macro_recall": float(macro[1]),
        "macro_f1": float(macro[2]),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(labels)
        },
        "labels": labels,
        "confusion_matrix": confusion_matrix(true, predicted, labels=labels).tolist(),
    }
    if len(labels) == 2:
        positive = labels[1]
        result.update(
            positive_label=positive,
            precision=result["per_class"][positive]["precision"],
            recall=result["per_class"][positive]["recall"],
            f1=result["per_class"][positive]["f1"],
            average="binary",
        )
    else:
        result.update(
            precision=result["macro_precision"],
            recall=result["macro_recall"],
            f1=result["macro_f1"],
            average="macro",
        )
    return result
