"""TextClassifier follows scikit-learn's estimator contract.

``check_estimator`` runs nothing on an estimator whose input is text (``two_d_array`` is
False, as for scikit-learn's own vectorizers), so the API checks that need no numeric
matrix are called one by one, and the data checks that matter for a classifier (classes
keep their type, fit is idempotent, order and subset invariance, ``NotFittedError``) are
asserted on text. Skipped: the checks that feed random numeric 2-D arrays
(``check_fit2d_*``, ``check_n_features_in``, ``check_dtype_object``,
``check_classifiers_train`` …), since a matrix of floats is not a text classifier's input.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import estimator_checks

from loralab.api import TextClassifier
from tests.conftest import synthetic_frame

FAST = dict(method="tfidf-logreg", validation_fraction=0.0)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_frame(120, 4)


def int_labels(frame: pd.DataFrame) -> np.ndarray:
    return (frame["label"] == "positive").astype(int).to_numpy()


@pytest.mark.parametrize(
    "check",
    [
        "check_estimator_cloneable",
        "check_estimator_repr",
        "check_estimator_tags_renamed",
        "check_valid_tag_types",
        "check_no_attributes_set_in_init",
        "check_get_params_invariance",
        "check_set_params",
        "check_parameters_default_constructible",
    ],
)
def test_scikit_learn_api_checks_pass(check):
    getattr(estimator_checks, check)("TextClassifier", TextClassifier(**FAST))


def test_integer_labels_keep_their_type_and_score_works(frame):
    y = int_labels(frame)
    clf = TextClassifier(**FAST).fit(frame["text"], y)
    assert clf.classes_.tolist() == [0, 1] and clf.classes_.dtype.kind == "i"
    predicted = clf.predict(frame["text"])
    assert isinstance(predicted, np.ndarray) and predicted.dtype.kind == "i"
    assert set(predicted.tolist()) <= {0, 1}
    assert clf.score(frame["text"], y) > 0.9
    assert clf.predict_proba(frame["text"][:3]).shape == (3, 2)


@pytest.mark.parametrize(
    "labels", [["no", "yes"], [False, True], [3, 10, 2]], ids=["strings", "bools", "unsorted-ints"]
)
def test_classes_are_the_sorted_label_values(frame, labels):
    y = [labels[i % len(labels)] for i in range(len(frame))]
    clf = TextClassifier(**FAST).fit(frame["text"].tolist(), y)
    assert clf.classes_.tolist() == sorted(labels)
    assert set(clf.predict(frame["text"]).tolist()) <= set(labels)


def test_probability_columns_follow_classes(frame):
    y = np.where(frame["label"] == "positive", "pos", "neg")
    clf = TextClassifier(**FAST).fit(frame["text"], y)
    probs = clf.predict_proba(frame["text"])
    np.testing.assert_array_equal(clf.classes_[probs.argmax(axis=1)], clf.predict(frame["text"]))


def test_unfitted_estimator_raises_not_fitted_error():
    with pytest.raises(NotFittedError):
        TextClassifier(**FAST).predict(["a good film"])
    estimator_checks.check_estimators_unfitted("TextClassifier", TextClassifier(**FAST))


def test_continuous_targets_are_refused(frame):
    with pytest.raises(ValueError, match="Unknown label type"):
        TextClassifier(**FAST).fit(frame["text"], np.linspace(0, 1, len(frame)))


def test_fit_is_idempotent_and_invariant_to_order_and_subsets(frame):
    X, y = frame["text"].to_numpy(), int_labels(frame)
    clf = TextClassifier(**FAST)
    first = clf.fit(X, y).predict_proba(X)
    np.testing.assert_allclose(clf.fit(X, y).predict_proba(X), first)
    order = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_allclose(clf.predict_proba(X[order]), first[order])
    np.testing.assert_allclose(clf.predict_proba(X[:7]), first[:7])


def test_clone_cross_val_score_and_grid_search(frame):
    X, y = frame["text"], int_labels(frame)
    clf = TextClassifier(**FAST, seed=5)
    copy = clone(clf)
    assert copy.get_params() == clf.get_params() and not hasattr(copy, "classes_")
    scores = cross_val_score(clf, X, y, cv=3)
    assert scores.shape == (3,) and np.isfinite(scores).all() and scores.mean() > 0.8
    search = GridSearchCV(clf, {"method": ["tfidf-logreg", "tfidf-nb"]}, cv=2).fit(X, y)
    assert search.best_params_["method"] in {"tfidf-logreg", "tfidf-nb"}
    assert search.predict(X[:4]).dtype.kind == "i"


def test_pipeline_with_a_preprocessing_step(frame):
    lower = FunctionTransformer(lambda texts: [t.upper() for t in texts])
    pipeline = make_pipeline(lower, TextClassifier(**FAST)).fit(frame["text"], frame["label"])
    assert pipeline.score(frame["text"], frame["label"]) > 0.9
    # A one-column frame is a sequence of texts too (what a ColumnTransformer passes on).
    assert len(TextClassifier(**FAST).fit(frame[["text"]], frame["label"]).predict(frame[["text"]])) == 120


def test_saved_integer_classes_load_with_their_type(frame, tmp_path):
    y = int_labels(frame)
    clf = TextClassifier(**FAST).fit(frame["text"], y)
    again = TextClassifier.load(clf.save(tmp_path / "run"))
    assert again.classes_.tolist() == [0, 1]
    assert again.score(frame["text"], y) == clf.score(frame["text"], y)
