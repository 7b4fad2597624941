"""Truncation strategies and chunked texts in runs: recorded, used identically by training,
prediction, reload, export, ONNX and serving."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from loralab.config import TrainConfig
from loralab.data.long_text import TextInput, select_tokens, window_ids
from loralab.errors import LoralabError
from loralab.runs.train import load_run, train_run
from tests.conftest import NEGATIVE, NEUTRAL, POSITIVE

MAX_LENGTH = 12


def long_frame(n: int, seed: int, at: str = "end") -> pd.DataFrame:
    """Texts of 20-40 neutral words whose class is told by one sentiment word at the ``end``
    (or the ``start``): only the tokens a strategy keeps decide what a model can learn."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = ("negative", "positive")[i % 2]
        word = rng.choice(POSITIVE if label == "positive" else NEGATIVE)
        filler = [rng.choice(NEUTRAL) for _ in range(rng.randint(20, 40))]
        words = filler + [word] if at == "end" else [word] + filler
        rows.append({"text": " ".join(words), "label": label})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def long_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("long")
    for split, (n, seed) in {"train": (160, 1), "validation": (40, 2), "test": (40, 3)}.items():
        long_frame(n, seed).to_csv(folder / f"{split}.csv", index=False)
    return folder


def _config(tiny_bert, **settings) -> TrainConfig:
    common = dict(model=str(tiny_bert), max_length=MAX_LENGTH, epochs=3, lr=5e-3, lora_rank=4, batch_size=16)
    return TrainConfig(**{**common, **settings})


def _logits_one_by_one(classifier, sequences: list[list[int]]) -> np.ndarray:
    """The model on each token sequence alone: no batching, no padding, no sorting."""
    with torch.inference_mode():
        return np.stack(
            [classifier.model(input_ids=torch.tensor([ids])).logits[0].numpy() for ids in sequences]
        )


def test_the_kept_tokens_decide_what_a_run_learns(tiny_bert, long_dir, tmp_path):
    learns = dict(method="full", lr=3e-3, epochs=8)  # what the random tiny model needs
    head = train_run(long_dir, _config(tiny_bert, **learns), tmp_path / "head", progress=False)
    tail = train_run(
        long_dir, _config(tiny_bert, truncation="tail", **learns), tmp_path / "tail", progress=False
    )
    assert tail.metrics["test"]["accuracy"] >= 0.9
    assert head.metrics["test"]["accuracy"] <= 0.75  # the sentiment word is never seen
    saved = json.loads((tail.folder / "config.json").read_text())
    assert (saved["truncation"], saved["long_text"]) == ("tail", "truncate")
    assert tail.manifest["text_input"] == f"the last {MAX_LENGTH} tokens"


def test_head_and_tail_prediction_reads_the_hand_cut_tokens(tiny_bert, long_dir, tmp_path):
    config = _config(tiny_bert, method="lora", truncation="head+tail", head_share=0.5, epochs=1)
    run = train_run(long_dir, config, tmp_path / "run", progress=False)
    classifier = load_run(run.folder)
    texts = long_frame(6, 9)["text"].tolist()
    cut = [select_tokens(classifier.tokenizer(t)["input_ids"], MAX_LENGTH, "head+tail", 0.5) for t in texts]
    assert all(len(ids) == MAX_LENGTH for ids in cut)
    expected = torch.from_numpy(_logits_one_by_one(classifier, cut)).softmax(-1).numpy()
    np.testing.assert_allclose(classifier.predict_proba(texts, batch_size=4), expected, atol=1e-5)


