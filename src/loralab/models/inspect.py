"""What ``loralab model inspect`` shows: architecture, tokenisation, hidden-state shapes and
the linear layers LoRA can target (parameter counts per method are in
:mod:`loralab.methods.inspect`)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch

from loralab.config import TrainConfig
from loralab.models.loading import load_classifier
from loralab.models.targets import FAMILY_TARGETS, linear_modules


def architecture(model) -> dict:
    config = model.config
    keys = [
        "model_type",
        "num_hidden_layers",
        "hidden_size",
        "num_attention_heads",
        "intermediate_size",
        "vocab_size",
        "max_position_embeddings",
        "n_layers",
        "dim",
        "n_heads",
        "hidden_dim",
    ]
    return {k: getattr(config, k) for k in keys if getattr(config, k, None) is not None}


def inspect_model(config: TrainConfig, text: str, labels: list[str]) -> dict:
    loaded = load_classifier(config.model, labels, trust_remote_code=config.trust_remote_code)
    # transformers' models and tokenizers are reached through types that cannot describe them
    model: Any = loaded.model
    tokenizer: Any = loaded.tokenizer
    encoded = tokenizer(text, return_tensors="pt", truncation=True, max_length=config.max_length)
    base = getattr(model, model.base_model_prefix)
    with torch.inference_mode():
        hidden = base(**encoded).last_hidden_state  # (B, T, H)
    linear = linear_modules(model, loaded.head_modules)
    counts = Counter(name.rsplit(".", 1)[-1] for name in linear)
    return {
        "model": config.model,
        "architecture": architecture(model),
        "class": type(model).__name__,
        "head_modules": loaded.head_modules,
        "newly_initialised": loaded.newly_initialised,
        "tokens": tokenizer.convert_ids_to_tokens(encoded["input_ids"][0]),
        "input_ids": encoded["input_ids"][0].tolist(),
        "attention_mask": encoded["attention_mask"][0].tolist(),
        "hidden_state_shape": list(hidden.shape),
        "cls_shape": list(hidden[:, 0, :].shape),
        "linear_modules": dict(counts),
        "preset_targets": FAMILY_TARGETS.get(model.config.model_type),
    }
