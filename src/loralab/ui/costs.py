"""What each method is expected to cost on the chosen data, shown before a comparison starts.

Two sources, the better one first:

1. **Measured**: completed runs of the same method and model under the runs directory give
   seconds per training text and inference texts per second; scaled to this data's sizes.
2. **From FLOPs**: an encoder forward pass costs about ``2 × (non-embedding parameters)`` FLOP
   per token (all-MiniLM-L6-v2: ~21 MFLOP), a training step about three forward passes. The
   effective throughputs below come from the rotten_tomatoes comparison in docs/results.md on
   the 2-core reference CPU (~28 tokens per text; LoRA: 8,530 texts × 3 epochs in 521 s, full
   fine-tuning 789 s; embed-logreg: 10,662 texts encoded in 57 s). LoRA's backward pass skips the
   frozen weights' gradients, so one figure cannot fit both: this one sits between them. Expect
   ±2× elsewhere; the page says which source each figure comes from.

The number of encoder passes a method needs is read from its traits: methods that do not run
the encoder (TF-IDF), methods that run it once over every text for frozen features, an
untrained head (evaluation only), heads trained on encoder outputs cached once (the encoder
is untouched: no weight update), and methods that train through the encoder each epoch. A
method that does not declare whether it runs the encoder gets no estimate until it has been
measured.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from loralab.methods import Method, get_method
from loralab.ui.progress import read_json
from loralab.ui.runs_index import completed_runs

# Effective FLOP/s of this project's CPU loop (fp32, 2 cores), from docs/results.md.
TRAIN_FLOPS_PER_SECOND = 7e10
INFERENCE_FLOPS_PER_SECOND = 1e11
# TF-IDF fit and predict, seconds per text (8,530 texts in about a second).
SECONDS_PER_TEXT_WITHOUT_ENCODER = 1.5e-4
# Loading a model and the reload check, per neural or embedding run.
FIXED_SECONDS = 5.0


@dataclass
class DataSize:
    """Texts per split and mean tokens per text (truncated at ``max_length``)."""

    train: int
    validation: int
    test: int
    mean_tokens: float

    @classmethod
    def from_report(cls, report: dict) -> DataSize:
        splits = report["splits"]
        tokens = splits["train"].get("tokens", {})
        mean = min(tokens.get("mean", 32.0), tokens.get("max_length", 512))
        return cls(splits["train"]["size"], splits["validation"]["size"], splits["test"]["size"], mean)


@dataclass
class CostEstimate:
    method: str
    seconds: float | None
    basis: str

    @property
    def text(self) -> str:
        seconds = self.seconds
        if seconds is None:
            return self.basis
        if seconds < 60:
            shown = f"~{max(seconds, 1):.0f} s"
        elif seconds < 3600:
            shown = f"~{seconds / 60:.0f} min"
        else:
            shown = f"~{seconds / 3600:.1f} h"
        return f"{shown} ({self.basis})"


def forward_flops_per_token(model: str) -> float:
    """2 × the parameters of the encoder's layers (attention and feed-forward), per token."""
    # could be at module level: loralab.methods, imported above, has loaded both already
    from transformers import AutoConfig

    from loralab.models.loading import resolve_model

    config = AutoConfig.from_pretrained(resolve_model(model))
    # BERT-style names first, DistilBERT's second.
    hidden = int(getattr(config, "hidden_size", None) or getattr(config, "dim", None) or 384)
    layers = int(getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers", None) or 6)
    inner = int(
        getattr(config, "intermediate_size", None) or getattr(config, "hidden_dim", None) or 4 * hidden
    )
    return 2.0 * layers * (4 * hidden * hidden + 2 * hidden * inner)


def encoder_passes(method: Method, size: DataSize) -> tuple[float, float] | None:
    """(training, inference) forward passes over texts, in units of one text; ``None`` for a
    method that does not declare whether it runs the encoder (it is measured after its first run)."""
    evaluated = size.validation + size.test
    if method.uses_encoder is None:
        return None
    if not method.uses_encoder:
        return 0.0, 0.0
    if method.untrained:
        return 0.0, evaluated
    if not method.trains_in_epochs:  # frozen features: one pass over every text
        return 0.0, size.train + evaluated
    if not method.has_weight_update:  # a head trained on encoder outputs cached once
        return 0.0, size.train + size.validation + evaluated
    epochs = method.default_epochs
    # A training step is a forward and a backward pass (~3 forwards); each epoch also validates.
    return 3.0 * epochs * size.train, epochs * size.validation + evaluated


def _measured(method: str, model: str, size: DataSize, runs_dir: Path) -> CostEstimate | None:
    rates = []
    for entry in completed_runs(runs_dir):
        manifest = read_json(entry.path / "manifest.json")
        config = read_json(entry.path / "config.json")
        if manifest.get("method") != method or config.get("model") != model:
            continue
        trained = ((manifest.get("data") or {}).get("splits") or {}).get("train", {}).get("size")
        speed = (read_json(entry.path / "metrics.json").get("test") or {}).get("inference_texts_per_second")
        if trained and speed and manifest.get("train_seconds") is not None:
            rates.append((manifest["train_seconds"] / trained, 1.0 / speed))
    if not rates:
        return None
    train_rate = statistics.median(r[0] for r in rates)
    infer_rate = statistics.median(r[1] for r in rates)
    seconds = train_rate * size.train + infer_rate * (size.validation + size.test)
    return CostEstimate(method, seconds, f"measured on {len(rates)} earlier run(s)")


def estimate_cost(method_name: str, model: str, size: DataSize, runs_dir: Path) -> CostEstimate:
    """Expected seconds for one run of ``method_name`` on data of ``size``."""
    measured = _measured(method_name, model, size, runs_dir)
    if measured is not None:
        return measured
    passes = encoder_passes(get_method(method_name), size)
    if passes is None:
        return CostEstimate(method_name, None, "no estimate before a first run of it")
    training, inference = passes
    if training == inference == 0:
        texts = size.train + size.validation + size.test
        return CostEstimate(method_name, texts * SECONDS_PER_TEXT_WITHOUT_ENCODER, "no encoder")
    per_text = forward_flops_per_token(model) * size.mean_tokens
    seconds = (
        FIXED_SECONDS
        + training * per_text / TRAIN_FLOPS_PER_SECOND
        + inference * per_text / INFERENCE_FLOPS_PER_SECOND
    )
    return CostEstimate(method_name, seconds, "estimated from FLOPs")
