"""The Python API: :class:`TextClassifier`, with scikit-learn's conventions."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from loralab.config import DEFAULT_MODEL, TrainConfig
from loralab.data.dataset import DataSplits, LabelledTexts, sort_labels, stratified_split
from loralab.errors import DataError, RunError, closest
from loralab.evaluation.metrics import validation_scores
from loralab.methods import FitResult, get_method, load_saved_classifier
from loralab.runs.execute import execute
from loralab.runs.train import load_run
from loralab.training.fit import TrainingHooks, fit_method


class TextClassifier(ClassifierMixin, BaseEstimator):
    """Train a text classifier by adapting a pretrained encoder.

    Every field of :class:`~loralab.config.TrainConfig` that the command line exposes is a
    keyword argument here too (``lr``, ``epochs``, ``lora_rank``, ``pooling``, …), with the
    same default; ``validation_fraction`` and ``progress`` belong to ``fit``. ``__init__``
    only stores its arguments (so ``sklearn.base.clone`` and ``get_params`` work); ``fit``
    returns ``self``; learned state ends in ``_``.

    >>> clf = TextClassifier(method="lora", lora_rank=8).fit(texts, labels)  # doctest: +SKIP
    >>> clf.predict(["a charming mess"])  # doctest: +SKIP
    ['positive']
    >>> clf.save("runs/rt-lora"); TextClassifier.load("runs/rt-lora")  # doctest: +SKIP
    """

    def __init__(
        self,
        method: str = "lora",
        model: str = DEFAULT_MODEL,
        *,
        validation_fraction: float = 0.1,
        progress: bool = False,
        **settings: Any,
    ) -> None:
        # The settings are TrainConfig's fields; the signature scikit-learn reads lists them
        # one by one (see _init_signature), so they are not written out a second time here.
        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            raise TypeError(
                f"TextClassifier got unexpected keyword argument(s) {', '.join(unknown)}"
                f"{closest(unknown[0], list(SETTINGS))}."
            )
        self.method = method
        self.model = model
        for name, default in SETTINGS.items():
            setattr(self, name, settings.get(name, default))
        self.validation_fraction = validation_fraction
        self.progress = progress

    def _config(self) -> TrainConfig:
        values = {name: getattr(self, name) for name in ("method", "model", *SETTINGS)}
        return TrainConfig(**values)

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[object],
        validation: tuple[Sequence[str], Sequence[object]] | None = None,
    ) -> TextClassifier:
        """Train on ``texts`` and ``labels`` (class names). Without ``validation``, a stratified
        ``validation_fraction`` of the data is held out to pick the best epoch."""
        if len(texts) != len(labels):
            raise DataError(f"{len(texts)} texts but {len(labels)} labels; they must pair up.")
        train = LabelledTexts([str(t) for t in texts], [str(y) for y in labels])
        classes = sort_labels(set(train.labels))
        if len(classes) < 2:
            raise DataError(
                f"The training labels hold a single class ('{classes[0]}'); a classifier needs two."
            )
        if validation is not None:
            held = LabelledTexts([str(t) for t in validation[0]], [str(y) for y in validation[1]])
        elif self.validation_fraction > 0 and len(train) >= 10 * len(classes):
            train, held, _ = stratified_split(train, self.validation_fraction, self.seed)
        else:
            held = LabelledTexts([], [])
        splits = DataSplits(train, held, LabelledTexts([], []), classes, source="python")
        config = self._config()
        self.training_ = fit_method(
            get_method(config.method),
            splits,
            config,
            validation_scores=validation_scores,
            hooks=TrainingHooks(progress=self.progress),
        )
        self.classifier_ = self.training_.classifier
        self.splits_ = splits
        self.classes_ = np.array(classes, dtype=object)
        return self

    def _fitted(self):
        if not hasattr(self, "classifier_"):
            raise RunError("This TextClassifier is not fitted yet; call fit() or TextClassifier.load().")
        return self.classifier_

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities ``(N, n_classes)``, columns in the order of ``classes_``."""
        return self._fitted().predict_proba([str(t) for t in texts])

    def predict(self, texts: Sequence[str]) -> list[str]:
        """Class names."""
        return self._fitted().predict([str(t) for t in texts])

    def save(self, path: str | Path) -> Path:
        """Write a run folder like ``loralab train`` does: config, manifest, history, metrics
        and predictions on the held-out texts, and the model, reloaded and checked."""
        classifier = self._fitted()
        fitted = getattr(self, "training_", None) or FitResult(classifier)
        empty = LabelledTexts([], [])
        splits = getattr(self, "splits_", None) or DataSplits(
            empty, empty, empty, list(classifier.labels), source="python"
        )
        return execute(classifier.config, splits, path, overwrite=True, progress=False, fitted=fitted).folder

    @classmethod
    def load(cls, path: str | Path) -> TextClassifier:
        """Load a run folder (or its ``model/`` folder) saved by ``save`` or ``loralab train``."""
        path = Path(path)
        classifier = load_saved_classifier(path) if (path / "loralab.json").exists() else load_run(path)
        config = classifier.config
        estimator = cls(
            method=classifier.method,
            model=config.model,
            **{name: getattr(config, name) for name in SETTINGS},
        )
        estimator.classifier_ = classifier
        estimator.classes_ = np.array(classifier.labels, dtype=object)
        return estimator


# TrainConfig's exposed fields besides method and model, with their defaults.
SETTINGS: dict[str, Any] = {
    f.name: f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
    for f in dataclasses.fields(TrainConfig)
    if f.metadata.get("help") and f.name not in ("method", "model")
}


def _init_signature() -> inspect.Signature:
    """``__init__``'s signature with every setting as an explicit keyword argument, which is
    what scikit-learn's ``get_params`` (and so ``clone`` and grid searches) read."""
    own = inspect.signature(TextClassifier.__init__, eval_str=True)
    hints = typing.get_type_hints(TrainConfig)
    fixed = [p for p in own.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    generated = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hints[name])
        for name, default in SETTINGS.items()
    ]
    return own.replace(parameters=fixed + generated)


TextClassifier.__init__.__signature__ = _init_signature()  # type: ignore[attr-defined]
