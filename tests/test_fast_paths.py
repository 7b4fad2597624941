"""CPU fast paths: cheaper dropout masks and the first-token-only last layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from loralab.models.first_token import PATCHED, first_token_only, full_forward
from loralab.models.loading import load_classifier
from loralab.training.fast import FastDropout, _attention_with_fast_dropout, cpu_fast_paths, dropout, keep_mask

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


def test_cpu_fast_paths_swaps_dropout_modules_and_attention_then_restores():
    from transformers.modeling_utils import AttentionInterface

    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.2), nn.Sequential(nn.Dropout(0.1)))
    sdpa = AttentionInterface._global_mapping["sdpa"]
    with cpu_fast_paths(model):
        assert [type(m) for m in model.modules() if isinstance(m, nn.Dropout)] == [FastDropout] * 2
        assert model[1].p == 0.2
        assert AttentionInterface._global_mapping["sdpa"] is not sdpa
    assert [type(m) for m in model.modules() if isinstance(m, nn.Dropout)] == [nn.Dropout] * 2
    assert AttentionInterface._global_mapping["sdpa"] is sdpa
    with pytest.raises(RuntimeError), cpu_fast_paths(model):
        raise RuntimeError("interrupted")
    assert type(model[1]) is nn.Dropout and AttentionInterface._global_mapping["sdpa"] is sdpa


@pytest.mark.parametrize("mask_kind", ["none", "bool", "additive"])
def test_fast_attention_computes_softmax_attention_like_sdpa(mask_kind):
    from transformers.modeling_utils import AttentionInterface

    sdpa = AttentionInterface._global_mapping["sdpa"]
    fast = _attention_with_fast_dropout(sdpa)
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4) for _ in range(3))
    keep = torch.ones(2, 1, 5, 5, dtype=torch.bool)
    keep[1, :, :, 3:] = False
    mask = {"none": None, "bool": keep, "additive": torch.zeros(2, 1, 5, 5).masked_fill(~keep, -1e9)}[mask_kind]
    module = nn.Module()
    module.is_causal = False
    expected, _ = sdpa(module, q, k, v, mask, dropout=0.0, scaling=0.5)
    # A drop probability so small that nothing is dropped: the explicit path runs and must agree.
    got, _ = fast(module, q, k, v, mask, dropout=1e-12, scaling=0.5)
    assert torch.allclose(got, expected, atol=1e-6)
    # About half of the probabilities dropped at p = 0.5: outputs differ and stay finite.
    dropped, _ = fast(module, q, k, v, mask, dropout=0.5, scaling=0.5)
    assert torch.isfinite(dropped).all() and not torch.allclose(dropped, expected)


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_first_token_only_keeps_logits_and_gradients(tiny_models, family):
    reference = load_classifier(str(tiny_models[family]), LABELS).model
    model = load_classifier(str(tiny_models[family]), LABELS).model
    model.load_state_dict(reference.state_dict())
    assert first_token_only(model)
    assert getattr(model.base_model.encoder.layer[-1], PATCHED)
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
    assert "forward" not in vars(model.base_model.encoder.layer[-1])


def test_first_token_only_leaves_other_architectures_alone(tiny_models):
    model = load_classifier(str(tiny_models["distilbert"]), LABELS).model
    assert not first_token_only(model)
    assert all("forward" not in vars(m) for m in model.modules())
