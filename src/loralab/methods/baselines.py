"""Classic baselines: the majority class, and TF-IDF features with logistic regression or
multinomial naive Bayes.

The majority class is the floor of every comparison: a method that does not beat it has
learned nothing usable, which a bare accuracy of 0.70 on a 70/30 data set hides.

The TF-IDF baselines are scikit-learn estimators, saved without pickle: the vocabulary and settings go to
JSON and the learned arrays to safetensors, so loading a run never executes code from a file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import MultinomialNB

from loralab.config import TrainConfig
from loralab.data import DataSplits
from loralab.errors import RunError
from loralab.methods.base import Classifier, FitResult, Method, register, sample_weights

BASELINE_FILE = "baseline.json"
ARRAYS_FILE = "baseline.safetensors"


class MajorityClassifier(Classifier):
    """Every text gets the training set's class frequencies; the most frequent class wins."""

    def __init__(self, prior: np.ndarray, labels: list[str], config: TrainConfig, method: str) -> None:
        self.prior = prior  # (num_labels,) training class frequencies, in the order of labels
        self.labels = labels
        self.config = config
        self.method = method

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        return np.tile(self.prior, (len(texts), 1))

    def parameter_counts(self) -> tuple[int, int]:
        return 0, 0

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._write_info(folder, {"class_prior": self.prior.tolist()})


@register
class MajorityClass(Method):
    """Always the most frequent training class: the accuracy a classifier must beat."""

    name = "majority"
    summary = "always the most frequent training class (the floor every method must beat)"
    cost_rank = 0
    uses_encoder = False
    reference = True
    ladder_position = 0  # the floor: shown first
    default_epochs = 0
    default_lr = 0.0

    def fit(self, splits: DataSplits, config: TrainConfig, *, progress: bool = True) -> FitResult:
        counts = splits.train.label_counts()
        prior = np.array([counts.get(label, 0) for label in splits.labels], dtype=np.float64)
        classifier = MajorityClassifier(prior / prior.sum(), splits.labels, config, self.name)
        return FitResult(classifier)

    def load(self, folder: Path, info: dict) -> Classifier:
        config = TrainConfig.from_dict(info["config"], strict=False)
        if "class_prior" not in info:
            raise RunError(f"{folder}: the saved majority-class model has no class_prior.")
        return MajorityClassifier(np.array(info["class_prior"]), list(info["labels"]), config, self.name)


def make_vectorizer(config: TrainConfig) -> TfidfVectorizer:
    return TfidfVectorizer(
        ngram_range=(1, config.tfidf_ngram_max),
        max_features=config.tfidf_max_features,
        sublinear_tf=config.tfidf_sublinear_tf,
        lowercase=True,
    )


class TfidfClassifier(Classifier):
    """A fitted TF-IDF vectorizer and a linear model over it."""

    def __init__(
        self, vectorizer, estimator, labels: list[str], config: TrainConfig, owner: TfidfMethod
    ) -> None:
        self.vectorizer = vectorizer
        self.estimator = estimator
        self.labels = labels
        self.method = owner.name
        self.config = config
        self.owner = owner

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, len(self.labels)))
        return self.estimator.predict_proba(self.vectorizer.transform(list(texts)))

    def parameter_counts(self) -> tuple[int, int]:
        arrays = self.owner_arrays()
        learned = sum(v.size for k, v in arrays.items() if k != "idf")
        return learned, learned

    def owner_arrays(self) -> dict[str, np.ndarray]:
        return self.owner.arrays(self.estimator) | {"idf": self.vectorizer.idf_}

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in self.owner_arrays().items()}
        save_file(arrays, str(folder / ARRAYS_FILE))
        vocabulary = {term: int(i) for term, i in self.vectorizer.vocabulary_.items()}
        (folder / BASELINE_FILE).write_text(json.dumps({"vocabulary": vocabulary}))
        self._write_info(folder, {})