@pytest.mark.parametrize("aggregation", ["mean", "max"])
def test_chunked_prediction_pools_every_window_like_a_hand_computation(
    aggregation, tiny_bert, long_dir, tmp_path
):
    config = _config(tiny_bert, method="lora", long_text="chunks", stride=3, chunk_aggregation=aggregation)
    run = train_run(long_dir, config.replace(epochs=1), tmp_path / "run", progress=False)
    classifier = load_run(run.folder)
    texts = [*long_frame(5, 9)["text"], "good", "bad film"]  # long texts and ones that fit
    expected = []
    for text in texts:
        ids = classifier.tokenizer(text)["input_ids"]
        windows = [ids] if len(ids) <= MAX_LENGTH else []
        if not windows:  # windows of 10 content tokens that start every 7, the last one at the end
            content = ids[1:-1]
            starts = sorted({*range(0, len(content) - 10, 7), len(content) - 10})
            windows = [[ids[0], *content[s : s + 10], ids[-1]] for s in starts]
        assert windows == window_ids(ids, MAX_LENGTH, 3)
        logits = _logits_one_by_one(classifier, windows)
        expected.append(logits.mean(0) if aggregation == "mean" else logits.max(0))
    expected = torch.from_numpy(np.stack(expected)).softmax(-1).numpy()
    np.testing.assert_allclose(classifier.predict_proba(texts, batch_size=3), expected, atol=1e-5)


@pytest.mark.parametrize(
    "settings",
    [
        {"method": "lora", "truncation": "tail"},
        {"method": "lora", "truncation": "head+tail"},
        {"method": "full", "long_text": "chunks", "stride": 4},
        {"method": "head", "long_text": "chunks", "truncation": "tail"},
    ],
    ids=["tail", "head+tail", "chunks", "head-chunks"],
)
def test_the_strategy_round_trips_through_save_load_export_and_serve(settings, tiny_bert, long_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from loralab.models.inference import predict_logits, softmax
    from loralab.runs.export import export_run
    from loralab.serving.predictor import Predictor

    run = train_run(long_dir, _config(tiny_bert, epochs=1, **settings), tmp_path / "run", progress=False)
    texts = long_frame(8, 11)["text"].tolist() + long_frame(4, 12, at="start")["text"].tolist()
    classifier = load_run(run.folder)
    text_input = TextInput.of(classifier.config)
    assert text_input == TextInput.of(run.classifier.config)
    expected = classifier.predict_proba(texts)
    np.testing.assert_allclose(run.classifier.predict_proba(texts), expected, atol=1e-5)

    export_run(run.folder, tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "config.json").read_text())["loralab_text_input"]
    assert TextInput.from_dict(saved) == text_input
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out").eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out")
    got = softmax(predict_logits(plain, tokenizer, texts, text_input))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    answers = pipeline("text-classification", model=plain, tokenizer=tokenizer, top_k=None)(
        texts, truncation=True
    )
    plain_probs = np.array(
        [[{a["label"]: a["score"] for a in row}[y] for y in classifier.labels] for row in answers]
    )
    if saved["plain_transformers"]:  # the exported tokenizer alone cuts like the run
        np.testing.assert_allclose(plain_probs, expected, atol=1e-5)
    else:
        assert "cannot do this by itself" in saved["note"]
        assert not np.allclose(plain_probs, expected, atol=1e-6)  # the texts run past one window
        from loralab.runs.predict import load_for_prediction  # ONNX cuts and pools like the run

        onnx = load_for_prediction(run.folder, backend="onnx")
        np.testing.assert_allclose(onnx.predict_proba(texts, batch_size=5), expected, atol=1e-4)

    predictor = Predictor([f"long={run.folder}"])
    served = np.array(
        [[r["probabilities"][y] for y in classifier.labels] for r in predictor.classify("long", texts)]
    )
    np.testing.assert_allclose(served, expected, atol=1e-5)
    assert predictor.describe()[0]["text_input"] == text_input.describe()


