"""A run saved from the Python API is an ordinary run folder: the CLI reads it like its own."""

import json

import pytest
from typer.testing import CliRunner

from loralab.api import TextClassifier
from loralab.cli import app
from loralab.runs.train import load_run
from tests.conftest import synthetic_frame


@pytest.mark.parametrize("method", ["tfidf-logreg", "lora"])
def test_saved_api_run_has_metrics_predictions_and_a_report(method, tiny_bert, tmp_path):
    frame = synthetic_frame(120, 0)
    texts, labels = frame["text"].tolist(), frame["label"].tolist()
    clf = TextClassifier(method=method, model=str(tiny_bert), epochs=2, lr=5e-3, seed=3)
    clf.fit(texts, labels)
    folder = clf.save(tmp_path / "api-run")

    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["method"] == method
    assert manifest["reload_max_difference"] <= 1e-5
    assert manifest["trainable_parameters"] > 0 and "resolved" in manifest
    metrics = json.loads((folder / "metrics.json").read_text())
    held_out = clf.splits_.validation
    assert list(metrics) == ["validation"] and metrics["validation"]["n"] == len(held_out) > 0
    predictions = (folder / "predictions" / "validation.csv").read_text().splitlines()
    assert len(predictions) == len(held_out) + 1
    if method == "lora":
        history = (folder / "history.csv").read_text().splitlines()
        assert len(history) == 1 + 2  # header and one row per epoch

    report = CliRunner().invoke(app, ["report", str(folder)])
    assert report.exit_code == 0, report.output
    assert "validation" in (folder / "report.md").read_text()
    reloaded = load_run(folder)
    assert reloaded.predict(texts[:20]) == clf.predict(texts[:20]).tolist()
