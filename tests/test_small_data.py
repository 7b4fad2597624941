"""Small data: learning curves choose epochs on a validation split of the same size per class."""

import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from loralab.cli import app
from loralab.data import LabelledTexts, load_data
from loralab.errors import DataError
from loralab.runs.compare import VALIDATION_CUT_NOTE, per_class_subset


def test_validation_is_cut_to_the_training_size_per_class_and_nested(synthetic_dir):
    splits = load_data(synthetic_dir)
    small, large = per_class_subset(splits, 4, 42), per_class_subset(splits, 8, 42)
    assert small.validation.label_counts() == {"negative": 4, "positive": 4}
    assert large.validation.label_counts() == {"negative": 8, "positive": 8}
    pairs = set(zip(large.validation.texts, large.validation.labels, strict=True))
    assert set(zip(small.validation.texts, small.validation.labels, strict=True)) <= pairs
    assert set(pairs) <= set(zip(splits.validation.texts, splits.validation.labels, strict=True))
    assert small.test == splits.test
    assert VALIDATION_CUT_NOTE in small.notes and VALIDATION_CUT_NOTE not in splits.notes
    assert per_class_subset(splits, None, 42) is splits  # "all" keeps the whole validation split


def test_validation_smaller_than_the_cut_is_kept_whole(synthetic_dir):
    splits = load_data(synthetic_dir)  # 20 validation texts per class
    assert per_class_subset(splits, 64, 42).validation.label_counts() == {"negative": 20, "positive": 20}


def test_an_empty_validation_cut_is_refused(synthetic_dir):
    splits = replace(load_data(synthetic_dir), validation=LabelledTexts([], []))
    with pytest.raises(DataError, match="--train-sizes 4: the validation split of .* is empty"):
        per_class_subset(splits, 4, 42)


def test_learning_curve_says_the_validation_was_cut(synthetic_dir, tmp_path):
    out = tmp_path / "lc"
    args = ["compare", str(synthetic_dir), "--methods", "majority,tfidf-logreg", "--train-sizes", "4,all"]
    result = CliRunner().invoke(app, [*args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert VALIDATION_CUT_NOTE in " ".join(result.output.split())
    saved = json.loads((out / "results.json").read_text())
    assert saved["validation_cut"] == VALIDATION_CUT_NOTE
    texts = {(r["train_size"], r["method"]): r["validation_texts"] for r in saved["runs"]}
    assert texts[("4", "tfidf-logreg")] == 8 and texts[("all", "tfidf-logreg")] == 40
    assert list(saved["recommendations"]) == ["4", "all"] and saved["recommendation"]["train_size"] == "all"
    assert CliRunner().invoke(app, ["report", str(out)]).exit_code == 0
    assert VALIDATION_CUT_NOTE in (out / "report.md").read_text()


def test_the_floor_raises_only_default_epochs_of_small_data():
    from loralab.methods.steps import floored_schedule

    small = floored_schedule(32, 32, 3, 100)  # 16 texts per class, 2 classes
    assert (small.epochs, small.steps_per_epoch, small.raised_from) == (100, 1, 3)
    assert small.patience == 25
    assert floored_schedule(32, 32, 3, 100, patience=4).patience == 4  # the user's patience is kept
    assert floored_schedule(96, 32, 3, 100).epochs == 34  # 3 steps per epoch
    assert floored_schedule(200, 16, 3, 100, grad_accum_steps=2).steps_per_epoch == 7
    large = floored_schedule(8530, 32, 3, 100)
    assert (large.epochs, large.raised_from, large.patience) == (3, None, None)
    assert floored_schedule(32, 32, 3, 0).epochs == 3  # 0 switches the floor off


def test_sixteen_texts_per_class_train_enough_steps(tiny_bert, synthetic_dir, tmp_path):
    from loralab.config import TrainConfig
    from loralab.runs.train import train_run

    splits = per_class_subset(load_data(synthetic_dir), 16, 42)
    floored = train_run(
        splits, TrainConfig(method="head", model=str(tiny_bert)), tmp_path / "f", progress=False
    )
    floor = floored.manifest["step_floor"]
    assert floor == {"epochs": 100, "steps_per_epoch": 1, "patience": 25, "raised_from": 10}
    import pandas as pd

    history = pd.read_csv(tmp_path / "f" / "history.csv")
    assert len(history) == 100 or (floored.manifest["stopped_early"] and len(history) > 25)
    assert history["step"].iloc[-1] == len(history)  # one optimizer step per epoch
    plain = train_run(
        splits,
        TrainConfig(method="head", model=str(tiny_bert), min_train_steps=0),
        tmp_path / "p",
        progress=False,
    )
    assert plain.manifest.get("step_floor") is None and plain.manifest["resolved"]["epochs"] == 10
    plain_history = pd.read_csv(tmp_path / "p" / "history.csv")
    assert history["train_loss"].iloc[-1] < plain_history["train_loss"].iloc[-1]
    given = train_run(
        splits, TrainConfig(method="head", model=str(tiny_bert), epochs=2), tmp_path / "g", progress=False
    )
    assert given.manifest.get("step_floor") is None and given.manifest["resolved"]["epochs"] == 2


def test_cli_says_when_the_floor_raised_the_epochs(tiny_bert, synthetic_dir, tmp_path):
    import pandas as pd

    data = tmp_path / "few.csv"
    pd.read_csv(synthetic_dir / "train.csv").head(24).to_csv(data, index=False)
    args = ["train", str(data), "--method", "head", "--model", str(tiny_bert), "-o", str(tmp_path / "r")]
    result = CliRunner().invoke(app, [*args, "--min-train-steps", "30"])
    assert result.exit_code == 0, result.output
    assert "Small training set: 30 epochs instead of 10" in " ".join(result.output.split())
    bad = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "x"), "--min-train-steps", "-1"])
    assert bad.exit_code == 2 and "--min-train-steps must be ≥ 0, got -1." in bad.output


