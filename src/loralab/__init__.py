"""loralab: labelled text in, a trained, evaluated and servable classifier out."""

__version__ = "0.1.0"

from loralab.config import DEFAULT_MODEL, TrainConfig  # noqa: E402

__all__ = ["DEFAULT_MODEL", "TextClassifier", "TrainConfig", "__version__"]


def __getattr__(name: str):
    if name == "TextClassifier":
        # deferred: TextClassifier pulls in torch and transformers; import it only when asked for
        from loralab.api import TextClassifier

        return TextClassifier
    raise AttributeError(name)
