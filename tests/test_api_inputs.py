"""A mistake in what the Python API is given gets one sentence naming it, never a label for
something the user did not send, a traceback from scikit-learn, or a replaced run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loralab.api import TextClassifier
from loralab.data import load_data
from loralab.errors import DataError, RunError
from loralab.serving.predictor import Predictor
from tests.conftest import synthetic_frame

FAST = dict(method="tfidf-logreg", validation_fraction=0.0)


@pytest.fixture(scope="module")
def data() -> tuple[list[str], list[str]]:
    frame = synthetic_frame(60, 2)
    return frame["text"].tolist(), frame["label"].tolist()


@pytest.fixture(scope="module")
def fitted(data) -> TextClassifier:
    return TextClassifier(**FAST).fit(*data)


@pytest.fixture(params=["tfidf-logreg", "head"])
def estimator(request, tiny_bert) -> TextClassifier:
    return TextClassifier(method=request.param, model=str(tiny_bert), epochs=1, validation_fraction=0.0)


@pytest.mark.parametrize("missing", [None, np.nan, "", "  \n"], ids=["None", "NaN", "empty", "blank"])
def test_missing_or_empty_texts_are_refused_by_position(estimator, fitted, data, missing):
    texts, labels = data
    bad = [*texts[:2], missing, *texts[3:]]
    with pytest.raises(DataError, match=r"training texts: text at position 2 is (missing|empty)"):
        estimator.fit(bad, labels)
    with pytest.raises(DataError, match=r"validation texts: text at position 2 is (missing|empty)"):
        estimator.fit(texts, labels, validation=(bad[:10], labels[:10]))
    with pytest.raises(DataError, match=r"text at position 2 is (missing|empty)"):
        fitted.predict(["a good film", "a dull film", missing])
    with pytest.raises(DataError, match=r"text at position 0 is (missing|empty)"):
        fitted.predict_proba(pd.Series([missing, "a good film"], index=[5, 6]))


@pytest.mark.parametrize("missing", [None, np.nan], ids=["None", "NaN"])
def test_missing_labels_are_refused_by_position(estimator, data, missing):
    texts, labels = data
    with pytest.raises(DataError, match=r"training labels: the label at position 4 is missing"):
        estimator.fit(texts, [*labels[:4], missing, *labels[5:]])
    with pytest.raises(DataError, match=r"validation labels: the label at position 1 is missing"):
        estimator.fit(texts, labels, validation=(texts[:3], [labels[0], missing, labels[2]]))


def test_labels_of_mixed_types_are_refused_naming_two_of_them(estimator, data):
    texts, labels = data
    with pytest.raises(DataError, match=r"mix types \(1 is an int, 'positive' is a string\)"):
        estimator.fit(texts, [1 if i == 0 else label for i, label in enumerate(labels)])


def test_fractional_labels_are_a_regression_target_and_whole_floats_are_classes(estimator, data):
    texts, labels = data
    halves = [0.5 if label == "positive" else 1.5 for label in labels]
    with pytest.raises(ValueError, match=r"Unknown label type: continuous; .* as (0.5 and 1.5|1.5 and 0.5)"):
        estimator.fit(texts, halves)
    wholes = [1.0 if label == "positive" else 2.0 for label in labels]
    clf = TextClassifier(**FAST).fit(texts, wholes)
    assert clf.classes_.tolist() == [1.0, 2.0] and clf.classes_.dtype.kind == "f"
    assert set(clf.predict(texts).tolist()) <= {1.0, 2.0}


def test_no_texts_and_unpaired_texts_and_labels_are_refused(estimator, data):
    texts, labels = data
    with pytest.raises(DataError, match="no training texts"):
        estimator.fit([], [])
    with pytest.raises(DataError, match=f"{len(texts)} texts but 5 labels"):
        estimator.fit(texts, labels[:5])
    with pytest.raises(DataError, match="validation holds 10 texts but 5 labels"):
        estimator.fit(texts, labels, validation=(texts[:10], labels[:5]))


@pytest.mark.parametrize("validation", ["texts", "two texts", "a string"])
def test_validation_that_is_not_a_pair_is_refused(estimator, data, validation):
    texts, labels = data
    given = {"texts": texts[:10], "two texts": texts[:2], "a string": texts[0]}[validation]
    with pytest.raises(ValueError, match=r"validation must be a pair \(texts, labels\)"):
        estimator.fit(texts, labels, validation=given)


def test_save_refuses_an_existing_run_unless_overwrite(fitted, data, tmp_path):
    folder = fitted.save(tmp_path / "run")
    before = (folder / "manifest.json").read_text()
    other = TextClassifier(**FAST, seed=7).fit(*data)
    with pytest.raises(RunError, match=r"already holds a run; .* overwrite=True"):
        other.save(folder)
    assert (folder / "manifest.json").read_text() == before
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(RunError, match="already holds files"):
        other.save(tmp_path / "notes")
    assert other.save(folder, overwrite=True) == folder
    assert (folder / "manifest.json").read_text() != before
    assert TextClassifier.load(folder).predict(data[0][:5]).tolist() == other.predict(data[0][:5]).tolist()


def test_load_data_refuses_a_data_frame_in_one_sentence():
    frame = synthetic_frame(30)
    with pytest.raises(DataError, match=r"not a DataFrame; .*TextClassifier"):
        load_data(frame, "text", "label")


def test_predictor_takes_one_run_as_a_string_and_refuses_one_text_as_a_string(fitted, tmp_path):
    folder = fitted.save(tmp_path / "sentiment")
    assert list(Predictor(str(folder)).models) == ["sentiment"]
    assert list(Predictor(f"s={folder}").models) == ["s"]
    predictor = Predictor(folder)
    with pytest.raises(DataError, match="not a single string; wrap it in a list"):
        predictor.classify("sentiment", "a charming mess")
    with pytest.raises(DataError, match="not a single string"):
        predictor.predict_proba("sentiment", "a charming mess")
    with pytest.raises(DataError, match=r"text 1 is missing \(None\)"):
        predictor.classify("sentiment", ["a charming mess", None])
    assert len(predictor.classify("sentiment", ["a charming mess"])) == 1
