"""Cost columns: one definition of trainable and share for every method; cached work is
reported as cached, with the first run's encoding cost; console tables are not cut."""

import json

import pytest
from typer.testing import CliRunner

from loralab.cli import app
from loralab.config import TrainConfig
from loralab.reports.costs import encoder_parameters, run_cost
from loralab.runs.train import train_run


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LORALAB_CACHE_DIR", str(tmp_path / "cache"))


def test_linear_heads_on_the_same_encoder_get_the_same_kind_of_share(
    cache, tiny_bert, synthetic_dir, tmp_path
):
    common = dict(model=str(tiny_bert), epochs=1, lr=5e-3)
    head = train_run(synthetic_dir, TrainConfig(method="head", **common), tmp_path / "head", progress=False)
    embed = train_run(
        synthetic_dir, TrainConfig(method="embed-logreg", **common), tmp_path / "e", progress=False
    )
    encoder = encoder_parameters(str(tiny_bert))
    assert encoder == head.manifest["total_parameters"] - head.manifest["trainable_parameters"]
    head_cost, embed_cost = run_cost(head.folder), run_cost(embed.folder)
    assert embed_cost.predicting_parameters == encoder + embed.manifest["trainable_parameters"]
    learned = embed.manifest["trainable_parameters"]
    assert embed_cost.share == pytest.approx(learned / (encoder + learned))
    assert 0 < embed_cost.share < 0.01 and 0 < head_cost.share < 0.01


def test_tfidf_coefficients_are_shown_as_such(synthetic_dir, tmp_path):
    run = train_run(synthetic_dir, TrainConfig(method="tfidf-logreg"), tmp_path / "t", progress=False)
    cost = run_cost(run.folder)
    assert cost.share is None and cost.kind == "tfidf"
    assert cost.cells()["trainable"] == f"{run.manifest['trainable_parameters']:,} coefficients"


def test_cached_features_are_reported_as_cached_with_the_first_encoding_cost(
    cache, tiny_bert, synthetic_dir, tmp_path
):
    config = TrainConfig(method="embed-logreg", model=str(tiny_bert))
    first = train_run(synthetic_dir, config, tmp_path / "first", progress=False)
    second = train_run(synthetic_dir, config, tmp_path / "second", progress=False)
    assert first.manifest["features"]["source"] == "encoder"
    assert second.manifest["features"]["source"] == "cache"
    encoding = second.manifest["features"]["first_encoding_seconds"]
    assert 0 < encoding <= first.manifest["features"]["seconds"]
    fresh, cached = run_cost(first.folder).cells(), run_cost(second.folder).cells()
    assert "cached" not in fresh["train"] and fresh["infer"] != "– (cached)"
    assert cached["train"].endswith(f"(cached; first encoding {encoding:,.1f})")
    assert cached["infer"] == "– (cached)"


def test_compare_table_outside_a_terminal_is_not_cut(synthetic_dir, tmp_path):
    out = tmp_path / "cmp"
    args = ["compare", str(synthetic_dir), "--methods", "tfidf-logreg,tfidf-nb", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert "tfidf-logreg" in result.output and "…" not in result.output
    for row in results["summary"]:
        assert f"{row['trainable_parameters']:,} coefficients" in result.output
