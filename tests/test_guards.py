"""Guard rails: a useless trained model is reported as such, in the manifest, console and card."""

import json
import warnings

import pytest
from typer.testing import CliRunner

from loralab.api import TextClassifier
from loralab.cli import app
from loralab.config import TrainConfig
from loralab.runs.guards import ModelQualityWarning, quality_warnings
from loralab.runs.train import train_run
from tests.conftest import synthetic_frame


def split_metrics(confusion: list[list[int]], labels=("negative", "positive")) -> dict:
    n = sum(map(sum, confusion))
    correct = sum(confusion[i][i] for i in range(len(confusion)))
    return {"n": n, "accuracy": correct / n, "labels": list(labels), "confusion_matrix": confusion}


@pytest.mark.parametrize(
    "confusion, train_counts, expected",
    [
        ([[49, 1], [50, 0]], {"negative": 50, "positive": 50}, ["collapsed", "does not beat"]),
        ([[50, 0], [47, 3]], {"negative": 50, "positive": 50}, ["collapsed"]),
        ([[40, 10], [10, 40]], {"negative": 50, "positive": 50}, []),
        # Skewed data: predicting the majority 96 % of the time is not a collapse, but an
        # accuracy equal to the majority rate still means nothing was learned.
        ([[96, 0], [4, 0]], {"negative": 96, "positive": 4}, ["does not beat"]),
        ([[94, 2], [1, 3]], {"negative": 96, "positive": 4}, []),
    ],
    ids=["collapse", "collapse-above-majority", "fine", "skewed-majority", "skewed-good"],
)
def test_quality_warnings(confusion, train_counts, expected):
    found = quality_warnings({"validation": split_metrics(confusion)}, train_counts)
    assert len(found) == len(expected)
    for sentence, words in zip(found, expected, strict=True):
        assert words in sentence


def test_three_classes_and_no_held_out_data():
    confusion = [[10, 0, 0], [10, 0, 0], [9, 0, 1]]
    found = quality_warnings({"test": split_metrics(confusion, ("a", "b", "c"))}, {"a": 3, "b": 3, "c": 3})
    assert "On test the model predicts 'a' for 97%" in found[0]
    assert quality_warnings({}, {"a": 1}) == []


def test_collapsed_run_is_flagged_in_manifest_card_and_console(tiny_bert, synthetic_dir, tmp_path):
    config = TrainConfig(method="head", model=str(tiny_bert), epochs=1, lr=1e-9, seed=1)
    run = train_run(synthetic_dir, config, tmp_path / "useless", progress=False)
    problems = json.loads((run.folder / "manifest.json").read_text())["warnings"]
    assert any("collapsed to one class" in p for p in problems)
    assert "**Warning:** " + problems[0] in (run.folder / "README.md").read_text()
    args = [
        "train",
        str(synthetic_dir),
        "--method",
        "head",
        "--model",
        str(tiny_bert),
        "--epochs",
        "1",
        "--lr",
        "1e-9",
        "--seed",
        "1",
        "-o",
        str(tmp_path / "cli"),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "collapsed" in result.output


def test_a_good_run_and_the_untrained_method_carry_no_warning(tiny_bert, synthetic_dir, tmp_path):
    good = train_run(synthetic_dir, TrainConfig(method="tfidf-logreg"), tmp_path / "good", progress=False)
    assert good.manifest["warnings"] == []
    untrained = TrainConfig(method="untrained", model=str(tiny_bert), seed=1)
    run = train_run(synthetic_dir, untrained, tmp_path / "before", progress=False)
    assert "warnings" not in run.manifest


def test_python_api_warns_about_a_useless_model(tiny_bert):
    frame = synthetic_frame(100, 7)
    with pytest.warns(ModelQualityWarning, match="collapsed"):
        TextClassifier(method="head", model=str(tiny_bert), epochs=1, lr=1e-9, seed=1).fit(
            frame["text"], frame["label"]
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelQualityWarning)
        TextClassifier(method="tfidf-logreg").fit(frame["text"], frame["label"])
