"""The training configuration: one dataclass with defaults, validation and dict round trips.

Layering (defaults, then a file, then flags) happens in :func:`TrainConfig.from_dict`,
which rejects unknown keys from users and only warns about unknown keys in saved runs.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Any

from loralab.errors import LoralabError, closest

CONFIG_VERSION = 1
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# How frozen features become one vector per text; auto reads the model's sentence-transformers config.
POOLINGS = ("auto", "cls", "mean", "max")


@dataclass
class TrainConfig:
    """Everything that decides how a classifier is trained.

    ``lr``, ``epochs`` and ``batch_size`` left as ``None`` take the method's own defaults
    (LoRA and head tuning want a much higher learning rate than full fine-tuning).

    >>> TrainConfig(method="lora", lora_rank=4).lora_rank
    4
    """

    method: str = "lora"
    model: str = DEFAULT_MODEL
    max_length: int = 128
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    eval_batch_size: int = 128
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    grad_accum_steps: int = 1
    max_grad_norm: float = 1.0
    patience: int | None = None
    # When epochs are the method's default, raise them until training takes this many optimizer steps.
    min_train_steps: int = 100
    seed: int = 42
    # LoRA
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.1
    target_modules: list[str] | None = None
    lora_bias: str = "none"
    lora_init: str = "normal"
    use_rslora: bool = False
    use_dora: bool = False
    loraplus_lr_ratio: float | None = None
    lora_layers: int | None = None
    # TF-IDF baselines
    tfidf_ngram_max: int = 2
    tfidf_max_features: int | None = 50000
    tfidf_sublinear_tf: bool = True
    baseline_c: float = 1.0
    pooling: str = "auto"  # embedding baselines: auto (the model's own), cls, mean or max
    setfit_max_pairs: int = 2000  # SetFit: budget of contrastive text pairs, whatever the data size
    # Execution
    threads: int | None = None
    precision: str = "auto"  # auto, fp32, bf16, fp16: see loralab.training.precision
    checkpoint_every: int | None = None  # optimizer steps between checkpoints, besides each epoch's end
    report_to: list[str] | None = None  # tensorboard, mlflow, wandb
    trust_remote_code: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.target_modules, str):
            self.target_modules = [t.strip() for t in self.target_modules.split(",") if t.strip()]
        if isinstance(self.report_to, str):
            self.report_to = [t.strip() for t in self.report_to.split(",") if t.strip()]
        if self.report_to:
            from loralab.runs.tracking import check_names

            self.report_to = check_names(self.report_to) or None
        checks = [
            (self.max_length >= 8, f"--max-length must be at least 8, got {self.max_length}."),
            (self.epochs is None or self.epochs >= 1, f"--epochs must be ≥ 1, got {self.epochs}."),
            (self.lr is None or self.lr > 0, f"--lr must be positive, got {self.lr}."),
            (
                self.batch_size is None or self.batch_size >= 1,
                f"--batch-size must be ≥ 1, got {self.batch_size}.",
            ),
            (self.eval_batch_size >= 1, f"--eval-batch-size must be ≥ 1, got {self.eval_batch_size}."),
            (0 <= self.warmup_ratio < 1, f"--warmup-ratio must be in [0, 1), got {self.warmup_ratio}."),
            (self.grad_accum_steps >= 1, f"--grad-accum-steps must be ≥ 1, got {self.grad_accum_steps}."),
            (self.patience is None or self.patience >= 1, f"--patience must be ≥ 1, got {self.patience}."),
            (self.min_train_steps >= 0, f"--min-train-steps must be ≥ 0, got {self.min_train_steps}."),
            (self.lora_rank >= 1, f"--lora-rank must be a positive integer, got {self.lora_rank}."),
            (self.lora_alpha > 0, f"--lora-alpha must be positive, got {self.lora_alpha}."),
            (0 <= self.lora_dropout < 1, f"--lora-dropout must be in [0, 1), got {self.lora_dropout}."),
            (
                self.lora_bias in ("none", "all", "lora_only"),
                f"--lora-bias must be one of none, all, lora_only; got '{self.lora_bias}'.",
            ),
            (self.tfidf_ngram_max >= 1, f"--tfidf-ngram-max must be ≥ 1, got {self.tfidf_ngram_max}."),
            (
                self.tfidf_max_features is None or self.tfidf_max_features >= 1,
                f"--tfidf-max-features must be ≥ 1, got {self.tfidf_max_features}.",
            ),
            (self.baseline_c > 0, f"--baseline-c must be positive, got {self.baseline_c}."),
            (self.setfit_max_pairs >= 2, f"--setfit-max-pairs must be ≥ 2, got {self.setfit_max_pairs}."),
            (
                self.pooling in POOLINGS,
                f"--pooling must be one of {', '.join(POOLINGS)}; got '{self.pooling}'.",
            ),
            (
                self.lora_init in ("normal", "kaiming", "pissa"),
                f"--lora-init must be normal, kaiming or pissa; got '{self.lora_init}'.",
            ),
            (
                not (self.lora_init == "pissa" and self.use_dora),
                "--lora-init pissa and --use-dora cannot be combined: DoRA's magnitude is taken from "
                "the full weight, which PiSSA replaces by its residual.",
            ),
            (
                self.lora_layers is None or self.lora_layers >= 1,
                f"--lora-layers must be a positive number of layers, got {self.lora_layers}.",
            ),
            (
                self.loraplus_lr_ratio is None or self.loraplus_lr_ratio > 0,
                f"--loraplus-lr-ratio must be positive, got {self.loraplus_lr_ratio}.",
            ),
            (self.threads is None or self.threads >= 1, f"--threads must be ≥ 1, got {self.threads}."),
            (
                self.precision in ("auto", "fp32", "bf16", "fp16"),
                f"--precision must be one of auto, fp32, bf16, fp16; got '{self.precision}'.",
            ),
            (
                self.checkpoint_every is None or self.checkpoint_every >= 1,
                f"--checkpoint-every must be ≥ 1, got {self.checkpoint_every}.",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise LoralabError(message)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["config_version"] = CONFIG_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, strict: bool = True) -> TrainConfig:
        """Build a config from a dict; unknown keys are errors (``strict``) or warnings."""
        known = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k != "config_version"}
        unknown = sorted(set(data) - known)
        if unknown:
            message = f"unknown configuration key(s) {', '.join(unknown)}" + closest(
                unknown[0], sorted(known)
            )
            if strict:
                raise LoralabError(message[0].upper() + message[1:] + ".")
            warnings.warn(f"Ignoring {message}.", stacklevel=2)
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)
