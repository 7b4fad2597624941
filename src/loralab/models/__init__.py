"""Models: loading with an explicit head, and LoRA target resolution."""

from loralab.models.loading import (
    LoadedModel,
    count_parameters,
    load_classifier,
    load_tokenizer,
    resolve_model,
)
from loralab.models.targets import FAMILY_TARGETS, linear_modules, resolve_targets

__all__ = [
    "FAMILY_TARGETS",
    "LoadedModel",
    "count_parameters",
    "linear_modules",
    "load_classifier",
    "load_tokenizer",
    "resolve_model",
    "resolve_targets",
]
