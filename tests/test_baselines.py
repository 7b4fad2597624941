import numpy as np
import pytest

from loralab.config import TrainConfig
from loralab.runs.train import load_run, train_run

TEXTS = ["the film was good", "a dull and boring plot", "okay", "charming acting, weak story"]


@pytest.mark.parametrize("method", ["tfidf-logreg", "tfidf-nb"])
def test_tfidf_baseline_fits_predicts_saves_and_loads_without_pickle(synthetic_dir, tmp_path, method):
    out = tmp_path / method
    result = train_run(synthetic_dir, TrainConfig(method=method), out, progress=False)
    assert result.metrics["test"]["accuracy"] >= 0.9  # the sentiment word decides the class
    files = {p.name for p in (out / "model").iterdir()}
    assert files == {"loralab.json", "baseline.json", "baseline.safetensors"}
    reloaded = load_run(out)
    np.testing.assert_allclose(reloaded.predict_proba(TEXTS), result.classifier.predict_proba(TEXTS))
    assert reloaded.predict(["good"]) == ["positive"]
    assert result.manifest["trainable_parameters"] > 0


def test_vectorizer_settings_are_used(synthetic_dir, tmp_path):
    config = TrainConfig(method="tfidf-logreg", tfidf_ngram_max=1, tfidf_max_features=5)
    result = train_run(synthetic_dir, config, tmp_path / "r", progress=False)
    assert len(result.classifier.vectorizer.vocabulary_) == 5
