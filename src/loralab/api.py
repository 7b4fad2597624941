"""The Python API: :class:`TextClassifier`, with scikit-learn's conventions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from loralab.config import DEFAULT_MODEL, TrainConfig
from loralab.data.dataset import DataSplits, LabelledTexts, stratified_split
from loralab.errors import DataError


class TextClassifier(ClassifierMixin, BaseEstimator):
    """Train a text classifier by adapting a pretrained encoder.

    ``__init__`` only stores its arguments (so ``sklearn.base.clone`` and ``get_params`` work);
    ``fit`` returns ``self``; learned state ends in ``_``.

    >>> clf = TextClassifier(method="lora", lora_rank=8).fit(texts, labels)  # doctest: +SKIP
    >>> clf.predict(["a charming mess"])  # doctest: +SKIP
    array(['positive'], dtype='<U8')
    >>> clf.save("runs/rt-lora"); TextClassifier.load("runs/rt-lora")  # doctest: +SKIP
    """

    def __init__(
        self,
        method: str = "lora",
        model: str = DEFAULT_MODEL,
        *,
        lr: float | None = None,
        epochs: int | None = None,
        batch_size: int | None = None,
        max_length: int = 128,
        lora_rank: int = 8,
        lora_alpha: float = 16.0,
        lora_dropout: float = 0.1,
        target_modules: list[str] | None = None,
        patience: int | None = None,
        seed: int = 42,
        validation_fraction: float = 0.1,
        progress: bool = False,
    ) -> None:
        self.method = method
        self.model = model
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.max_length = max_length
        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.target_modules = target_modules
        self.patience = patience
        self.seed = seed
        self.validation_fraction = validation_fraction
        self.progress = progress

    def _config(self) -> TrainConfig:
        return TrainConfig(
            method=self.method,
            model=self.model,
            lr=self.lr,
            epochs=self.epochs,
            batch_size=self.batch_size,
            max_length=self.max_length,
            lora_rank=self.lora_rank,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            target_modules=self.target_modules,
            patience=self.patience,
            seed=self.seed,
        )

    def __sklearn_tags__(self):
        # The input is a sequence of texts, as for scikit-learn's text vectorizers: the
        # numeric 2-D checks of ``check_estimator`` do not apply.
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags

    def fit(
        self,
        X: Sequence[str],
        y: Sequence[Any],
        validation: tuple[Sequence[str], Sequence[Any]] | None = None,
    ) -> TextClassifier:
        """Train on texts ``X`` and labels ``y`` of any hashable type (ints, strings, bools).

        ``classes_`` keeps the labels' type, so ``predict`` returns values comparable with ``y``.
        Without ``validation``, a stratified ``validation_fraction`` of the data is held out
        to pick the best epoch.
        """
        from loralab.methods import get_method

        texts = _as_texts(X)
        y = column_or_1d(np.asarray(y, dtype=None if _uniform(y) else object), warn=True)
        if len(texts) != len(y):
            raise DataError(f"{len(texts)} texts but {len(y)} labels; they must pair up.")
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise DataError(
                f"The training labels hold a single class ({classes[0]!r}); a classifier needs two."
            )
        names = [str(c) for c in classes]
        if len(set(names)) != len(names):
            raise DataError(f"The labels {list(classes)} are distinct values with the same text form.")
        name_of = dict(zip(classes.tolist(), names, strict=True))
        train = LabelledTexts(texts, [name_of[v] for v in y.tolist()])
        if validation is not None:
            held_labels = np.asarray(validation[1]).tolist()
            unknown = sorted({str(v) for v in held_labels if v not in name_of})
            if unknown:
                raise DataError(f"Validation label(s) {', '.join(unknown)} are not among {names}.")
            held = LabelledTexts(_as_texts(validation[0]), [name_of[v] for v in held_labels])
        elif self.validation_fraction > 0 and len(train) >= 10 * len(classes):
            train, held, _ = stratified_split(train, self.validation_fraction, self.seed)
        else:
            held = LabelledTexts([], [])
        # The internal class names follow the order of ``classes_``, so probability columns
        # line up with it without reordering.
        splits = DataSplits(train, held, LabelledTexts([], []), names, source="python")
        config = self._config()
        self.classifier_, self.training_ = get_method(config.method).fit(
            splits, config, progress=self.progress
        )
        self.classes_ = classes
        if len(held) and self.classifier_.parameter_counts()[0]:
            self._warn_if_useless(held, train)
        return self

    def _warn_if_useless(self, held: LabelledTexts, train: LabelledTexts) -> None:
        """Warn (:class:`~loralab.runs.guards.ModelQualityWarning`) when the model is no better
        on the held-out texts than a trivial rule."""
        from loralab.evaluation.metrics import classification_metrics
        from loralab.runs.guards import quality_warnings, warn_about

        labels = self.classifier_.labels
        predicted = [labels[i] for i in self.classifier_.predict_proba(held.texts).argmax(axis=1)]
        metrics = {"validation": classification_metrics(held.labels, predicted, labels)}
        # Point at the user's call to fit(), two frames up.
        warn_about(quality_warnings(metrics, train.label_counts()), stacklevel=3)

    def _fitted(self):
        check_is_fitted(self, "classifier_")
        return self.classifier_

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        """Probabilities ``(N, n_classes)``, columns in the order of ``classes_``."""
        return self._fitted().predict_proba(_as_texts(X))

    def predict(self, X: Sequence[str]) -> np.ndarray:
        """Predicted classes, an array of values taken from ``classes_``."""
        probs = self.predict_proba(X)
        return self.classes_[probs.argmax(axis=1)]

    def save(self, path: str | Path) -> Path:
        """Write a run folder (config, manifest, model) that the CLI can also use."""
        from loralab.runs.card import write_model_card
        from loralab.runs.folder import RunFolder

        classifier = self._fitted()
        folder = RunFolder(path)
        folder.create(overwrite=True)
        folder.start(
            classifier.config.to_dict(),
            {"method": classifier.method, "data": {"source": "python"}, "classes": self.classes_.tolist()},
        )
        folder.save_model(classifier)
        trainable, total = classifier.parameter_counts()
        folder.finish("completed", trainable_parameters=trainable, total_parameters=total)
        write_model_card(folder.path)
        return folder.path

    @classmethod
    def load(cls, path: str | Path) -> TextClassifier:
        """Load a run folder (or its ``model/`` folder) saved by ``save`` or ``loralab train``."""
        from loralab.methods import load_saved_classifier
        from loralab.runs.train import load_run

        path = Path(path)
        classifier = load_saved_classifier(path) if (path / "loralab.json").exists() else load_run(path)
        config = classifier.config
        estimator = cls(
            method=classifier.method,
            model=config.model,
            lr=config.lr,
            epochs=config.epochs,
            batch_size=config.batch_size,
            max_length=config.max_length,
            lora_rank=config.lora_rank,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=config.target_modules,
            patience=config.patience,
            seed=config.seed,
        )
        estimator.classifier_ = classifier
        estimator.classes_ = _saved_classes(path, classifier.labels)
        return estimator


def _uniform(values: Any) -> bool:
    """Whether ``values`` share one Python type (else numpy would coerce ints to strings)."""
    if isinstance(values, np.ndarray) or hasattr(values, "dtype"):
        return True
    return len({type(v) for v in values}) <= 1


def _as_texts(X: Any) -> list[str]:
    """A list of texts from a list, a 1-D array, a Series or a one-column frame or array."""
    if hasattr(X, "columns"):  # a pandas DataFrame
        if X.shape[1] != 1:
            raise ValueError(
                f"TextClassifier takes one column of texts; got a frame with columns {list(X.columns)}."
            )
        X = X.iloc[:, 0]
    if isinstance(X, str):
        raise ValueError("TextClassifier takes a sequence of texts, not a single string; wrap it in a list.")
    array = np.asarray(X, dtype=object)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"TextClassifier takes a 1-D sequence of texts; got shape {array.shape}.")
    return [str(t) for t in array.tolist()]


def _saved_classes(path: Path, labels: list[str]) -> np.ndarray:
    """The original label values recorded by :meth:`TextClassifier.save`, else the names."""
    manifest = path / "manifest.json"
    if manifest.exists():
        saved = json.loads(manifest.read_text()).get("classes")
        if saved is not None and [str(c) for c in saved] == list(labels):
            return np.asarray(saved)
    return np.asarray(labels)
