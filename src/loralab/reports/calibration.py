"""Calibration: does a predicted probability of 0.9 come true nine times in ten?

scikit-learn's ``calibration_curve`` drops empty bins and returns no counts, and it has no
expected calibration error, which needs both; the dozen lines here compute the two together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Reliability:
    """Per confidence bin: its edges, how many predictions fell in it, their mean confidence
    and how many of them were right; and the expected calibration error over all bins."""

    edges: np.ndarray  # (bins + 1,)
    counts: np.ndarray  # (bins,)
    confidence: np.ndarray  # (bins,) NaN where a bin is empty
    accuracy: np.ndarray  # (bins,) NaN where a bin is empty
    ece: float


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> Reliability:
    """Bin the top-class ``confidence`` of each prediction on [0, 1] and compare with ``correct``.

    ECE = Σ_b (n_b / N) · |accuracy_b − confidence_b| (Guo et al., 2017).

    >>> round(reliability(np.array([0.9, 0.9, 0.6, 0.6]), np.array([1, 1, 0, 1])).ece, 3)
    0.1
    """
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Right-closed bins so that a confidence of exactly 1.0 lands in the last one.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(which, weights=confidence, minlength=bins) / counts
        mean_accuracy = np.bincount(which, weights=correct, minlength=bins) / counts
    total = counts.sum()
    gaps = np.where(counts > 0, np.abs(mean_accuracy - mean_confidence), 0.0)
    ece = float((counts * gaps).sum() / total) if total else float("nan")
    return Reliability(edges, counts, mean_confidence, mean_accuracy, ece)
