"""Linear models on frozen encoder features: logistic regression, linear SVM, ridge (seed 000,
seed 004 e13). Features are standardised first (the linear models need comparable scales) and
come from the on-disk feature cache, so the three models together cost one encoder pass.

Features are pooled the way the model was trained to give sentence vectors (``--pooling auto``,
see :mod:`loralab.models.pooling`); the saved configuration holds the resolved pooling, so a
reloaded model pools exactly as the trained one did.

A fitted model is four arrays (scaler mean and scale, coefficients, intercept), saved to
safetensors; scores become probabilities through a sigmoid (two classes) or a softmax. For the
SVM and ridge these are monotone scores, not calibrated probabilities.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from scipy.special import expit
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, RidgeClassifierCV
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from loralab.config import TrainConfig
from loralab.data import DataSplits
from loralab.errors import RunError
from loralab.methods.base import Classifier, FitResult, Method, register, sample_weights
from loralab.methods.baselines import fixed_c, with_fixed_c
from loralab.methods.features import (
    ENCODER_PASSES,
    cached_features,
    encode_texts,
    first_encoding_seconds,
)
from loralab.models.inference import softmax
from loralab.models.pooling import choose_pooling

ARRAYS_FILE = "linear.safetensors"
# embed-logreg's regularisation, chosen on the training texts: the candidates and the folds.
C_GRID = np.logspace(-5, 2, 15)
C_FOLDS = 5


def scores_to_probabilities(scores: np.ndarray) -> np.ndarray:
    if scores.shape[1] == 1:  # binary: one score for the second class
        positive = expit(scores[:, 0])  # no overflow warning for large margins
        return np.stack([1.0 - positive, positive], axis=1)
    return softmax(scores)


class EmbeddingClassifier(Classifier):
    def __init__(
        self, arrays: dict[str, np.ndarray], labels, config: TrainConfig, owner: Method, cache: bool
    ):
        self.arrays = arrays
        self.labels = labels
        self.config = config
        self.method = owner.name
        self.owner = owner
        self.cache = cache  # evaluation of fixed splits reads the feature cache; serving encodes

    def features(self, texts: Sequence[str]) -> np.ndarray:
        fetch = cached_features if self.cache else encode_texts
        return fetch(self.config.model, list(texts), self.config.pooling, self.config.max_length)

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, len(self.labels)))
        a = self.arrays
        scaled = (self.features(texts) - a["mean"]) / a["scale"]  # (N, H)
        return scores_to_probabilities(scaled @ a["coef"].T + a["intercept"])

    def parameter_counts(self) -> tuple[int, int]:
        learned = int(self.arrays["coef"].size + self.arrays["intercept"].size)
        return learned, learned

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: np.ascontiguousarray(v) for k, v in self.arrays.items()}, str(folder / ARRAYS_FILE))
        self._write_info(folder, {})


class EmbeddingMethod(Method):
    uses_encoder = True
    default_epochs = 0
    default_lr = 0.0
    cost_rank = 2

    def estimator(self, config: TrainConfig, labels: np.ndarray):
        """An unfitted scikit-learn linear model for the class ids ``labels`` of the training texts."""
        raise NotImplementedError

    def check(self, config: TrainConfig) -> None:
        super().check(config)
        choose_pooling(config.model, config.pooling)  # a pooling loralab cannot compute fails here

    def fit(self, splits: DataSplits, config: TrainConfig, *, progress: bool = True) -> FitResult:
        start = time.perf_counter()
        pooling = choose_pooling(config.model, config.pooling)
        config = config.replace(pooling=pooling.pooling)
        passes_before = ENCODER_PASSES["texts"]
        features = cached_features(config.model, splits.train.texts, config.pooling, config.max_length)
        encoded = time.perf_counter()
        from_cache = ENCODER_PASSES["texts"] == passes_before
        scaler = StandardScaler().fit(features)
        label2id = splits.label2id
        labels = np.array([label2id[y] for y in splits.train.labels])
        estimator = self.estimator(config, labels).fit(
            scaler.transform(features), labels, sample_weight=sample_weights(config, labels)
        )
        details = {}
        if isinstance(estimator, LogisticRegressionCV):
            folds = estimator.cv.get_n_splits()
            details["baseline_c"] = {
                "c": float(estimator.C_),
                "source": f"{folds}-fold cross-validation (log loss) on the training texts, "
                f"{len(C_GRID)} values from {C_GRID[0]:g} to {C_GRID[-1]:g}",
            }
        arrays = {
            "mean": scaler.mean_.astype(np.float32),
            "scale": scaler.scale_.astype(np.float32),
            "coef": np.atleast_2d(estimator.coef_).astype(np.float32),
            "intercept": np.atleast_1d(estimator.intercept_).astype(np.float32),
        }
        return FitResult(
            EmbeddingClassifier(arrays, splits.labels, config, self, cache=True),
            train_seconds=time.perf_counter() - start,
            features={
                "texts": len(splits.train),
                "source": "cache" if from_cache else "encoder",
                "seconds": encoded - start,
                "pooling": pooling.pooling,
                "pooling_source": pooling.source,
                "first_encoding_seconds": first_encoding_seconds(
                    config.model, splits.train.texts, pooling.pooling, config.max_length
                ),
            },
            details=details,
        )

    def load(self, folder: Path, info: dict) -> Classifier:
        config = TrainConfig.from_dict(info["config"], strict=False)
        if not (folder / ARRAYS_FILE).exists():
            raise RunError(f"{folder}: the saved linear model ({ARRAYS_FILE}) is missing.")
        return EmbeddingClassifier(
            load_file(str(folder / ARRAYS_FILE)), list(info["labels"]), config, self, cache=False
        )


@register
class EmbedLogReg(EmbeddingMethod):
    name = "embed-logreg"
    summary = "logistic regression on frozen encoder features"
    ladder_position = 20

    def read_settings(self, settings: dict) -> dict:
        return dict(settings)  # --baseline-c unset means cross-validated, not 1.0

    def estimator(self, config, labels):
        """Logistic regression; unless ``--baseline-c`` is given, its C is chosen by stratified
        cross-validation on the training texts (never on validation, which judges the methods).

        Standardised sentence vectors have hundreds of comparable dimensions, and scikit-learn's
        C = 1 barely regularises them: on rotten_tomatoes and SST-2 the cross-validated C
        (0.003–0.3) scored 0.4–3.9 points higher on test than C = 1, from 16 texts per class to
        the whole split. With fewer than two texts in some class there is nothing to validate
        on and C is 1."""
        folds = min(C_FOLDS, int(np.bincount(labels).min()))
        if config.baseline_c is not None or folds < 2:
            return LogisticRegression(C=fixed_c(config.baseline_c), max_iter=3000, random_state=config.seed)
        return LogisticRegressionCV(
            Cs=C_GRID,
            l1_ratios=(0.0,),  # L2 only, as the fixed-C model (and scikit-learn's next default)
            cv=StratifiedKFold(folds, shuffle=True, random_state=config.seed),
            scoring="neg_log_loss",  # smoother than accuracy on a few texts per fold
            max_iter=3000,
            random_state=config.seed,
            use_legacy_attributes=False,
        )


@register
class EmbedSVM(EmbeddingMethod):
    name = "embed-svm"
    summary = "linear SVM on frozen encoder features"

    def read_settings(self, settings: dict) -> dict:
        return with_fixed_c(settings)

    def estimator(self, config, labels):
        return LinearSVC(C=fixed_c(config.baseline_c), max_iter=10000, random_state=config.seed)


@register
class EmbedRidge(EmbeddingMethod):
    name = "embed-ridge"
    summary = "ridge classifier with cross-validated regularisation on frozen features"

    def estimator(self, config, labels):
        return RidgeClassifierCV(alphas=np.logspace(-2, 4, 13))
