"""Fused attention (PyTorch's scaled_dot_product_attention) stays on through loralab's fast paths.

Long inputs are where attention costs most; transformers picks SDPA for BERT-like encoders by
default, and nothing in loralab (PEFT wrapping, the first-token-only last layer, merged
adapters for prediction) may switch a model back to the eager softmax(QKᵀ)V.
"""

from __future__ import annotations

import pytest
import torch

from loralab.config import TrainConfig
from loralab.methods import get_method
from loralab.methods.merge import merge_adapters
from loralab.models.first_token import FirstTokenLayer


@pytest.mark.parametrize("method", ["lora", "lora-scratch", "full"])
def test_prediction_runs_every_layer_through_fused_attention(method, tiny_bert, monkeypatch):
    config = TrainConfig(method=method, model=str(tiny_bert), lora_rank=2)
    model = get_method(method).build(["negative", "positive"], config).model
    model, _ = merge_adapters(model)
    model.eval()
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    assert base.config._attn_implementation == "sdpa"
    assert isinstance(base.bert.encoder.layer[-1], FirstTokenLayer)

    fused = torch.nn.functional.scaled_dot_product_attention
    calls = []

    def counting(query, *args, **kwargs):
        calls.append(tuple(query.shape))
        return fused(query, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counting)
    ids = torch.tensor([[2, 9, 14, 21, 3, 0], [2, 30, 3, 0, 0, 0]])
    with torch.inference_mode():
        model(input_ids=ids, attention_mask=(ids != 0).long())
    layers = base.config.num_hidden_layers
    assert len(calls) == layers
    assert calls[-1][2] == 1  # the last layer asks with the first token's query only
