"""The Python API: :class:`TextClassifier`, with scikit-learn's conventions."""

from __future__ import annotations

import dataclasses
import inspect
import json
import numbers
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from loralab.config import DEFAULT_MODEL, TrainConfig
from loralab.data.dataset import DataSplits, LabelledTexts, stratified_split
from loralab.data.readers import check_texts, is_missing
from loralab.errors import DataError, RunError, closest
from loralab.evaluation.evaluate import evaluate_classifier
from loralab.evaluation.metrics import validation_scores
from loralab.methods import FitResult, get_method, load_saved_classifier
from loralab.runs.execute import execute
from loralab.runs.guards import quality_warnings, warn_about
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
    array(['positive'], dtype='<U8')
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
        """Train on texts ``X`` and labels ``y`` of one type (strings, ints, bools, whole floats).

        ``classes_`` keeps the labels' type, so ``predict`` returns values comparable with ``y``.
        Without ``validation``, a stratified ``validation_fraction`` of the data is held out
        to pick the best epoch.
        """
        texts = _as_texts(X, "training texts")
        labels = _as_labels(y, "training labels")
        if not texts:
            raise DataError("fit got no training texts; give it texts and their labels.")
        if len(texts) != len(labels):
            raise DataError(f"{len(texts)} texts but {len(labels)} labels; they must pair up.")
        check_classification_targets(labels)
        classes = np.asarray(np.unique(labels))
        if len(classes) < 2:
            raise DataError(
                f"The training labels hold a single class ({classes[0]!r}); a classifier needs two."
            )
        names = [str(c) for c in classes]
        if len(set(names)) != len(names):
            raise DataError(f"The labels {list(classes)} are distinct values with the same text form.")
        name_of = dict(zip(classes.tolist(), names, strict=True))
        train = LabelledTexts(texts, [name_of[v] for v in labels.tolist()])
        if validation is not None:
            pair = isinstance(validation, tuple | list) and len(validation) == 2
            if not pair or isinstance(validation[0], str):
                raise ValueError("validation must be a pair (texts, labels).")
            held_texts = _as_texts(validation[0], "validation texts")
            held_labels = _as_labels(validation[1], "validation labels").tolist()
            if len(held_texts) != len(held_labels):
                raise DataError(
                    f"validation holds {len(held_texts)} texts but {len(held_labels)} labels; "
                    "they must pair up."
                )
            unknown = sorted({str(v) for v in held_labels if v not in name_of})
            if unknown:
                raise DataError(f"Validation label(s) {', '.join(unknown)} are not among {names}.")
            held = LabelledTexts(held_texts, [name_of[v] for v in held_labels])
        elif self.validation_fraction > 0 and len(train) >= 10 * len(classes):
            train, held, _ = stratified_split(train, self.validation_fraction, self.seed)
        else:
            held = LabelledTexts([], [])
        # The internal class names follow the order of ``classes_``, so probability columns
        # line up with it without reordering.
        splits = DataSplits(train, held, LabelledTexts([], []), names, source="python")
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
        self.classes_ = classes
        if len(held) and self.classifier_.parameter_counts()[0]:
            self._warn_if_useless(held, train)
        return self

    def _warn_if_useless(self, held: LabelledTexts, train: LabelledTexts) -> None:
        """Warn (:class:`~loralab.runs.guards.ModelQualityWarning`) when the model is no better
        on the held-out texts than a trivial rule."""
        metrics = {"validation": evaluate_classifier(self.classifier_, held).metrics.to_dict()}
        # Point at the user's call to fit(), two frames up.
        warn_about(quality_warnings(metrics, train.label_counts()), stacklevel=3)

    def _fitted(self):
        check_is_fitted(self, "classifier_")
        return self.classifier_

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        """Probabilities ``(N, n_classes)``, columns in the order of ``classes_``."""
        return self._fitted().predict_proba(_as_texts(X, "texts to classify"))

    def predict(self, X: Sequence[str]) -> np.ndarray:
        """Predicted classes, an array of values taken from ``classes_``."""
        probs = self.predict_proba(X)
        return self.classes_[probs.argmax(axis=1)]

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write a run folder like ``loralab train`` does: config, manifest, history, metrics
        and predictions on the held-out texts, the model (reloaded and checked) and its model
        card. The manifest records ``classes_`` as given, so :meth:`load` restores their type.

        A folder that already holds files is refused unless ``overwrite``, as ``loralab train``
        refuses it without ``--overwrite``; the run replaced is kept until the new one is saved."""
        classifier = self._fitted()
        folder = Path(path)
        if not overwrite and folder.is_dir() and any(folder.iterdir()):
            what = "a run" if (folder / "manifest.json").exists() else "files"
            raise RunError(f"{folder}: already holds {what}; choose another path or pass overwrite=True.")
        fitted = getattr(self, "training_", None) or FitResult(classifier)
        empty = LabelledTexts([], [])
        splits = getattr(self, "splits_", None) or DataSplits(
            empty, empty, empty, list(classifier.labels), source="python"
        )
        return execute(
            classifier.config,
            splits,
            path,
            overwrite=overwrite,
            progress=False,
            fitted=fitted,
            manifest={"classes": self.classes_.tolist()},
        ).folder

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
        estimator.classes_ = _saved_classes(path, classifier.labels)
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


def _as_texts(X: Any, where: str) -> list[str]:
    """A list of texts from a list, a 1-D array, a Series or a one-column frame or array;
    a missing (None, NaN) or empty text is refused by its position, counted from 0."""
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
    texts = array.tolist()
    check_texts(texts, where, "text at position", first=0, fix="remove it or give it a text")
    return [str(t) for t in texts]


def _as_labels(y: Any, where: str) -> np.ndarray:
    """Labels as a 1-D array of one type; a missing label, labels of different types or
    fractional numbers (a regression target) are refused in one sentence."""
    if isinstance(y, str):
        raise ValueError(f"The {where} are a single string; give one label per text, in a list.")
    values = column_or_1d(np.asarray(y, dtype=object), warn=True).tolist()
    for position, value in enumerate(values):
        if is_missing(value):
            raise DataError(
                f"{where}: the label at position {position} is missing ({value!r}); every text needs one."
            )
    kinds: dict[str, Any] = {}
    for value in values:
        kinds.setdefault(_kind(value), value)
    if len(kinds) > 1:
        (kind_a, a), (kind_b, b) = list(kinds.items())[:2]
        raise DataError(
            f"The {where} mix types ({a!r} is {kind_a}, {b!r} is {kind_b}); give every label the same type."
        )
    fractional = [v for v in dict.fromkeys(values) if isinstance(v, float) and not v.is_integer()]
    if fractional:
        examples = " and ".join(repr(v) for v in fractional[:2])
        # scikit-learn's words for this mistake, which its estimator checks look for.
        raise ValueError(
            f"Unknown label type: continuous; the {where} are fractional numbers such as {examples}, "
            "a regression target, whereas a classifier takes classes (strings, ints, bools or "
            "whole-number floats)."
        )
    # An array or Series keeps its dtype; a list of one type becomes an array of that type.
    return column_or_1d(np.asarray(y), warn=True) if hasattr(y, "dtype") else np.asarray(values)


def _kind(value: Any) -> str:
    """The kind of a label, where numpy's and Python's scalars of one kind count as one."""
    if isinstance(value, bool | np.bool_):
        return "a bool"
    if isinstance(value, numbers.Integral):
        return "an int"
    if isinstance(value, numbers.Real):
        return "a float"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


def _saved_classes(path: Path, labels: list[str]) -> np.ndarray:
    """The original label values recorded by :meth:`TextClassifier.save`, else the names."""
    manifest = path / "manifest.json"
    if manifest.exists():
        saved = json.loads(manifest.read_text()).get("classes")
        if saved is not None and [str(c) for c in saved] == list(labels):
            return np.asarray(saved)
    return np.asarray(labels)
