"""Evaluate a classifier on labelled texts: timed probabilities, metrics and a predictions table."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from loralab.data import LabelledTexts
from loralab.evaluation.metrics import SplitMetrics, classification_metrics
from loralab.methods import Classifier


@dataclass
class Evaluation:
    metrics: SplitMetrics
    probabilities: np.ndarray  # (N, num_labels) in the order of the classifier's labels
    seconds: float  # of inference


def evaluate_classifier(
    classifier: Classifier, part: LabelledTexts, batch_size: int | None = None
) -> Evaluation:
    """Metrics, probabilities and inference time of ``classifier`` on ``part``."""
    start = time.perf_counter()
    probs = classifier.predict_proba(part.texts, batch_size)
    seconds = time.perf_counter() - start
    predicted = [classifier.labels[i] for i in probs.argmax(axis=-1)]
    metrics = replace(
        classification_metrics(part.labels, predicted, classifier.labels),
        inference_seconds=seconds,
        inference_texts_per_second=len(part) / seconds if seconds else float("nan"),
    )
    return Evaluation(metrics, probs, seconds)


def predictions_frame(
    texts: Sequence[str], probs: np.ndarray, labels: list[str], true: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per text: the true class (if known), the predicted one, and every probability."""
    frame = pd.DataFrame({"text": list(texts)})
    if true is not None:
        frame["label"] = list(true)
    frame["predicted"] = [labels[i] for i in probs.argmax(axis=-1)]
    frame["probability"] = probs.max(axis=-1)
    for i, name in enumerate(labels):
        frame[f"p_{name}"] = probs[:, i]
    return frame