def test_chunks_can_train_on_every_window(tiny_bert, long_dir, tmp_path, monkeypatch):
    import loralab.training.fit as fit

    seen = {}
    original = fit.train_model

    def spy(model, data, *args, **kwargs):
        seen["rows"], seen["labels"] = len(data.train_ids), data.train_labels
        return original(model, data, *args, **kwargs)

    monkeypatch.setattr(fit, "train_model", spy)
    config = _config(tiny_bert, method="lora", long_text="chunks", stride=2, train_on_chunks=True, epochs=1)
    run = train_run(long_dir, config, tmp_path / "run", progress=False)
    text_input = TextInput.of(run.classifier.config)
    windows, documents = text_input.encode_windows(run.classifier.tokenizer, run.splits.train.texts)
    assert seen["rows"] == len(windows) > len(run.splits.train)
    label2id = run.splits.label2id
    assert seen["labels"] == [label2id[run.splits.train.labels[d]] for d in documents]


def test_settings_are_checked_and_baselines_refuse_them(tiny_bert, long_dir, tmp_path):
    with pytest.raises(LoralabError, match="--truncation must be head, tail or head\\+tail; got 'middle'"):
        TrainConfig(truncation="middle")
    with pytest.raises(LoralabError, match="--stride must be between 0 and half of --max-length"):
        TrainConfig(max_length=32, long_text="chunks", stride=20)
    TrainConfig(max_length=32, stride=20)  # the stride matters only with chunks
    with pytest.raises(LoralabError, match="--train-on-chunks goes with --long-text chunks"):
        TrainConfig(train_on_chunks=True)
    with pytest.raises(LoralabError, match="'tfidf-logreg' does not read them"):
        train_run(
            long_dir, TrainConfig(method="tfidf-logreg", truncation="tail"), tmp_path / "r", progress=False
        )
    assert not (tmp_path / "r").exists()


def test_the_command_line_trains_scores_and_evaluates_chunked_texts(tiny_bert, long_dir, tmp_path):
    from typer.testing import CliRunner

    from loralab.cli import app

    def invoke(*args):
        return CliRunner().invoke(app, [str(a) for a in args])

    bad = invoke("train", long_dir, "--model", tiny_bert, "--truncation", "middle", "-o", tmp_path / "bad")
    assert bad.exit_code == 2 and "--truncation must be head, tail or head+tail" in bad.output
    assert "Traceback" not in bad.output and not (tmp_path / "bad").exists()
    out = tmp_path / "run"
    args = ["--model", tiny_bert, "--max-length", MAX_LENGTH, "--epochs", 1, "--lora-rank", 2]
    chunks = ["--long-text", "chunks", "--stride", 2, "--chunk-aggregation", "max", "--truncation", "tail"]
    trained = invoke("train", long_dir, *args, *chunks, "--head-share", 0.4, "-o", out)
    assert trained.exit_code == 0, trained.output
    saved = json.loads((out / "config.json").read_text())
    assert {
        k: saved[k] for k in ("long_text", "stride", "chunk_aggregation", "truncation", "head_share")
    } == {
        "long_text": "chunks",
        "stride": 2,
        "chunk_aggregation": "max",
        "truncation": "tail",
        "head_share": 0.4,
    }
    texts = long_frame(6, 21)
    texts.to_csv(tmp_path / "texts.csv", index=False)
    scored = invoke("predict", out, "--input", tmp_path / "texts.csv", "--output", tmp_path / "scored.csv")
    assert scored.exit_code == 0, scored.output
    classifier = load_run(out)
    expected = classifier.predict_proba(texts["text"].tolist())
    got = pd.read_csv(tmp_path / "scored.csv")[[f"p_{y}" for y in classifier.labels]].to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    evaluated = invoke("evaluate", out, tmp_path / "texts.csv", "--output", tmp_path / "metrics.json")
    assert evaluated.exit_code == 0, evaluated.output
    accuracy = json.loads((tmp_path / "metrics.json").read_text())["trained"]["accuracy"]
    truth = texts["label"].tolist()
    assert accuracy == pytest.approx(
        np.mean([classifier.labels[i] == y for i, y in zip(expected.argmax(1), truth, strict=True)])
    )
