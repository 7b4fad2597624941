import pytest
import torch

from loralab.config import TrainConfig
from loralab.errors import ModelError
from loralab.methods.inspect import parameter_table
from loralab.models import load_classifier, resolve_targets
from loralab.models.inspect import inspect_model
from loralab.models.targets import matches
from tests.conftest import build_base_model

LABELS = ["negative", "positive"]


@pytest.mark.parametrize(
    "family, head, preset",
    [
        ("bert", ["classifier"], ["query", "value"]),
        ("distilbert", ["pre_classifier", "classifier"], ["q_lin", "v_lin"]),
        ("roberta", ["classifier"], ["query", "value"]),
    ],
)
def test_head_and_preset_targets_per_family(tiny_models, family, head, preset):
    loaded = load_classifier(str(tiny_models[family]), LABELS)
    assert loaded.head_modules == head
    # The loader reports the head as newly initialised: it is exactly what trains from scratch.
    assert {k.split(".")[0] for k in loaded.newly_initialised} == set(head)
    targets = resolve_targets(loaded.model, loaded.head_modules, None)
    assert len(targets) == 2 * 2  # two layers, two projections each
    assert {t.rsplit(".", 1)[-1] for t in targets} == set(preset)


def test_all_linear_leaves_the_head_out(tiny_models):
    loaded = load_classifier(str(tiny_models["roberta"]), LABELS)
    targets = resolve_targets(loaded.model, loaded.head_modules, ["all-linear"])
    assert targets and not any(t.startswith("classifier") for t in targets)
    assert any(t.endswith("attention.self.key") for t in targets)


def test_unmatched_target_lists_linear_layers(tiny_bert):
    loaded = load_classifier(str(tiny_bert), LABELS)
    with pytest.raises(ModelError, match="'q_lin' matches no linear layer.*named dense, key, query, value"):
        resolve_targets(loaded.model, loaded.head_modules, ["q_lin"])


def test_rank_larger_than_a_layer_is_refused(tiny_bert):
    loaded = load_classifier(str(tiny_bert), LABELS)
    with pytest.raises(
        ModelError, match="--lora-rank 33 is larger than layer .*query allows \\(32→32, at most 32\\)"
    ):
        resolve_targets(loaded.model, loaded.head_modules, None, rank=33)


def test_names_match_dot_bounded():
    assert matches("encoder.layer.0.attention.self.value", "value")
    assert not matches("encoder.layer.0.attention.self.key_value", "value")
    assert matches("encoder.layer.0.attention.self.value", "self.value")


def test_missing_model_folder_is_one_sentence(tmp_path):
    with pytest.raises(ModelError, match="no such model folder"):
        load_classifier(str(tmp_path / "nowhere"), LABELS) if False else load_classifier(
            "./nowhere-model", LABELS
        )


def test_unknown_hub_name_offline_is_one_sentence(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="cannot be loaded: it is not a local folder"):
        load_classifier("no-such-org/no-such-model-xyz", LABELS)


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(ModelError, match="not a model folder"):
        load_classifier(str(tmp_path), LABELS)


@pytest.fixture(scope="module")
def distilbert_default(tmp_path_factory):
    """DistilBERT built from its default config (random weights, no download)."""
    from transformers import DistilBertConfig

    return build_base_model(tmp_path_factory.mktemp("distilbert-default"), config=DistilBertConfig())


def test_seed_002_parameter_counts_on_default_distilbert(distilbert_default):
    config = TrainConfig(model=str(distilbert_default), lora_rank=6, target_modules=["q_lin", "v_lin"])
    counts = {r["method"]: r["trainable"] for r in parameter_table(config, LABELS)}
    assert counts == {"full": 66_955_010, "head": 592_130, "lora": 702_722}
    rank12 = parameter_table(config.replace(lora_rank=12, lora_alpha=24), LABELS, methods=("lora",))
    assert rank12[0]["trainable"] == 813_314


def test_inspect_reports_tokens_and_shapes(tiny_bert):
    info = inspect_model(TrainConfig(model=str(tiny_bert)), "a good film", LABELS)
    assert info["tokens"] == ["[CLS]", "a", "good", "film", "[SEP]"]
    assert info["attention_mask"] == [1] * 5
    assert info["hidden_state_shape"] == [1, 5, 32]
    assert info["cls_shape"] == [1, 32]
    assert info["linear_modules"]["query"] == 2
    assert info["preset_targets"] == ["query", "value"]
    assert torch.is_tensor(torch.tensor(info["input_ids"]))
