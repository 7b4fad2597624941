"""Frozen encoder features, computed once per (model, pooling, max_length, texts) and cached.

The pooling in the cache key is always the resolved one (``auto`` becomes the model's own
pooling first), so features pooled one way are never served for another.

Trying three linear models on the same features costs one encoder pass: the first call
encodes and writes ``<cache>/<key>.safetensors``; later calls read it. ``ENCODER_PASSES``
counts the texts actually sent through an encoder in this process, so the saving can be shown.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from loralab.data.batching import collate, encode, sorted_batches, token_budget
from loralab.models.loading import load_classifier
from loralab.models.pooling import POOLINGS, choose_pooling, pool

CACHE_ENV = "LORALAB_CACHE_DIR"
ENCODE_SECONDS = "encode_seconds"  # metadata key of a cached features file
__all__ = [
    "ENCODER_PASSES",
    "POOLINGS",
    "cache_dir",
    "cached_features",
    "encode_texts",
    "feature_key",
    "first_encoding_seconds",
]
log = logging.getLogger("loralab.features")
ENCODER_PASSES = {"texts": 0, "cache_hits": 0}
_ENCODERS: dict[tuple[str, bool], tuple] = {}


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "loralab")) / "features"


def feature_key(model: str, pooling: str, max_length: int, texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for part in (model, pooling, str(max_length), str(len(texts))):
        digest.update(part.encode() + b"\0")
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()[:32]


def loaded_encoders() -> list:
    """The encoders this process has loaded for embedding methods."""
    return [encoder for encoder, _ in _ENCODERS.values()]


def _encoder(model: str, trust_remote_code: bool):
    key = (model, trust_remote_code)
    if key not in _ENCODERS:
        loaded = load_classifier(model, ["0", "1"], trust_remote_code=trust_remote_code)
        base = getattr(loaded.model, str(loaded.model.base_model_prefix)).eval()
        _ENCODERS[key] = (base, loaded.tokenizer)
    return _ENCODERS[key]


def encode_texts(
    model: str,
    texts: Sequence[str],
    pooling: str,
    max_length: int,
    batch_size: int = 128,
    trust_remote_code: bool = False,
) -> np.ndarray:
    """Pooled last hidden states ``(N, H)`` of the frozen encoder, in the order of ``texts``."""
    pooling = choose_pooling(model, pooling).pooling
    base, tokenizer = _encoder(model, trust_remote_code)
    ids = encode(tokenizer, texts, max_length)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = np.zeros((len(texts), base.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for batch_idx in sorted_batches([len(x) for x in ids], batch_size, token_budget()):
            batch = collate([ids[i] for i in batch_idx], pad)
            hidden = base(**batch).last_hidden_state  # (B, T, H)
            pooled = pool(hidden, batch["attention_mask"], pooling)  # (B, H)
            out[batch_idx] = pooled.float().numpy()
    ENCODER_PASSES["texts"] += len(texts)
    return out


def first_encoding_seconds(model: str, texts: Sequence[str], pooling: str, max_length: int) -> float | None:
    """How long encoding ``texts`` took when their cached features were computed, if known."""
    path = cache_dir() / f"{feature_key(model, pooling, max_length, texts)}.safetensors"
    if not path.exists():
        return None
    with safe_open(str(path), framework="numpy") as handle:
        value = (handle.metadata() or {}).get(ENCODE_SECONDS)
    return float(value) if value is not None else None


def cached_features(
    model: str, texts: Sequence[str], pooling: str, max_length: int, trust_remote_code: bool = False
) -> np.ndarray:
    """Features from the disk cache, or encoded now and cached."""
    pooling = choose_pooling(model, pooling).pooling
    path = cache_dir() / f"{feature_key(model, pooling, max_length, texts)}.safetensors"
    if path.exists():
        ENCODER_PASSES["cache_hits"] += len(texts)
        log.info("features for %d texts read from %s", len(texts), path)
        return load_file(str(path))["features"]
    start = time.perf_counter()
    features = encode_texts(model, texts, pooling, max_length, trust_remote_code=trust_remote_code)
    # The encoding's cost goes with the features, so a run that reads them can report it.
    metadata = {ENCODE_SECONDS: f"{time.perf_counter() - start:.3f}"}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    save_file({"features": features}, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    log.info("encoded %d texts; features cached at %s", len(texts), path)
    return features
