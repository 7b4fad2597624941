"""Model cards: every run and export carries a README.md whose metadata matches metrics.json."""

import json

import pytest
from typer.testing import CliRunner

from loralab.cli import app
from loralab.config import DEFAULT_MODEL, TrainConfig
from loralab.errors import RunError
from loralab.runs.card import hub_model_name, model_card, read_card_metadata
from loralab.runs.export import export_run
from loralab.runs.train import train_run


def metric_values(meta: dict) -> dict[tuple[str, str], float]:
    """(split, metric name) → value, from a card's model-index."""
    [entry] = meta["model-index"]
    return {
        (result["dataset"]["split"], metric["name"]): metric["value"]
        for result in entry["results"]
        for metric in result["metrics"]
    }


def test_lora_run_card_metadata_matches_metrics(tiny_bert, synthetic_dir, tmp_path):
    config = TrainConfig(method="lora", model=str(tiny_bert), epochs=1, lr=5e-3, lora_rank=2)
    run = train_run(synthetic_dir, config, tmp_path / "rt-lora", progress=False)
    card = (run.folder / "README.md").read_text()
    assert (run.folder / "model" / "README.md").read_text() == card  # PEFT's template is replaced
    meta = read_card_metadata(card)
    metrics = json.loads((run.folder / "metrics.json").read_text())
    # The base model is a local folder here: no local path may leak into the metadata.
    assert "base_model" not in meta and str(tmp_path) not in card
    assert meta["library_name"] == "peft" and meta["pipeline_tag"] == "text-classification"
    values = metric_values(meta)
    for split in ("validation", "test"):
        assert values[(split, f"{split} accuracy")] == round(metrics[split]["accuracy"], 4)
        assert values[(split, f"{split} macro F1")] == round(metrics[split]["macro_f1"], 4)
        assert values[(split, f"{split} F1 (positive class 'positive')")] == round(metrics[split]["f1"], 4)
    for section in (
        "## Data",
        "## Method and settings",
        "## Results",
        "## Intended use",
        "## Limitations",
        "## How to load",
    ):
        assert section in card, section
    assert "PeftModel.from_pretrained" in card and "`negative`, `positive`" in card
    assert "lora_rank | 2" in card  # a setting that differs from the defaults
    # What the model reads of a long text, and how to give PEFT alone the same input.
    assert "- Texts longer than 64 tokens are cut to the first 64 tokens; the rest is not read." in card
    assert "tokenize with `truncation=True, max_length=64`" in card


@pytest.mark.parametrize(
    ("settings", "reads", "alone"),
    [
        (dict(long_text="chunks", stride=8), "are read as windows of 32 tokens overlapping by 8, mean of",
         "which the model alone does not do by itself"),
        (dict(truncation="tail"), "are cut to the last 32 tokens",
         'tokenize with `truncation=True, max_length=32` after `tokenizer.truncation_side = "left"`'),
    ],
)  # fmt: skip
def test_the_card_says_how_the_run_reads_long_texts(
    settings, reads, alone, tiny_bert, synthetic_dir, tmp_path
):
    config = TrainConfig(
        method="lora", model=str(tiny_bert), epochs=1, lora_rank=2, max_length=32, **settings
    )
    run = train_run(synthetic_dir, config, tmp_path / "run", progress=False)
    card = " ".join((run.folder / "README.md").read_text().split())
    assert f"- Texts longer than 32 tokens {reads}" in card and alone in card
    assert "truncated" not in card


def test_embedded_model_is_named_by_its_hub_name():
    assert hub_model_name("minilm") == DEFAULT_MODEL
    assert hub_model_name(DEFAULT_MODEL) == DEFAULT_MODEL
    assert hub_model_name("distilbert-base-uncased") == "distilbert-base-uncased"
    assert hub_model_name("/opt/models/bert") is None


def test_card_command_prints_the_card_and_exports_carry_it(synthetic_dir, tmp_path):
    run = train_run(synthetic_dir, TrainConfig(method="tfidf-logreg"), tmp_path / "tfidf", progress=False)
    result = CliRunner().invoke(app, ["card", str(run.folder)])
    assert result.exit_code == 0, result.output
    meta = read_card_metadata(result.output)
    assert meta["library_name"] == "sklearn" and "base_model" not in meta
    assert result.output == (run.folder / "README.md").read_text()
    export_run(run.folder, tmp_path / "out")
    exported = (tmp_path / "out" / "README.md").read_text()
    assert "get_untrusted_types" in exported and "out/pipeline.skops" in exported
    assert metric_values(read_card_metadata(exported)) == metric_values(meta)


def test_card_of_a_folder_that_is_not_a_run_is_one_clear_error(tmp_path):
    with pytest.raises(RunError, match="not a loralab run folder"):
        model_card(tmp_path)
    result = CliRunner().invoke(app, ["card", str(tmp_path)])
    assert result.exit_code == 2 and "not a loralab run folder" in result.output


def test_transformers_export_card_says_how_to_load_the_export(tiny_bert, synthetic_dir, tmp_path):
    config = TrainConfig(method="head", model=str(tiny_bert), epochs=1, lr=5e-3)
    run = train_run(synthetic_dir, config, tmp_path / "run", progress=False)
    export_run(run.folder, tmp_path / "merged")
    card = (tmp_path / "merged" / "README.md").read_text()
    assert read_card_metadata(card)["library_name"] == "transformers"
    assert 'pipeline("text-classification", model="merged")' in card
