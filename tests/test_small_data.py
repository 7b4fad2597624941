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
