"""Speed-up plugins: cheaper dropout masks, the first-token-only last layer, cached frozen
layers; each switchable, verified against the plain forward, and undone exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import build_base_model
from torch import nn

from loralab.config import SPEEDUP_NAMES, TrainConfig
from loralab.errors import LoralabError, ModelError
from loralab.models.fast import ATTENTION_NAME, FastDropout, dropout, fast_dropout_attention, keep_mask
from loralab.models.first_token import FirstTokenLayer, first_token_only, full_forward
from loralab.models.loading import load_classifier
from loralab.models.speedups import (
    NEGLIGIBLE_DROPOUT,
    FastDropoutMasks,
    FastPathWarning,
    FirstTokenOnly,
    active_names,
    chosen,
    enter_fast_paths,
    fast_paths,
    probe_batch,
    speedup_names,
)
from loralab.runs.train import load_run, train_run

LABELS = ["negative", "positive"]


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_keep_mask_drops_with_probability_p(p):
    torch.manual_seed(0)
    mask = keep_mask(torch.Size([1000, 1000]), p)
    assert mask.dtype == torch.bool and mask.shape == (1000, 1000)
    assert abs((~mask).float().mean().item() - p) < 0.002
    # No lane of the 64-bit words is biased (a sign bit that never flips would show here).
    lanes = (~mask).reshape(-1, 4).float().mean(0)
    assert torch.all((lanes - p).abs() < 0.004)


def test_keep_mask_follows_the_seed_and_odd_sizes():
    torch.manual_seed(3)
    first = keep_mask(torch.Size([7, 5]), 0.3)
    torch.manual_seed(3)
    assert torch.equal(first, keep_mask(torch.Size([7, 5]), 0.3))
    assert not torch.equal(first, keep_mask(torch.Size([7, 5]), 0.3))


def test_dropout_scales_kept_values_and_its_gradient():
    torch.manual_seed(0)
    x = torch.rand(64, 33) + 1.0
    x.requires_grad_(True)
    out = dropout(x, 0.25)
    kept = out != 0
    assert torch.allclose(out[kept], x.detach()[kept] / 0.75)
    out.sum().backward()
    assert torch.allclose(x.grad, kept.float() / 0.75)
    assert dropout(x, 0.25, training=False) is x and dropout(x, 0.0) is x


def _dropouts(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if type(m) is nn.Dropout]


def test_fast_dropout_wraps_dropout_modules_and_attention_then_restores_them(tiny_models):
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    model = load_classifier(str(tiny_models["bert"]), LABELS).model
    plugin = FastDropoutMasks()
    plain = _dropouts(model)
    names = list(model.state_dict())
    assert model.config._attn_implementation == "sdpa"
    assert plugin.applies(model, TrainConfig()) and not plugin.active(model)
    plugin.enter(model)
    wrappers = [m for m in model.modules() if isinstance(m, FastDropout)]
    assert [w.plain for w in wrappers] == plain and plugin.active(model)
    assert model.base_model.encoder.layer[0].attention.self.dropout.p == 0.1
    assert model.config._attn_implementation == ATTENTION_NAME
    assert list(model.state_dict()) == names
    plugin.exit(model)
    assert _dropouts(model) == plain and not plugin.active(model)
    assert model.config._attn_implementation == "sdpa"
    # A name is registered for the fast attention; the entry every other model uses is untouched.
    assert AttentionInterface._global_mapping["sdpa"] is sdpa_attention_forward


def test_fast_paths_are_undone_when_training_is_interrupted(tiny_models):
    model = load_classifier(str(tiny_models["bert"]), LABELS).model
    plain = _dropouts(model)
    last = model.base_model.encoder.layer[-1]
    with (
        pytest.raises(RuntimeError, match="interrupted"),
        fast_paths(model, TrainConfig(), probe_batch(model)),
    ):
        assert active_names(model) == ["first-token", "fast-dropout"]
        raise RuntimeError("interrupted")
    assert _dropouts(model) == plain and model.base_model.encoder.layer[-1] is last
    assert active_names(model) == [] and model.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("mask_kind", ["none", "bool", "additive"])
def test_fast_attention_computes_softmax_attention_like_sdpa(mask_kind):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward as sdpa

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4) for _ in range(3))
    keep = torch.ones(2, 1, 5, 5, dtype=torch.bool)
    keep[1, :, :, 3:] = False
    mask = {"none": None, "bool": keep, "additive": torch.zeros(2, 1, 5, 5).masked_fill(~keep, -1e9)}[
        mask_kind
    ]
    module = nn.Module()
    module.is_causal = False
    expected, _ = sdpa(module, q, k, v, mask, dropout=0.0, scaling=0.5)
    # A drop probability so small that nothing is dropped: the explicit path runs and must agree.
    got, _ = fast_dropout_attention(module, q, k, v, mask, dropout=1e-12, scaling=0.5)
    assert torch.allclose(got, expected, atol=1e-6)
    # About half of the probabilities dropped at p = 0.5: outputs differ and stay finite.
    dropped, _ = fast_dropout_attention(module, q, k, v, mask, dropout=0.5, scaling=0.5)
    assert torch.isfinite(dropped).all() and not torch.allclose(dropped, expected)


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_first_token_only_keeps_logits_and_gradients(tiny_models, family):
    reference = load_classifier(str(tiny_models[family]), LABELS).model
    model = load_classifier(str(tiny_models[family]), LABELS).model
    model.load_state_dict(reference.state_dict())
    last = model.base_model.encoder.layer[-1]
    assert first_token_only(model)
    assert isinstance(model.base_model.encoder.layer[-1], FirstTokenLayer)
    assert list(model.state_dict()) == list(reference.state_dict())
    ids = torch.tensor([[2, 7, 9, 11, 4, 3], [2, 8, 3, 0, 0, 0]])
    mask = (torch.arange(6) < torch.tensor([[6], [3]])).long()
    for m in (reference, model):
        m.eval()
        m.zero_grad()
        logits = m(input_ids=ids, attention_mask=mask).logits
        logits.sum().backward()
        m.result = logits.detach()
    assert torch.allclose(model.result, reference.result, atol=1e-5)
    grads = dict(reference.named_parameters())
    for name, param in model.named_parameters():
        assert torch.allclose(param.grad, grads[name].grad, atol=1e-5), name
    full_forward(model)
    assert model.base_model.encoder.layer[-1] is last


def test_first_token_only_leaves_other_architectures_alone(tiny_models):
    model = load_classifier(str(tiny_models["distilbert"]), LABELS).model
    before = list(model.modules())
    assert not FirstTokenOnly().applies(model, TrainConfig())
    assert not first_token_only(model)
    assert list(model.modules()) == before


def test_a_speed_up_that_changes_the_logits_is_switched_off_with_a_warning(tiny_models, monkeypatch):
    model = load_classifier(str(tiny_models["bert"]), LABELS).model
    last = model.base_model.encoder.layer[-1]
    shortcut = FirstTokenLayer.forward
    monkeypatch.setattr(FirstTokenLayer, "forward", lambda self, *a, **k: shortcut(self, *a, **k) + 0.5)
    with pytest.warns(FastPathWarning, match=r"'first-token' is switched off .* differ .* by up to"):
        entered = enter_fast_paths(model, TrainConfig(), probe_batch(model))
    assert [s.name for s in entered] == ["fast-dropout"]
    assert model.base_model.encoder.layer[-1] is last


def test_a_speed_up_whose_forward_fails_is_switched_off_with_a_warning(tiny_models, monkeypatch):
    model = load_classifier(str(tiny_models["bert"]), LABELS).model

    def broken(self, *args, **kwargs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(FirstTokenLayer, "forward", broken)
    with pytest.warns(FastPathWarning, match=r"'first-token' .*RuntimeError: shape mismatch"):
        assert enter_fast_paths(model, TrainConfig(), probe_batch(model), prediction=True) == []
    assert active_names(model) == []


def test_fast_paths_are_chosen_by_name_and_unknown_names_are_refused():
    assert TrainConfig().fast_paths is None
    assert [s.name for s in chosen(TrainConfig())] == ["first-token", "fast-dropout", "frozen-bottom"]
    assert TrainConfig(fast_paths="none").fast_paths == []
    assert TrainConfig(fast_paths="all").fast_paths is None
    assert [s.name for s in chosen(TrainConfig(fast_paths="fast-dropout"))] == ["fast-dropout"]
    with pytest.raises(
        LoralabError, match="no speed-up is called 'first-tokens' .did you mean 'first-token'"
    ):
        TrainConfig(fast_paths="first-tokens,fast-dropout")


def _without_dropout_draws(config):
    """A tiny config whose dropout probabilities are so small that nothing is dropped, so the
    fast and the plain dropout code paths run and must give the same numbers."""
    for key in (
        "hidden_dropout_prob",
        "attention_probs_dropout_prob",
        "dropout",
        "attention_dropout",
        "seq_classif_dropout",
        "classifier_dropout",
        "classifier_dropout_prob",
        "pooler_dropout",
        "mlp_dropout",
        "embedding_dropout",
    ):
        if hasattr(config, key):
            setattr(config, key, NEGLIGIBLE_DROPOUT)
    return config


@pytest.mark.parametrize(
    ("family", "used"),
    [
        ("bert", ["first-token", "fast-dropout"]),
        ("distilbert", ["fast-dropout"]),
        ("roberta", ["first-token", "fast-dropout"]),
    ],
)
def test_training_with_and_without_fast_paths_gives_the_same_losses(
    tmp_path_factory, synthetic_dir, tmp_path, family, used
):
    from conftest import tiny_config

    model = build_base_model(
        tmp_path_factory.mktemp(f"{family}-negligible-dropout"),
        config=_without_dropout_draws(tiny_config(family)),
    )
    common = dict(
        method="lora", model=str(model), epochs=2, lr=2e-2, batch_size=16, lora_dropout=NEGLIGIBLE_DROPOUT
    )
    runs = {
        choice: train_run(
            synthetic_dir,
            TrainConfig(fast_paths=choice, precision="fp32", **common),
            tmp_path / choice,
            progress=False,
        )
        for choice in ("all", "none")
    }
    assert runs["all"].manifest["fast_paths"] == used
    assert runs["none"].manifest["fast_paths"] == []
    pd.testing.assert_frame_equal(
        _history(runs["all"])[["train_loss", "val_loss", "val_accuracy"]],
        _history(runs["none"])[["train_loss", "val_loss", "val_accuracy"]],
        atol=1e-5,
    )
    # A run trained without fast paths predicts without them too.
    assert active_names(load_run(tmp_path / "none").model) == []
    assert "first-token" in active_names(load_run(tmp_path / "all").model) or family == "distilbert"


def _history(run) -> pd.DataFrame:
    return pd.read_csv(run.folder / "history.csv")


@pytest.fixture(scope="module")
def bert_without_dropout(tmp_path_factory):
    from transformers import BertConfig

    config = BertConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return build_base_model(tmp_path_factory.mktemp("bert-3-layers"), config=config)


@pytest.mark.parametrize("method", ["lora", "lora-scratch"])
def test_lora_layers_adapts_only_the_top_layers_and_caches_the_rest(
    bert_without_dropout, synthetic_dir, tmp_path, monkeypatch, method
):
    from loralab.models import frozen_bottom

    common = dict(
        method=method,
        model=str(bert_without_dropout),
        epochs=3,
        lr=2e-2,
        batch_size=16,
        lora_dropout=0.0,
        precision="fp32",  # the bottom is cached in fp32; the comparison run must compute it so
    )
    cached = train_run(
        synthetic_dir, TrainConfig(lora_layers=1, **common), tmp_path / "cached", progress=False
    )
    names = [n for n, p in cached.classifier.model.named_parameters() if p.requires_grad and "lora_" in n]
    assert names and all(".layer.2." in n for n in names)
    assert cached.manifest["cache_seconds"] > 0
    # Without dropout, the cached bottom layers give exactly what running them would.
    monkeypatch.setattr(frozen_bottom, "BOTTOM_CACHE_LIMIT_BYTES", 0)
    with pytest.warns(FastPathWarning, match="'frozen-bottom' .*cannot be cached"):
        through = train_run(
            synthetic_dir, TrainConfig(lora_layers=1, **common), tmp_path / "through", progress=False
        )
    assert through.manifest.get("cache_seconds") is None
    pd.testing.assert_frame_equal(
        _history(cached)[["train_loss", "val_loss", "val_accuracy"]],
        _history(through)[["train_loss", "val_loss", "val_accuracy"]],
        atol=1e-5,
    )
    texts = ["the film was good", "a dull plot", "fine"]
    np.testing.assert_allclose(
        cached.classifier.predict_proba(texts), load_run(tmp_path / "cached").predict_proba(texts), atol=1e-6
    )


def test_cached_bottom_serves_padded_batches_like_the_model(tiny_models):
    from loralab.data.batching import collate
    from loralab.models.frozen_bottom import bottom_swapped, cache_bottom_layers

    model = load_classifier(str(tiny_models["bert"]), LABELS).model.eval()
    ids = [[2, 5, 9, 3], [2, 7, 3], [2, 8, 11, 12, 13, 3], [2, 3]]
    stand_in = cache_bottom_layers(model, ids, 0, 1, batch_size=2, progress=False)
    assert stand_in is not None and stand_in.flat.shape == (15, 32)
    with torch.inference_mode():
        real = model(**collate(ids, 0)).logits
        with bottom_swapped(model, stand_in, 1):
            served = model(**collate([[i, *x[1:]] for i, x in enumerate(ids)], 0)).logits
        assert torch.allclose(real, model(**collate(ids, 0)).logits)  # restored afterwards
    assert torch.allclose(real, served, atol=1e-5)


def test_lora_layers_beyond_the_depth_names_the_depth(tiny_bert, synthetic_dir, tmp_path):
    with pytest.raises(ModelError, match="it has 2 encoder layers, so use 1 to 2"):
        train_run(
            synthetic_dir,
            TrainConfig(method="lora", model=str(tiny_bert), lora_layers=3),
            tmp_path / "x",
            progress=False,
        )
    assert not (tmp_path / "x").exists()


def test_lora_layers_with_another_method_is_refused(synthetic_dir, tmp_path):
    with pytest.raises(
        LoralabError, match="--lora-layers applies to --method lora or lora-scratch or setfit-lora, not full"
    ):
        train_run(synthetic_dir, TrainConfig(method="full", lora_layers=1), tmp_path / "x", progress=False)
    with pytest.raises(LoralabError, match="--lora-layers must be a positive number"):
        TrainConfig(method="lora", lora_layers=0)


def test_fast_paths_on_the_command_line(synthetic_dir, tmp_path):
    import json

    from typer.testing import CliRunner

    from loralab.cli import app

    runner = CliRunner()
    out = tmp_path / "run"
    args = ["train", str(synthetic_dir), "--method", "tfidf-nb", "--output-dir", str(out)]
    assert runner.invoke(app, [*args, "--no-fast-paths"]).exit_code == 0
    assert json.loads((out / "config.json").read_text())["fast_paths"] == []
    wrong = runner.invoke(app, [*args, "--fast-paths", "first-tokn", "--overwrite"])
    assert wrong.exit_code == 2
    assert "no speed-up is called 'first-tokn' (did you mean 'first-token'?)" in wrong.output
    assert "Traceback" not in wrong.output


def test_the_configuration_knows_every_speed_up_by_name():
    assert list(SPEEDUP_NAMES) == speedup_names()


def test_fast_paths_read_their_own_words_from_set_files_and_grids(tmp_path):
    from loralab.config_files import layer_settings
    from loralab.runs.sweep import parse_axes

    settings, _ = layer_settings(None, ["fast_paths=none"], {})
    assert TrainConfig.from_dict(settings).fast_paths == []
    config_file = tmp_path / "settings.yaml"
    config_file.write_text("fast_paths: first-token\n")
    settings, _ = layer_settings(config_file, None, {})
    assert TrainConfig.from_dict(settings).fast_paths == ["first-token"]
    axis = parse_axes(["fast_paths=none,all,first-token+fast-dropout"])["fast_paths"]
    assert [TrainConfig(fast_paths=value).fast_paths for value in axis] == [
        [],
        None,
        ["first-token", "fast-dropout"],
    ]


def _preset_family_config(family: str):
    """A tiny random config of each family with a target-module preset (BERT, DistilBERT and
    RoBERTa come from conftest's tiny_config)."""
    import transformers
    from conftest import tiny_config

    layers = dict(num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    if family in ("bert", "distilbert", "roberta"):
        return tiny_config(family)
    if family in ("xlm-roberta", "camembert"):
        kind = transformers.XLMRobertaConfig if family == "xlm-roberta" else transformers.CamembertConfig
        return kind(vocab_size=64, hidden_size=32, max_position_embeddings=66, pad_token_id=0, **layers)
    if family == "electra":
        return transformers.ElectraConfig(
            vocab_size=64, embedding_size=32, hidden_size=32, max_position_embeddings=64, **layers
        )
    if family == "albert":
        return transformers.AlbertConfig(
            vocab_size=64, embedding_size=16, hidden_size=32, max_position_embeddings=64, **layers
        )
    if family in ("deberta", "deberta-v2"):
        kind = transformers.DebertaConfig if family == "deberta" else transformers.DebertaV2Config
        return kind(
            vocab_size=64,
            hidden_size=32,
            max_position_embeddings=64,
            relative_attention=True,
            pos_att_type=["p2c", "c2p"],
            **layers,
        )
    if family == "modernbert":
        return transformers.ModernBertConfig(
            vocab_size=64,
            hidden_size=32,
            max_position_embeddings=64,
            pad_token_id=0,
            bos_token_id=2,
            eos_token_id=3,
            cls_token_id=2,
            sep_token_id=3,
            global_attn_every_n_layers=2,
            local_attention=16,
            **layers,
        )
    if family == "mpnet":
        return transformers.MPNetConfig(
            vocab_size=64, hidden_size=32, max_position_embeddings=66, pad_token_id=0, **layers
        )
    raise ValueError(family)


PRESET_FAMILIES = [
    "bert",
    "roberta",
    "xlm-roberta",
    "camembert",
    "electra",
    "albert",
    "distilbert",
    "deberta-v2",
    "deberta",
    "modernbert",
    "mpnet",
]


def test_every_family_with_a_preset_is_trained_with_and_without_fast_paths():
    from loralab.models.targets import FAMILY_TARGETS

    assert sorted(FAMILY_TARGETS) == sorted(PRESET_FAMILIES)


@pytest.mark.parametrize("family", PRESET_FAMILIES)
def test_lora_layers_trains_the_same_with_and_without_fast_paths(
    tmp_path_factory, synthetic_dir, tmp_path, family
):
    import warnings

    config = _without_dropout_draws(_preset_family_config(family))
    model = build_base_model(tmp_path_factory.mktemp(f"{family}-no-draws"), config=config)
    common = dict(
        method="lora",
        model=str(model),
        epochs=1,
        lr=2e-2,
        batch_size=16,
        lora_dropout=NEGLIGIBLE_DROPOUT,
        lora_layers=None if family == "albert" else 1,
        precision="fp32",
    )
    runs, switched_off = {}, {}
    for choice in ("all", "none"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            config = TrainConfig(fast_paths=choice, **common)
            runs[choice] = train_run(synthetic_dir, config, tmp_path / choice, progress=False)
        switched_off[choice] = [str(w.message) for w in caught if issubclass(w.category, FastPathWarning)]
    assert runs["none"].manifest["fast_paths"] == [] and switched_off["none"] == []
    # ALBERT shares one layer across its depth, so --lora-layers does not apply to it.
    assert ("frozen-bottom" in runs["all"].manifest["fast_paths"]) == (family != "albert")
    assert not [m for m in switched_off["all"] if "'frozen-bottom'" in m]
    pd.testing.assert_frame_equal(
        _history(runs["all"])[["train_loss", "val_loss", "val_accuracy"]],
        _history(runs["none"])[["train_loss", "val_loss", "val_accuracy"]],
        atol=1e-5,
    )


def test_a_frozen_bottom_cache_that_serves_other_outputs_is_switched_off_with_a_warning(tiny_models):
    from loralab.data.batching import collate
    from loralab.models.frozen_bottom import CachedBottom, cache_bottom_layers
    from loralab.models.speedups import FrozenBottomCache, enter_verified

    model = load_classifier(str(tiny_models["bert"]), LABELS).model.eval()
    ids = [[2, 5, 9, 3], [2, 7, 3], [2, 8, 11, 12, 13, 3]]
    good = cache_bottom_layers(model, ids, 0, 1, batch_size=2, progress=False)
    assert good is not None
    speedup = FrozenBottomCache(good, 1)
    assert enter_verified(speedup, model, collate(ids, 0)) and speedup.active(model)
    speedup.exit(model)
    assert not speedup.active(model)
    noise = torch.randn(good.flat.shape, generator=torch.Generator().manual_seed(0))
    wrong = FrozenBottomCache(CachedBottom(good.flat + 10 * noise, good.offsets, good.lengths), 1)
    with pytest.warns(FastPathWarning, match="'frozen-bottom' .*logits differ"):
        assert not enter_verified(wrong, model, collate(ids, 0))
    assert active_names(model) == []