def test_of_epochs_level_on_validation_accuracy_the_lower_loss_is_kept():
    from loralab.training.loop import TrainResult, is_better

    result = TrainResult(precision="fp32")
    first = {"epoch": 1, "val_accuracy": 1.0, "val_loss": 0.68}
    assert is_better(first, result)
    result.best_validation_accuracy, result.best_epoch, result.history = 1.0, 1, [first]
    assert is_better({"epoch": 2, "val_accuracy": 1.0, "val_loss": 0.43}, result)
    assert not is_better({"epoch": 2, "val_accuracy": 1.0, "val_loss": 0.70}, result)
    assert not is_better({"epoch": 2, "val_accuracy": 0.9, "val_loss": 0.01}, result)


def test_a_run_whose_validation_accuracy_is_level_keeps_its_later_more_confident_epoch(tiny_bert, tmp_path):
    from loralab.config import TrainConfig
    from loralab.data.dataset import DataSplits, LabelledTexts
    from loralab.evaluation.metrics import validation_scores
    from loralab.methods import get_method
    from loralab.training.fit import fit_method

    train = LabelledTexts(["good great fine"] * 8 + ["bad awful poor"] * 8, ["pos"] * 8 + ["neg"] * 8)
    validation = LabelledTexts(["good great", "bad awful"], ["pos", "neg"])
    splits = DataSplits(train, validation, validation, ["neg", "pos"], source="hand-made")
    config = TrainConfig(method="head", model=str(tiny_bert), epochs=6, lr=5e-2, seed=3, threads=1)
    fitted = fit_method(get_method("head"), splits, config, validation_scores=validation_scores)
    history, kept = fitted.history, fitted.best_epoch
    best = max(row["val_accuracy"] for row in history)
    level = [row for row in history if row["val_accuracy"] == best]
    assert len(level) > 1, history  # the case this test is about
    assert history[kept - 1]["val_loss"] == min(row["val_loss"] for row in level)
