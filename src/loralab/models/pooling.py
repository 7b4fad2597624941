"""Which sentence vector a model is meant to give, and how to compute it from token states.

A sentence-transformers model says how its sentence embedding is pooled in ``modules.json``
and ``<pooling module>/config.json``. all-MiniLM-L6-v2 was trained with mean pooling: its
``[CLS]`` state was never trained to summarise the sentence, and a logistic regression on it
scored 0.68 where mean pooling gives ≈0.79 on a 1,200-tweet set. ``auto`` therefore reads the
model's own pooling and falls back to ``[CLS]`` (what BERT-style checkpoints train) only when
the folder says nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub import try_to_load_from_cache
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPooling

from loralab.config import POOLINGS
from loralab.errors import ModelError
from loralab.models.loading import resolve_model

ST_MODULES = "modules.json"
ST_POOLING_TYPE = "sentence_transformers.models.Pooling"
ST_DEFAULT_POOLING_DIR = "1_Pooling"
# sentence-transformers' pooling flags that loralab computes, in the order they are looked at.
ST_MODES = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
}


@dataclass(frozen=True)
class PoolingChoice:
    """The pooling to use and one sentence saying where it comes from."""

    pooling: str
    source: str
    sentence_transformer: bool  # the model folder declares a sentence-transformers pooling


def _model_file(resolved: str, filename: str) -> Path | None:
    """``filename`` of a local model folder, or of a hub model already in the local cache."""
    folder = Path(resolved)
    if folder.is_dir():
        path = folder / filename
        return path if path.is_file() else None
    found = try_to_load_from_cache(resolved, filename)
    return Path(found) if isinstance(found, str) else None


def _pooling_config_path(resolved: str) -> Path | None:
    modules = _model_file(resolved, ST_MODULES)
    if modules is not None:
        try:
            entries = json.loads(modules.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ModelError(f"{modules}: not valid JSON ({err}).") from err
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and entry.get("type") == ST_POOLING_TYPE:
                return _model_file(resolved, f"{entry.get('path', '')}/config.json".lstrip("/"))
        return None
    return _model_file(resolved, f"{ST_DEFAULT_POOLING_DIR}/config.json")


def sentence_transformer_pooling(model: str) -> PoolingChoice | None:
    """The pooling declared by ``model``'s sentence-transformers files, or ``None`` if it has none."""
    path = _pooling_config_path(resolve_model(model))
    if path is None:
        return None
    try:
        settings = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ModelError(f"{path}: not valid JSON ({err}).") from err
    switched_on = sorted(key for key, value in settings.items() if key.startswith("pooling_mode") and value)
    if len(switched_on) != 1 or switched_on[0] not in ST_MODES:
        raise ModelError(
            f"{path}: the model pools with {', '.join(switched_on) or 'no mode switched on'}, which loralab "
            f"does not compute; choose --pooling cls, mean or max."
        )
    pooling = ST_MODES[switched_on[0]]
    return PoolingChoice(pooling, f"{pooling} pooling, from the model's {path.parent.name}/config.json", True)


def choose_pooling(model: str, requested: str) -> PoolingChoice:
    """Resolve ``requested`` (``auto``, ``cls``, ``mean`` or ``max``) for ``model``."""
    if requested not in POOLINGS:
        raise ModelError(f"--pooling must be one of {', '.join(POOLINGS)}; got '{requested}'.")
    if requested != "auto":
        is_sentence_transformer = _pooling_config_path(resolve_model(model)) is not None
        return PoolingChoice(requested, f"{requested} pooling, as asked", is_sentence_transformer)
    declared = sentence_transformer_pooling(model)
    if declared is not None:
        return declared
    return PoolingChoice(
        "cls",
        f"[CLS] pooling: {model} has no sentence-transformers pooling information "
        f"({ST_MODULES} or {ST_DEFAULT_POOLING_DIR}/config.json), so --pooling auto falls back to [CLS]",
        False,
    )


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Sentence vectors ``(B, H)`` from token states ``hidden`` ``(B, T, H)``, padding excluded."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(torch.bool)  # (B, T, 1)
    if pooling == "mean":
        weights = mask.to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
    if pooling == "max":
        return hidden.masked_fill(~mask, torch.finfo(hidden.dtype).min).max(1).values
    raise ValueError(f"unknown pooling '{pooling}'")


class PooledEncoder(nn.Module):
    """An encoder that answers with its sentence vector in place of the token states.

    Sequence-classification heads read the first token (DistilBERT, RoBERTa) or the pooler
    output (BERT); both become the sentence-transformers pooling of all tokens, so the model's
    own head trains on the vector the model was trained to give. No weights change: the head
    modules, their names and saved files stay as they are.
    """

    def __init__(self, encoder: nn.Module, pooling: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.config = encoder.config

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        hidden = out.last_hidden_state  # (B, T, H)
        if attention_mask is None:
            attention_mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
        pooled = pool(hidden, attention_mask, self.pooling)  # (B, H)
        return BaseModelOutputWithPooling(last_hidden_state=pooled.unsqueeze(1), pooler_output=pooled)


def read_pooled_sentences(model: nn.Module, choice: PoolingChoice) -> bool:
    """Make ``model``'s head read the sentence vector, for a sentence-transformers model whose
    pooling is not the first token; returns whether it does."""
    if not choice.sentence_transformer or choice.pooling == "cls":
        return False
    prefix = str(model.base_model_prefix)
    setattr(model, prefix, PooledEncoder(getattr(model, prefix), choice.pooling))
    return True


def pooled_reading(model: nn.Module) -> str | None:
    """The pooling ``model``'s head reads through :class:`PooledEncoder`, or ``None``."""
    encoder = getattr(model, str(getattr(model, "base_model_prefix", "")), None)
    return encoder.pooling if isinstance(encoder, PooledEncoder) else None
