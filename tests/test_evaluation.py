"""Evaluation: typed metrics whose dict form is metrics.json's, and the loop's validation scores."""

import numpy as np
import pytest
import torch

from loralab.data import LabelledTexts
from loralab.evaluation.evaluate import evaluate_classifier, predictions_frame
from loralab.evaluation.metrics import classification_metrics, validation_scores

HEAD = [
    "n",
    "accuracy",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "per_class",
    "labels",
    "confusion_matrix",
]


def test_binary_metrics_keep_metrics_json_keys_and_name_the_positive_class():
    metrics = classification_metrics(
        ["neg", "pos", "pos", "neg"], ["neg", "pos", "neg", "neg"], ["neg", "pos"]
    )
    data = metrics.to_dict()
    assert list(data) == [*HEAD, "positive_label", "precision", "recall", "f1", "average"]
    assert data["positive_label"] == "pos" and data["average"] == "binary"
    assert data["precision"] == 1.0 and data["recall"] == 0.5 and data["accuracy"] == 0.75
    assert data["per_class"]["pos"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert data["confusion_matrix"] == [[2, 0], [1, 1]]


def test_multiclass_metrics_are_macro_averages():
    data = classification_metrics(["a", "b", "c"], ["a", "b", "b"], ["a", "b", "c"]).to_dict()
    assert list(data) == [*HEAD, "precision", "recall", "f1", "average"]
    assert data["average"] == "macro" and data["f1"] == data["macro_f1"]


def test_validation_scores_are_cross_entropy_and_accuracy():
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 0.5]], dtype=np.float32)
    targets = np.array([0, 1, 1])
    scores = validation_scores(logits, targets)
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(targets))
    assert scores["val_loss"] == pytest.approx(float(expected))
    assert scores["val_accuracy"] == pytest.approx(2 / 3)


class _Fixed:
    labels = ["neg", "pos"]

    def predict_proba(self, texts, batch_size=None):
        return np.array([[0.9, 0.1] if "bad" in t else [0.2, 0.8] for t in texts])


def test_evaluation_times_inference_and_tabulates_predictions():
    part = LabelledTexts(["bad film", "good film", "bad plot"], ["neg", "pos", "pos"])
    evaluation = evaluate_classifier(_Fixed(), part)
    data = evaluation.metrics.to_dict()
    assert list(data)[-2:] == ["inference_seconds", "inference_texts_per_second"]
    assert data["accuracy"] == pytest.approx(2 / 3)
    frame = predictions_frame(part.texts, evaluation.probabilities, _Fixed.labels, part.labels)
    assert list(frame.columns) == ["text", "label", "predicted", "probability", "p_neg", "p_pos"]
    assert frame["predicted"].tolist() == ["neg", "pos", "neg"]
