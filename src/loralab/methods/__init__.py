"""Methods: one module per method, all behind :class:`~loralab.methods.base.Method`."""

from loralab.methods import baselines, embedding, finetune, lora, setfit  # noqa: F401  (register the methods)
from loralab.methods.base import (
    Classifier,
    Method,
    TransformerClassifier,
    get_method,
    load_saved_classifier,
    method_names,
)

__all__ = [
    "Classifier",
    "Method",
    "TransformerClassifier",
    "get_method",
    "load_saved_classifier",
    "method_names",
]
