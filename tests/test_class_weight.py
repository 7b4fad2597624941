"""--class-weight balanced: a rare class weighs as much in the loss as a common one."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from loralab.cli import app
from loralab.config import TrainConfig
from loralab.data import load_data
from loralab.methods.base import class_weights, sample_weights
from tests.conftest import synthetic_frame


def uneven(folder, rare_share=10):
    """The synthetic sentiment data with one positive text in ``rare_share`` (train only)."""
    folder.mkdir()
    for name, n, seed in (("train", 200, 1), ("validation", 40, 2), ("test", 40, 3)):
        frame = synthetic_frame(n, seed)
        if name == "train":
            rare = frame.index[frame["label"] == "positive"][n // (2 * rare_share) :]
            frame = frame.drop(rare)
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


def test_balanced_weights_give_every_class_the_same_total():
    labels = [0] * 90 + [1] * 10 + [2] * 20
    weights = class_weights(TrainConfig(class_weight="balanced"), labels, 3)
    totals = np.bincount(labels, weights=weights[labels])
    np.testing.assert_allclose(totals, [40, 40, 40])  # 120 texts, a third each
    assert class_weights(TrainConfig(), labels, 3) is None
    assert sample_weights(TrainConfig(), labels) is None
    np.testing.assert_allclose(
        sample_weights(TrainConfig(class_weight="balanced"), [0, 0, 0, 1]), [2 / 3] * 3 + [2]
    )


@pytest.mark.parametrize("method", ["tfidf-logreg", "tfidf-nb"])
def test_a_weighted_baseline_leans_less_to_the_common_class(method, tmp_path):
    from loralab.runs.train import train_run

    splits = load_data(uneven(tmp_path / "data"))
    assert splits.train.label_counts() == {"negative": 100, "positive": 10}

    def rare_probability(weighting):
        run = train_run(
            splits, TrainConfig(method=method, class_weight=weighting), tmp_path / weighting, progress=False
        )
        positive = run.classifier.labels.index("positive")
        return run.classifier.predict_proba(splits.test.texts)[:, positive].mean()

    assert rare_probability("balanced") > rare_probability("none") + 0.05


def test_a_weighted_loss_trains_a_neural_method_differently(tiny_bert, tmp_path):
    from loralab.runs.train import train_run

    splits = load_data(uneven(tmp_path / "data"))

    def run(weighting):
        config = TrainConfig(method="head", model=str(tiny_bert), epochs=2, class_weight=weighting, lr=5e-3)
        done = train_run(splits, config, tmp_path / weighting, progress=False)
        positive = done.classifier.labels.index("positive")
        history = pd.read_csv(tmp_path / weighting / "history.csv")
        return done, history, done.classifier.predict_proba(splits.test.texts)[:, positive].mean()

    plain, plain_history, plain_rare = run("none")
    weighted, weighted_history, weighted_rare = run("balanced")
    assert json.loads((tmp_path / "balanced" / "config.json").read_text())["class_weight"] == "balanced"
    assert weighted_history["train_loss"].iloc[0] != pytest.approx(plain_history["train_loss"].iloc[0])
    assert weighted_rare > plain_rare


def test_setfit_weighs_its_head():
    from loralab.methods.setfit import _logistic_regression

    assert _logistic_regression(TrainConfig(class_weight="balanced")).class_weight == "balanced"
    assert _logistic_regression(TrainConfig()).class_weight is None


def test_an_unknown_weighting_is_one_sentence(synthetic_dir, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(synthetic_dir),
            "--method",
            "majority",
            "--class-weight",
            "heavy",
            "-o",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code != 0
    assert "--class-weight must be none or balanced; got 'heavy'." in " ".join(result.output.split())
    assert not (tmp_path / "r").exists()


def test_uneven_training_classes_are_noted_with_what_to_do(tmp_path, synthetic_dir):
    splits = load_data(uneven(tmp_path / "skewed"))
    note = next(n for n in splits.notes if "classes are uneven" in n)
    assert "('positive' has 10 training texts, 'negative' 100)" in note
    assert "--class-weight balanced" in note and "balanced accuracy" in note
    assert not any("uneven" in n for n in load_data(synthetic_dir).notes)


def test_metrics_tables_show_balanced_accuracy_only_on_uneven_classes():
    from rich.console import Console

    from loralab.cli.common import metrics_table
    from loralab.evaluation.metrics import classification_metrics

    def shown(true, predicted):
        metrics = classification_metrics(true, predicted, ["a", "b"]).to_dict()
        console = Console(width=200, record=True)
        console.print(metrics_table({"test": metrics}))
        return console.export_text()

    skewed = shown(["a"] * 9 + ["b"], ["a"] * 10)  # always the common class: 0.9, balanced 0.5
    assert "balanced accuracy" in skewed and "0.5000" in skewed and "0.9000" in skewed
    assert "balanced accuracy" not in shown(["a", "b"] * 5, ["a"] * 10)
