"""loralab export: the exported folder loads without loralab and predicts like the run."""

import numpy as np
import pytest
import torch

from loralab.config import TrainConfig
from loralab.errors import LoralabError, RunError
from loralab.runs.export import export_run
from loralab.runs.train import load_run, train_run

TEXTS = ["good fun and great", "a dull and bad plot", "meh", "great great", "bad"]


@pytest.mark.parametrize(
    "method, extra",
    [("lora", {}), ("lora-scratch", {}), ("lora", {"lora_init": "pissa"}), ("full", {}), ("head", {})],
)
def test_neural_runs_export_to_plain_transformers(method, extra, tiny_bert, synthetic_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    config = TrainConfig(method=method, model=str(tiny_bert), epochs=1, lr=5e-3, lora_rank=2, **extra)
    run = train_run(synthetic_dir, config, tmp_path / "run", progress=False)
    result = export_run(run.folder, tmp_path / "out")
    assert result["kind"] == "transformers" and result["max_difference"] <= 1e-4
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= files
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out").eval()
    assert model.config.id2label == {0: "negative", 1: "positive"}
    assert not any("lora" in name for name, _ in model.named_parameters())
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out")
    with torch.inference_mode():
        probs = model(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits.softmax(-1).numpy()
    expected = load_run(run.folder).predict_proba(TEXTS)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    classify = pipeline("text-classification", model=str(tmp_path / "out"))
    labels = [answer["label"] for answer in classify(TEXTS)]
    assert labels == [["negative", "positive"][i] for i in expected.argmax(1)]


def test_tfidf_runs_export_to_a_skops_pipeline(synthetic_dir, tmp_path):
    import skops.io as sio

    run = train_run(synthetic_dir, TrainConfig(method="tfidf-logreg"), tmp_path / "run", progress=False)
    assert export_run(run.folder, tmp_path / "out")["kind"] == "scikit-learn"
    path = tmp_path / "out" / "pipeline.skops"
    types = sio.get_untrusted_types(file=path)
    assert all(t.startswith(("sklearn.", "numpy.", "scipy.", "builtins.")) for t in types), types
    pipeline = sio.load(path, trusted=types)
    classifier = load_run(run.folder)
    np.testing.assert_allclose(pipeline.predict_proba(TEXTS), classifier.predict_proba(TEXTS))
    expected = [classifier.labels[i] for i in classifier.predict_proba(TEXTS).argmax(1)]
    assert pipeline.predict(TEXTS).tolist() == expected
    assert "get_untrusted_types" in (tmp_path / "out" / "README.md").read_text()


def test_export_refuses_a_non_empty_folder_and_embedding_runs(tiny_bert, synthetic_dir, tmp_path):
    run = train_run(synthetic_dir, TrainConfig(method="tfidf-nb"), tmp_path / "run", progress=False)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(RunError, match="already exists and is not empty"):
        export_run(run.folder, tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
    embed = train_run(
        synthetic_dir,
        TrainConfig(method="embed-logreg", model=str(tiny_bert)),
        tmp_path / "e",
        progress=False,
    )
    with pytest.raises(LoralabError, match="no single-file export"):
        export_run(embed.folder, tmp_path / "e-out")
    assert not (tmp_path / "e-out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".e-out")]


@pytest.mark.parametrize("method", ["lora", "lora-scratch", "full"])
def test_onnx_export_and_backend_predict_like_the_run(method, tiny_bert, synthetic_dir, tmp_path):
    from loralab.runs.onnx import load_onnx

    config = TrainConfig(method=method, model=str(tiny_bert), epochs=1, lr=5e-3, lora_rank=2)
    run = train_run(synthetic_dir, config, tmp_path / "run", progress=False)
    expected = load_run(run.folder).predict_proba(TEXTS)
    result = export_run(run.folder, tmp_path / "out", onnx=True, int8=True)
    assert result["onnx_max_difference"] <= 1e-4 and 0 <= result["int8_label_agreement"] <= 1
    assert {"model.onnx", "model.int8.onnx", "labels.json"} <= {p.name for p in (tmp_path / "out").iterdir()}
    exported = load_onnx(tmp_path / "out")
    np.testing.assert_allclose(exported.predict_proba(TEXTS), expected, atol=1e-4)
    assert load_onnx(tmp_path / "out", int8=True).predict_proba(TEXTS).shape == (len(TEXTS), 2)
    # A run folder is exported once, on first use, into RUN/onnx/.
    backend = load_onnx(run.folder, progress=False)
    made = (run.folder / "onnx" / "model.onnx").stat().st_mtime_ns
    np.testing.assert_allclose(backend.predict_proba(TEXTS), expected, atol=1e-4)
    assert backend.predict(TEXTS) == load_run(run.folder).predict(TEXTS)
    load_onnx(run.folder, progress=False)
    assert (run.folder / "onnx" / "model.onnx").stat().st_mtime_ns == made
    assert not [p for p in run.folder.iterdir() if p.name.startswith(".onnx.")]


def test_onnx_options_are_checked(tiny_bert, synthetic_dir, tmp_path, monkeypatch):
    import importlib.util

    from loralab.runs.onnx import load_onnx

    run = train_run(synthetic_dir, TrainConfig(method="tfidf-nb"), tmp_path / "run", progress=False)
    with pytest.raises(LoralabError, match="--int8 goes with --onnx"):
        export_run(run.folder, tmp_path / "a", int8=True)
    with pytest.raises(LoralabError, match="--onnx applies to neural runs"):
        export_run(run.folder, tmp_path / "b", onnx=True)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else find_spec(name, *a)
    )
    with pytest.raises(
        LoralabError, match=r"needs onnxruntime, which is not installed; run: pip install 'loralab\[onnx\]'"
    ):
        load_onnx(run.folder)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("method", ["lora", "lora-scratch"])
def test_prediction_merges_the_adapters_and_predicts_like_the_run(method, tiny_bert, synthetic_dir, tmp_path):
    from loralab.runs.predict import load_for_prediction

    config = TrainConfig(method=method, model=str(tiny_bert), epochs=1, lr=5e-3, lora_rank=2)
    run = train_run(synthetic_dir, config, tmp_path / "run", progress=False)
    merged = load_for_prediction(run.folder)
    assert not any("lora" in name for name, _ in merged.model.named_parameters())
    np.testing.assert_allclose(
        merged.predict_proba(TEXTS), load_run(run.folder).predict_proba(TEXTS), atol=1e-5
    )
