"""The embedded MiniLM on small slices of ../shared/data (missing data fails under CI=true)."""

import json

import pytest

from loralab import TextClassifier
from loralab.config import TrainConfig
from loralab.data import load_data
from loralab.runs.evaluate import evaluate_run
from loralab.runs.train import train_run
from tests.conftest import shared_data

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def minilm_lora_run(tmp_path_factory):
    splits = load_data(shared_data("rotten_tomatoes"), subset=160)
    out = tmp_path_factory.mktemp("it") / "rt-lora"
    result = train_run(splits, TrainConfig(method="lora", epochs=1), out, progress=False)
    return result


def test_embedded_minilm_lora_run(minilm_lora_run):
    manifest = minilm_lora_run.manifest
    assert manifest["status"] == "completed"
    assert manifest["head_modules"] == ["classifier"]
    assert manifest["newly_initialised"] == ["classifier.bias", "classifier.weight"]
    # rank 8 on every linear layer (all-linear): per layer query, key, value and the attention
    # output (384 → 384), the feed-forward in and out (384 ↔ 1536); the pooler (384 → 384); plus
    # the 384 → 2 classifier
    per_layer = 4 * 8 * (384 + 384) + 2 * 8 * (384 + 1536)
    assert manifest["trainable_parameters"] == 6 * per_layer + 8 * (384 + 384) + 384 * 2 + 2
    adapter = json.loads((minilm_lora_run.folder / "model" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_cross_dataset_evaluation_and_before_after(minilm_lora_run):
    sst2 = shared_data("sst2")
    results = evaluate_run(minilm_lora_run.folder, str(sst2 / "validation.csv"), before=True)
    assert results["after"]["n"] == 872 and results["before"]["n"] == 872
    assert set(results["after"]["labels"]) == {"negative", "positive"}


def test_python_api_fit_predict_save_load(tmp_path):
    splits = load_data(shared_data("sst2"), subset=120)
    clf = TextClassifier(method="head", epochs=2).fit(splits.train.texts, splits.train.labels)
    assert clf is not None and list(clf.classes_) == ["negative", "positive"]
    predicted = clf.predict(splits.test.texts[:10])
    assert set(predicted) <= {"negative", "positive"} and len(predicted) == 10
    assert 0.0 <= clf.score(splits.test.texts[:40], splits.test.labels[:40]) <= 1.0
    clf.save(tmp_path / "api-run")
    again = TextClassifier.load(tmp_path / "api-run")
    assert (again.predict_proba(splits.test.texts[:10]) == clf.predict_proba(splits.test.texts[:10])).all()
    assert again.get_params()["method"] == "head"
