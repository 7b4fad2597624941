"""Pooling that matches the model: sentence-transformers folders say how they pool."""

import json
import shutil

import numpy as np
import pytest
import torch

from loralab.config import TrainConfig
from loralab.errors import LoralabError
from loralab.models.pooling import choose_pooling, pool
from loralab.runs.train import load_run, train_run


def sentence_transformer_folder(base, folder, mode="pooling_mode_mean_tokens", pooling_dir="1_Pooling"):
    """A copy of a tiny encoder folder with the sentence-transformers files that declare pooling."""
    shutil.copytree(base, folder)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": pooling_dir, "type": "sentence_transformers.models.Pooling"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / pooling_dir).mkdir()
    flags = {
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": False,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }
    flags[mode] = True
    (folder / pooling_dir / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, **flags}))
    return folder


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("pooling_mode_mean_tokens", "mean"),
        ("pooling_mode_max_tokens", "max"),
        ("pooling_mode_cls_token", "cls"),
    ],
)
def test_auto_reads_the_sentence_transformers_pooling(tiny_bert, tmp_path, mode, expected):
    folder = sentence_transformer_folder(tiny_bert, tmp_path / "st", mode, pooling_dir="2_Pool")
    choice = choose_pooling(str(folder), "auto")
    assert choice.pooling == expected
    assert choice.sentence_transformer
    assert "2_Pool/config.json" in choice.source


def test_auto_falls_back_to_cls_and_says_so(tiny_bert):
    choice = choose_pooling(str(tiny_bert), "auto")
    assert choice.pooling == "cls"
    assert not choice.sentence_transformer
    assert "falls back to [CLS]" in choice.source


def test_explicit_pooling_wins_over_the_folder(tiny_bert, tmp_path):
    folder = sentence_transformer_folder(tiny_bert, tmp_path / "st")
    assert choose_pooling(str(folder), "cls").pooling == "cls"


def test_a_pooling_loralab_cannot_compute_is_named(tiny_bert, tmp_path):
    folder = sentence_transformer_folder(tiny_bert, tmp_path / "st", "pooling_mode_mean_sqrt_len_tokens")
    with pytest.raises(LoralabError, match="pooling_mode_mean_sqrt_len_tokens.*--pooling cls, mean or max"):
        choose_pooling(str(folder), "auto")


def test_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, -4.0], [100.0, 100.0]]])  # (1, 3, 2); the last is padding
    mask = torch.tensor([[1, 1, 0]])
    assert pool(hidden, mask, "cls").tolist() == [[1.0, 2.0]]
    assert pool(hidden, mask, "mean").tolist() == [[2.0, -1.0]]
    assert pool(hidden, mask, "max").tolist() == [[3.0, 2.0]]


def test_embedding_run_records_and_keeps_the_resolved_pooling(
    tiny_bert, synthetic_dir, tmp_path, monkeypatch
):
    from loralab.methods.features import cached_features

    monkeypatch.setenv("LORALAB_CACHE_DIR", str(tmp_path / "cache"))
    folder = sentence_transformer_folder(tiny_bert, tmp_path / "st")
    out = tmp_path / "run"
    result = train_run(
        synthetic_dir, TrainConfig(method="embed-logreg", model=str(folder)), out, progress=False
    )
    features = result.manifest["features"]
    assert features["pooling"] == "mean"
    assert "1_Pooling/config.json" in features["pooling_source"]
    assert json.loads((out / "config.json").read_text())["pooling"] == "auto"  # what the user asked
    assert json.loads((out / "model" / "loralab.json").read_text())["config"]["pooling"] == "mean"
    # the features it trained on are the mean-pooled ones, not the [CLS] ones
    texts = result.splits.train.texts
    mean = cached_features(str(folder), texts, "mean", 128)
    cls = cached_features(str(folder), texts, "cls", 128)
    assert not np.allclose(mean, cls)
    np.testing.assert_allclose(cached_features(str(folder), texts, "auto", 128), mean)
    np.testing.assert_allclose(result.classifier.features(texts), mean)
    reloaded = load_run(out)
    sample = result.splits.test.texts[:8]
    np.testing.assert_allclose(
        reloaded.predict_proba(sample), result.classifier.predict_proba(sample), atol=1e-5
    )


