"""Cross-fitted validation: an epoch chosen on some texts is scored on the others."""

import numpy as np
import pytest

from loralab.training.selection import cross_fitted_accuracy, cross_fitted_balanced_accuracy, halves


def test_halves_split_every_class_evenly_and_depend_on_the_seed():
    labels = np.array([0] * 7 + [1] * 5 + [2] * 3)
    fold = halves(labels, seed=3)
    for label in (0, 1, 2):
        sizes = np.bincount(fold[labels == label], minlength=2)
        assert abs(sizes[0] - sizes[1]) <= 1
    assert abs(int(fold.sum()) - (len(labels) - int(fold.sum()))) <= 1  # the odd texts alternate
    assert not np.array_equal(halves(labels, seed=4), fold) or not np.array_equal(halves(labels, 5), fold)
    assert np.array_equal(halves(labels, seed=3), fold)


def test_each_half_is_scored_by_the_epoch_the_other_half_chose():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 30)
    correct = rng.random((6, 30)) < 0.6
    fold = halves(labels, seed=7)
    by_hand = 0
    for half in (0, 1):
        accuracy = correct[:, fold != half].mean(axis=1)
        epoch = int(np.flatnonzero(accuracy == accuracy.max())[0])  # the first best, as the loop keeps
        by_hand += correct[epoch, fold == half].sum()
    assert cross_fitted_accuracy(correct, labels, seed=7) == pytest.approx(by_hand / 30)


def test_choosing_among_noisy_epochs_is_optimistic_and_cross_fitting_is_not():
    # Every epoch guesses at random (true accuracy 0.5): the best of 50 epochs on 32 texts looks
    # far better than chance; scored on texts that did not choose it, it is chance again.
    rng = np.random.default_rng(1)
    best, crossfit = [], []
    for trial in range(300):
        correct = rng.random((50, 32)) < 0.5
        labels = np.arange(32) % 2
        best.append(correct.mean(axis=1).max())
        crossfit.append(cross_fitted_accuracy(correct, labels, seed=trial))
    assert np.mean(best) > 0.65
    assert np.mean(crossfit) == pytest.approx(0.5, abs=0.015)


def test_balanced_accuracy_scores_the_same_choice_class_by_class():
    rng = np.random.default_rng(2)
    labels = np.array([0] * 24 + [1] * 6)
    correct = rng.random((5, 30)) < np.where(labels == 0, 0.9, 0.3)
    fold = halves(labels, seed=11)
    scored = np.zeros(30, dtype=bool)
    for half in (0, 1):
        epoch = int(np.argmax(correct[:, fold != half].mean(axis=1)))  # chosen by accuracy
        scored[fold == half] = correct[epoch, fold == half]
    by_hand = (scored[labels == 0].mean() + scored[labels == 1].mean()) / 2
    assert cross_fitted_balanced_accuracy(correct, labels, seed=11) == pytest.approx(by_hand)
    assert cross_fitted_accuracy(correct, labels, seed=11) == pytest.approx(scored.mean())
    assert cross_fitted_balanced_accuracy(np.array([[True], [False]]), np.array([0]), seed=0) is None


def test_one_epoch_chooses_nothing_and_one_text_measures_nothing():
    correct = np.array([[True, False, True, True]])
    assert cross_fitted_accuracy(correct, np.array([0, 1, 0, 1]), seed=0) == 0.75
    assert cross_fitted_accuracy(np.array([[True], [False]]), np.array([0]), seed=0) is None


def test_a_training_run_records_its_cross_fitted_validation_accuracy(tiny_bert, synthetic_dir, tmp_path):
    from loralab.config import TrainConfig
    from loralab.data import load_data
    from loralab.runs.train import train_run

    splits = load_data(synthetic_dir)
    run = train_run(
        splits, TrainConfig(method="head", model=str(tiny_bert), epochs=4), tmp_path / "r", progress=False
    )
    crossfit = run.manifest["validation_accuracy_crossfit"]
    n = len(splits.validation)
    assert crossfit is not None and 0.0 <= crossfit <= 1.0
    assert round(crossfit * n) == pytest.approx(crossfit * n)  # a count of validation texts
    # Never above the best epoch's accuracy on the whole split, which chose with hindsight.
    import pandas as pd

    assert crossfit <= pd.read_csv(tmp_path / "r" / "history.csv")["val_accuracy"].max() + 1e-9
    # The synthetic validation split has equal classes, where balanced accuracy is accuracy.
    assert run.manifest["validation_balanced_accuracy_crossfit"] == pytest.approx(crossfit)
    baseline = train_run(splits, TrainConfig(method="tfidf-logreg"), tmp_path / "t", progress=False)
    assert baseline.manifest.get("validation_accuracy_crossfit") is None


def test_compare_shows_and_judges_by_the_cross_fitted_figure(tiny_bert, synthetic_dir, tmp_path):
    import json

    from typer.testing import CliRunner

    from loralab.cli import app
    from loralab.runs.recommend import CROSSFIT_NOTE

    out = tmp_path / "cmp"
    args = ["compare", str(synthetic_dir), "--methods", "tfidf-logreg,head", "--model", str(tiny_bert)]
    result = CliRunner().invoke(app, [*args, "--epochs", "3", "-o", str(out)])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "results.json").read_text())
    head = next(r for r in saved["summary"] if r["method"] == "head")
    tfidf = next(r for r in saved["summary"] if r["method"] == "tfidf-logreg")
    run = next(r for r in saved["runs"] if r["method"] == "head")
    assert head["validation_crossfit"] and not tfidf["validation_crossfit"]
    assert head["validation_accuracy_judged"] == pytest.approx(run["validation_accuracy_crossfit"])
    assert tfidf["validation_accuracy_judged"] == pytest.approx(tfidf["validation_accuracy"])
    text = " ".join(result.output.split())
    assert f"{head['validation_accuracy_judged']:.4f}†" in text and CROSSFIT_NOTE in text
    chosen = saved["recommendation"]
    accuracy = chosen["best_validation_accuracy"]
    assert accuracy == pytest.approx(max(head["validation_accuracy_judged"], tfidf["validation_accuracy"]))
    assert CliRunner().invoke(app, ["report", str(out)]).exit_code == 0
    assert CROSSFIT_NOTE in (out / "report.md").read_text()
