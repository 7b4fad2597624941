"""What each method costs, with one definition for all of them, read from run folders.

- **trainable**: the numbers fitted to the labelled data — gradient-trained weights of a
  neural method, the coefficients of a linear model on frozen features or on TF-IDF.
- **share**: trainable / every parameter the model uses to predict (the frozen encoder
  included). An embedding baseline's 385 coefficients sit on the same 22.7 M-parameter
  encoder as head tuning's 770, so both are a tiny share, not 100 % and 0 %. TF-IDF models
  have no encoder: their coefficients (one per vocabulary term and class) are shown as such,
  with no share.
- **time**: features read from the cache cost almost nothing to "train" and to predict; the
  first run's encoding is the real cost, so it is shown next to the cached figure, and a
  throughput measured on cached features is not reported as inference speed.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Cost:
    kind: str  # "encoder" (a transformer predicts), "features" (linear model on frozen features), "tfidf"
    trainable: int | None
    predicting_parameters: int | None
    train_seconds: float | None
    first_encoding_seconds: float | None  # when the features were read from the cache
    cached: bool
    inference_texts_per_second: float | None

    @property
    def share(self) -> float | None:
        if self.kind == "tfidf" or not self.predicting_parameters or self.trainable is None:
            return None
        return self.trainable / self.predicting_parameters

    def cells(self) -> dict[str, str]:
        """The table cells: trainable, share, train s, infer texts/s."""
        if self.trainable is None:
            trainable = "–"
        elif self.kind == "tfidf":
            trainable = f"{self.trainable:,} coefficients"
        else:
            trainable = f"{self.trainable:,}"
        share = "–" if self.share is None else _percent(self.share)
        train = "–" if self.train_seconds is None else f"{self.train_seconds:,.1f}"
        if self.cached:
            first = self.first_encoding_seconds
            train += " (cached" + (f"; first encoding {first:,.1f})" if first is not None else ")")
        if self.cached:
            infer = "– (cached)"
        elif self.inference_texts_per_second:
            infer = f"{self.inference_texts_per_second:,.0f}"
        else:
            infer = "–"
        return {"trainable": trainable, "share": share, "train": train, "infer": infer}


def _percent(value: float) -> str:
    return f"{value:.2%}" if value >= 0.001 or value == 0 else f"{value * 100:.2g}%"


@functools.lru_cache(maxsize=8)
def encoder_parameters(model: str) -> int | None:
    """Parameters of the encoder ``model`` (with its pooler), counted without loading weights."""
    # deferred: torch and transformers take ~3 s to import; only this share of parameters needs them
    import torch
    from transformers import AutoConfig, AutoModel

    from loralab.models.loading import resolve_model

    try:
        config = AutoConfig.from_pretrained(resolve_model(model))
        with torch.device("meta"):  # shapes only: no memory, no weights read
            encoder = AutoModel.from_config(config)
    except Exception:  # an unreachable or unknown model: the share is then not shown
        return None
    return sum(p.numel() for p in encoder.parameters())


def run_cost(run_dir: str | Path) -> Cost:
    run_dir = Path(run_dir)
    manifest = _read(run_dir / "manifest.json")
    metrics = _read(run_dir / "metrics.json")
    config = _read(run_dir / "config.json")
    trainable = manifest.get("trainable_parameters")
    features = manifest.get("features") or {}
    if (run_dir / "model" / "baseline.json").exists():
        kind, predicting = "tfidf", trainable
    elif features:
        kind = "features"
        encoder = encoder_parameters(str(config.get("model")))
        predicting = encoder + (trainable or 0) if encoder else None
    else:
        kind, predicting = "encoder", manifest.get("total_parameters")
    cached = features.get("source") == "cache"
    test = metrics.get("test") or {}
    return Cost(
        kind=kind,
        trainable=trainable,
        predicting_parameters=predicting,
        train_seconds=manifest.get("train_seconds"),
        first_encoding_seconds=features.get("first_encoding_seconds"),
        cached=cached,
        inference_texts_per_second=None if cached else test.get("inference_texts_per_second"),
    )


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def summary_costs(folder: str | Path, runs: list[dict]) -> dict[tuple[str, str], Cost]:
    """The cost of each (method, training size) of a comparison, from its first run."""
    costs: dict[tuple[str, str], Cost] = {}
    for run in runs:
        key = (run["method"], str(run.get("train_size")))
        if key not in costs:
            costs[key] = run_cost(Path(folder) / run["run"])
    return costs