class TfidfMethod(Method):
    """Shared fit/load; subclasses choose the linear model and which arrays it learns."""

    uses_encoder = False
    default_epochs = 0
    default_lr = 0.0
    cost_rank = 1
    single_file_export = True

    def read_settings(self, settings: dict) -> dict:
        return with_fixed_c(settings)

    def estimator(self, config: TrainConfig):
        raise NotImplementedError

    def arrays(self, estimator) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def restore(self, config: TrainConfig, arrays: dict[str, np.ndarray], n_classes: int):
        raise NotImplementedError

    def fit(self, splits: DataSplits, config: TrainConfig, *, progress: bool = True) -> FitResult:
        start = time.perf_counter()
        vectorizer = make_vectorizer(config)
        features = vectorizer.fit_transform(splits.train.texts)
        label2id = splits.label2id
        labels = [label2id[y] for y in splits.train.labels]
        estimator = self.estimator(config).fit(features, labels, sample_weight=sample_weights(config, labels))
        return FitResult(
            TfidfClassifier(vectorizer, estimator, splits.labels, config, self),
            train_seconds=time.perf_counter() - start,
            vocabulary_size=int(features.shape[1]),
        )

    def load(self, folder: Path, info: dict) -> Classifier:
        config = TrainConfig.from_dict(info["config"], strict=False)
        labels = list(info["labels"])
        for name in (BASELINE_FILE, ARRAYS_FILE):
            if not (folder / name).exists():
                raise RunError(f"{folder}: the saved baseline is incomplete ({name} is missing).")
        arrays = load_file(str(folder / ARRAYS_FILE))
        vectorizer = make_vectorizer(config)
        vectorizer.vocabulary_ = json.loads((folder / BASELINE_FILE).read_text())["vocabulary"]
        vectorizer.idf_ = arrays.pop("idf")
        estimator = self.restore(config, arrays, len(labels))
        estimator.classes_ = np.arange(len(labels))
        estimator.n_features_in_ = len(vectorizer.vocabulary_)
        return TfidfClassifier(vectorizer, estimator, labels, config, self)


def fixed_c(asked: float | None) -> float:
    """The inverse regularisation strength asked for (``--baseline-c``), or 1.0 (scikit-learn's default)."""
    return 1.0 if asked is None else asked


def with_fixed_c(settings: dict) -> dict:
    """A config dict with ``baseline_c`` as a fixed-C model reads it (unset is 1.0)."""
    return {**settings, "baseline_c": fixed_c(settings.get("baseline_c"))}


@register
class TfidfLogReg(TfidfMethod):
    """Word and bigram TF-IDF with L2-regularised logistic regression (seed 002 task 10)."""

    name = "tfidf-logreg"
    summary = "TF-IDF n-grams + logistic regression (scikit-learn)"
    ladder_position = 10

    def estimator(self, config):
        return LogisticRegression(C=fixed_c(config.baseline_c), max_iter=2000, random_state=config.seed)

    def arrays(self, estimator):
        return {"coef": estimator.coef_, "intercept": estimator.intercept_}

    def restore(self, config, arrays, n_classes):
        estimator = self.estimator(config)
        estimator.coef_, estimator.intercept_ = arrays["coef"], arrays["intercept"]
        return estimator


@register
class TfidfNaiveBayes(TfidfMethod):
    """TF-IDF n-grams with multinomial naive Bayes (seed 002 task 10)."""

    name = "tfidf-nb"
    summary = "TF-IDF n-grams + multinomial naive Bayes (scikit-learn)"
    ladder_position = 11

    def estimator(self, config):
        return MultinomialNB(alpha=1.0 / fixed_c(config.baseline_c))

    def arrays(self, estimator):
        return {
            "feature_log_prob": estimator.feature_log_prob_,
            "class_log_prior": estimator.class_log_prior_,
        }

    def restore(self, config, arrays, n_classes):
        estimator = self.estimator(config)
        estimator.feature_log_prob_ = arrays["feature_log_prob"]
        estimator.class_log_prior_ = arrays["class_log_prior"]
        return estimator
