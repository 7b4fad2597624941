"""Serving: a :class:`Predictor` that holds many runs in one process (no web dependencies),
a micro-batcher, and the FastAPI app built on them."""

from loralab.serving.predictor import Predictor, ServedModel

__all__ = ["Predictor", "ServedModel"]
