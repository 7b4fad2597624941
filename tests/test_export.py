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
