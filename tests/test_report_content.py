"""The report explains the model: overview, per-class results, mistakes, calibration, axes."""

import re

import numpy as np
import pandas as pd
import pytest

from loralab.config import TrainConfig
from loralab.reports.calibration import reliability
from loralab.reports.plots import _spaced, curve_positions
from loralab.reports.report import write_report
from loralab.runs.compare import compare
from loralab.runs.train import train_run


@pytest.fixture(scope="module")
def compared(tmp_path_factory, tiny_bert):
    from tests.conftest import synthetic_frame

    data = tmp_path_factory.mktemp("data")
    synthetic_frame(160, 1).to_csv(data / "train.csv", index=False)
    synthetic_frame(40, 2).to_csv(data / "validation.csv", index=False)
    synthetic_frame(40, 3).to_csv(data / "test.csv", index=False)
    out = tmp_path_factory.mktemp("cmp")
    config = TrainConfig(model=str(tiny_bert), epochs=2, lr=5e-3, batch_size=32)
    compare(str(data), out, methods=["tfidf-logreg", "head"], base_config=config, progress=False)
    write_report(out)
    return out


def test_overview_sits_above_the_results(compared):
    page = (compared / "report.html").read_text()
    top = page[: page.index("<h2>Results</h2>")]
    for fact in ("Hardware", "Model", "Versions", "Wall time"):
        assert f"<dt>{fact}</dt>" in top
    assert "torch 2." in top and "cores" in top


def test_every_run_has_per_class_results_examples_and_calibration(compared):
    page = (compared / "report.html").read_text()
    markdown = (compared / "report.md").read_text()
    for run in ("tfidf-logreg", "head-seed42"):
        predictions = pd.read_csv(compared / run / "predictions" / "test.csv")
        correct = (predictions["label"] == predictions["predicted"]).to_numpy()
        ece = reliability(predictions["probability"].to_numpy(), correct).ece
        section = page[page.index(f"<h3>{run}</h3>") :]
        assert f"Expected calibration error on test: {ece:.3f}" in section
        assert f'alt="reliability diagram of {run}"' in section
        assert "One example from each cell of the confusion matrix" in section
        cells = predictions.groupby(["label", "predicted"]).size()
        for (true, predicted), count in cells.items():
            assert re.search(rf"<td>{true}</td><td>{predicted}</td><td>{count}</td>", section), (
                true,
                predicted,
            )
        if (~correct).any():
            assert "most confident mistakes" in section
        assert f"<summary>Configuration of {run}</summary>" in section
        assert f"reliability_{run}.png" in markdown
    # Configurations are folded away, not spread over the page.
    assert page.count("<details>") == 2 and page.count("<pre>") == page.count("</summary><pre>") == 2


def test_confident_mistakes_are_sorted_by_confidence(compared):
    page = (compared / "report.html").read_text()
    section = page[page.index("<h3>tfidf-logreg</h3>") : page.index("<h3>head-seed42</h3>")]
    if "most confident mistakes" not in section:
        pytest.skip("the baseline made no mistake on this data")
    table = section[section.index("most confident mistakes") :].split("</table>")[0]
    shown = [float(p) for p in re.findall(r"<td>(0\.\d{4}|1\.0000)</td><td class=\"text\">", table)]
    assert shown == sorted(shown, reverse=True) and shown


def test_single_run_report_names_the_positive_class_and_plots_validation_loss(
    synthetic_dir, tiny_bert, tmp_path
):
    config = TrainConfig(model=str(tiny_bert), method="head", epochs=3, lr=5e-3)
    run = train_run(synthetic_dir, config, tmp_path / "r", progress=False)
    page = write_report(run.folder)[0].read_text()
    assert "<th>precision (positive)</th>" in page
    assert "positive class &#x27;positive&#x27;" in page
    assert 'alt="training and validation loss, and validation accuracy, per epoch"' in page


def test_single_run_report_shows_macro_f1_once_for_three_classes(tmp_path):
    from tests.conftest import synthetic_frame

    def results_header(classes: int) -> str:
        data = tmp_path / f"{classes}.csv"
        synthetic_frame(90, 1, classes=classes).to_csv(data, index=False)
        config = TrainConfig(method="tfidf-logreg")
        run = train_run(str(data), config, tmp_path / f"r{classes}", progress=False)
        page = write_report(run.folder)[0].read_text()
        results = page[page.index("<h2>Results</h2>") :]
        return results[: results.index("</tr>")]

    three = results_header(3)
    # with three classes the headline F1 is the macro average: one column, not two equal ones
    assert "<th>F1 (macro)</th>" in three and "macro-F1" not in three
    two = results_header(2)
    assert "<th>F1 (positive)</th>" in two and "<th>macro-F1</th>" in two  # two different figures


def test_reliability_and_expected_calibration_error():
    confidence = np.array([0.55, 0.58, 0.95, 0.97, 1.0])
    correct = np.array([1, 0, 1, 1, 0])
    bins = reliability(confidence, correct, bins=10)
    assert bins.counts.tolist() == [0, 0, 0, 0, 0, 2, 0, 0, 0, 3]
    expected = (2 * abs(0.5 - 0.565) + 3 * abs(2 / 3 - (0.95 + 0.97 + 1.0) / 3)) / 5
    assert bins.ece == pytest.approx(expected)
    perfect = reliability(np.full(10, 0.7), np.array([1] * 7 + [0] * 3))
    assert perfect.ece == pytest.approx(0.0, abs=1e-12)


def test_learning_curve_draws_all_at_its_real_size_and_ticks_do_not_collide():
    summary = [{"method": "m", "train_size": s, "test_accuracy": 0.5} for s in ("8", "64", "256", "all")]
    assert curve_positions(summary, 290.5) == {"8": 8.0, "64": 64.0, "256": 256.0, "all": 290.5}
    # 256 and 290.5 are 0.05 decades apart: only "all" keeps its label.
    assert _spaced([8.0, 64.0, 256.0, 290.5], keep=290.5) == [8.0, 64.0, 290.5]
    assert _spaced([8.0, 16.0, 32.0], keep=None) == [8.0, 16.0, 32.0]


def test_results_note_explains_cached_only_when_a_cell_shows_it(compared, monkeypatch):
    import loralab.reports.report as report_module

    def results(markdown):
        start = markdown.index("## Results")
        return markdown[start : markdown.index("## ", start + 3)]

    fresh = results("\n".join(report_module.compare_report(compared).md))
    # no run read its features from the cache: nothing in the table says "cached", so neither does the note
    assert "cached" not in fresh.lower()
    summary_costs = report_module.summary_costs

    def all_cached(folder, runs):
        costs = summary_costs(folder, runs)
        for cost in costs.values():
            cost.cached = True
        return costs

    monkeypatch.setattr(report_module, "summary_costs", all_cached)
    cached = results("\n".join(report_module.compare_report(compared).md))
    assert "– (cached)" in cached and "(cached): features read from the feature cache" in cached