def test_feature_cache_key_depends_on_the_pooling():
    from loralab.methods.features import feature_key

    keys = {feature_key("m", pooling, 128, ["a text"]) for pooling in ("cls", "mean", "max")}
    assert len(keys) == 3


def test_cli_prints_the_pooling_and_passes_the_flag(tiny_bert, synthetic_dir, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from loralab.cli import app

    monkeypatch.setenv("LORALAB_CACHE_DIR", str(tmp_path / "cache"))
    folder = sentence_transformer_folder(tiny_bert, tmp_path / "st")
    args = ["train", str(synthetic_dir), "--method", "embed-ridge", "--model", str(folder), "-o"]
    result = CliRunner().invoke(app, [*args, str(tmp_path / "auto")])
    assert result.exit_code == 0, result.output
    assert "Pooling: mean pooling, from the model's 1_Pooling/config.json." in result.output
    result = CliRunner().invoke(app, [*args, str(tmp_path / "max"), "--pooling", "max"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "max" / "manifest.json").read_text())["features"]["pooling"] == "max"
    result = CliRunner().invoke(app, [*args, str(tmp_path / "bad"), "--pooling", "median"])
    assert result.exit_code == 2
    assert "--pooling must be one of auto, cls, mean, max; got 'median'." in result.output


def test_head_tuning_reads_the_pooled_sentence_of_a_sentence_transformer(tiny_bert, synthetic_dir, tmp_path):
    from loralab.data import load_data
    from loralab.models.pooling import PooledEncoder

    folder = sentence_transformer_folder(tiny_bert, tmp_path / "st")
    splits = load_data(synthetic_dir)
    pooled = train_run(
        splits, TrainConfig(method="head", model=str(folder), epochs=2), tmp_path / "pooled", progress=False
    )
    plain = train_run(
        splits, TrainConfig(method="head", model=str(tiny_bert), epochs=2), tmp_path / "plain", progress=False
    )
    assert pooled.manifest["pooling"]["pooling"] == "mean" and "pooling" not in plain.manifest
    # the same head modules train, whatever they read
    assert pooled.manifest["trainable_parameters"] == plain.manifest["trainable_parameters"]
    assert pooled.manifest["head_modules"] == plain.manifest["head_modules"] == ["classifier"]
    reloaded = load_run(tmp_path / "pooled")
    assert isinstance(reloaded.model.bert, PooledEncoder)
    assert not isinstance(load_run(tmp_path / "plain").model.bert, PooledEncoder)
    # the logits are the classifier applied to the mean of the token states
    from loralab.data.batching import collate, encode

    texts = ["the film was good", "a dull and boring plot here"]
    batch = collate(encode(reloaded.tokenizer, texts, 128), 0)
    with torch.inference_mode():
        hidden = reloaded.model.bert.encoder(**batch).last_hidden_state
        expected = reloaded.model.classifier(pool(hidden, batch["attention_mask"], "mean"))
    np.testing.assert_allclose(reloaded.predict_logits(texts), expected.numpy(), atol=1e-5)


def test_head_counts_of_plain_encoders_are_unchanged(tiny_models, synthetic_dir, tmp_path):
    from loralab.methods import get_method

    config = TrainConfig(method="head", model=str(tiny_models["distilbert"]))
    model = get_method("head").build(["negative", "positive"], config).model
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    # pre_classifier 32×32 + 32 and classifier 32×2 + 2, as seed 002 counts them
    assert trainable == 32 * 32 + 32 + 32 * 2 + 2
    assert type(model.distilbert).__name__ == "DistilBertModel"


@pytest.mark.parametrize("method", ["head", "untrained"])
def test_a_pooled_head_run_is_not_exported_as_a_plain_model(method, tiny_bert, synthetic_dir, tmp_path):
    from typer.testing import CliRunner

    from loralab.cli import app

    folder = sentence_transformer_folder(tiny_bert, tmp_path / "st")
    run = tmp_path / "run"
    train_run(synthetic_dir, TrainConfig(method=method, model=str(folder), epochs=1), run, progress=False)
    assert json.loads((run / "manifest.json").read_text())["pooling"]["pooling"] == "mean"
    result = CliRunner().invoke(app, ["export", str(run), str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "its head reads mean-pooled sentence vectors" in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()
