"""Methods: one module per method, all behind :class:`~loralab.methods.base.Method`."""

from loralab.methods import baselines, embedding, finetune, lora, setfit  # noqa: F401  (register the methods)
from loralab.methods.base import (
    Classifier,
    FitResult,
    Method,
    NeuralMethod,
    Prepared,
    TrainingData,
    TransformerClassifier,
    default_ladder,
    get_method,
    load_saved_classifier,
    method_names,
    untrained_method,
)

__all__ = [
    "Classifier",
    "FitResult",
    "Method",
    "NeuralMethod",
    "Prepared",
    "TrainingData",
    "TransformerClassifier",
    "default_ladder",
    "get_method",
    "load_saved_classifier",
    "method_names",
    "untrained_method",
]
