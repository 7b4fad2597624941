"""Classification metrics as pure functions of true and predicted classes.

Every figure loralab reports is computed here: a split's metrics after training
(:func:`classification_metrics`) and the validation scores that choose the best epoch while
training (:func:`validation_scores`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import log_softmax
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


@dataclass(frozen=True)
class ClassMetrics:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class SplitMetrics:
    """Metrics of one split. For two classes the headline precision/recall/F1 are those of the
    positive class (``positive_label``, ``average == "binary"``); for more, macro averages."""

    n: int
    accuracy: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    per_class: dict[str, ClassMetrics]
    labels: list[str]
    confusion_matrix: list[list[int]]  # rows: true class, columns: predicted, in ``labels`` order
    precision: float
    recall: float
    f1: float
    average: str
    positive_label: str | None = None
    inference_seconds: float | None = None  # set when timed by an evaluation
    inference_texts_per_second: float | None = None

    def to_dict(self) -> dict:
        """The form of ``metrics.json`` (reports, serving and sweeps read these keys)."""
        data: dict = {
            "n": self.n,
            "accuracy": self.accuracy,
            "macro_precision": self.macro_precision,
            "macro_recall": self.macro_recall,
            "macro_f1": self.macro_f1,
            "per_class": {name: vars(scores).copy() for name, scores in self.per_class.items()},
            "labels": list(self.labels),
            "confusion_matrix": self.confusion_matrix,
        }
        if self.positive_label is not None:
            data["positive_label"] = self.positive_label
        data.update(precision=self.precision, recall=self.recall, f1=self.f1, average=self.average)
        if self.inference_seconds is not None:
            data["inference_seconds"] = self.inference_seconds
            data["inference_texts_per_second"] = self.inference_texts_per_second
        return data


def classification_metrics(
    true: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
) -> SplitMetrics:
    """Accuracy, precision, recall and F1, per class and averaged, plus the confusion matrix.

    For two classes the headline precision/recall/F1 are those of the positive class, which
    is the second label in sorted order (``positive`` over ``negative``, ``1`` over ``0``) and is
    named in ``positive_label``; for more classes they are macro averages.

    >>> classification_metrics(["a", "b"], ["a", "a"], ["a", "b"]).accuracy
    0.5
    """
    labels = list(labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        true, predicted, labels=labels, zero_division=0
    )
    macro = precision_recall_fscore_support(true, predicted, labels=labels, average="macro", zero_division=0)
    per_class = {
        name: ClassMetrics(float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]))
        for i, name in enumerate(labels)
    }
    macro_precision, macro_recall, macro_f1 = float(macro[0]), float(macro[1]), float(macro[2])
    positive = labels[1] if len(labels) == 2 else None
    headline = (
        (per_class[positive].precision, per_class[positive].recall, per_class[positive].f1, "binary")
        if positive is not None
        else (macro_precision, macro_recall, macro_f1, "macro")
    )
    return SplitMetrics(
        n=len(true),
        accuracy=float(accuracy_score(true, predicted)) if len(true) else 0.0,
        macro_precision=macro_precision,
        macro_recall=macro_recall,
        macro_f1=macro_f1,
        per_class=per_class,
        labels=labels,
        confusion_matrix=confusion_matrix(true, predicted, labels=labels).tolist(),
        precision=headline[0],
        recall=headline[1],
        f1=headline[2],
        average=headline[3],
        positive_label=positive,
    )


def validation_scores(logits: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """An epoch's ``val_loss`` (mean cross-entropy) and ``val_accuracy`` from logits ``(N, C)``
    and class ids ``(N,)``; the training loop keeps the epoch with the best accuracy (of equals,
    the one with the lower loss)."""
    # SciPy's log-softmax rather than torch's cross-entropy: the same figure, and loading a
    # TF-IDF run for prediction (which imports this module) then never imports torch.
    log_probs = log_softmax(np.asarray(logits, dtype=np.float64), axis=-1)
    loss = -log_probs[np.arange(len(targets)), targets].mean()
    return {"val_loss": float(loss), "val_accuracy": float((logits.argmax(-1) == targets).mean())}
