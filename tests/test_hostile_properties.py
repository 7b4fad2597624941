"""Property-based hostile input: whatever bytes a file holds, the readers return a table or
raise one DataError; whatever a client sends, the HTTP API answers without a 5xx."""

from __future__ import annotations

import json
import string

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loralab.data.dataset import load_data
from loralab.data.readers import INVISIBLE, is_blank, iter_table_chunks, read_table
from loralab.errors import DataError
from loralab.serving import Predictor
from loralab.serving.app import ServeSettings, create_app
from tests import hostile_fixtures

hostile_data = hostile_fixtures.hostile_data
tfidf_run = hostile_fixtures.tfidf_run

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SUFFIXES = ["csv", "tsv", "jsonl", "json", "csv.gz", "jsonl.bz2"]


def test_blank_means_white_space_control_and_format_characters():
    """The written-out class of characters that show nothing is exactly this Python's
    white space and categories Cc and Cf (unassigned code points aside)."""
    import re
    import sys
    import unicodedata

    one = re.compile(INVISIBLE.removesuffix("*"))
    for point in range(sys.maxunicode + 1):
        char = chr(point)
        category = unicodedata.category(char)
        if category == "Cn":
            continue
        expected = char.isspace() or category in ("Cc", "Cf")
        assert bool(one.fullmatch(char)) == expected, f"U+{point:04X} ({category})"
    assert is_blank("") and is_blank(" \x00\t\u200b\u200d\ufeff\u2060")
    assert not is_blank("\u200ba") and not is_blank("\U0001f600") and not is_blank("\u0301")


def _read_everything(path):
    """Both readers, as a command would use them: a table or DataError, nothing else."""
    outcomes = []
    for read in (read_table, lambda p: pd.concat(list(iter_table_chunks(p, 3)))):
        try:
            frame = read(path)
        except DataError as error:
            assert str(error).startswith(str(path)) or str(error).startswith("--"), str(error)
            outcomes.append("refused")
        else:
            assert isinstance(frame, pd.DataFrame)
            outcomes.append("read")
    return outcomes


@SETTINGS
@given(content=st.binary(max_size=400), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes_are_read_or_refused_in_one_sentence(content, suffix, tmp_path):
    path = tmp_path / f"data.{suffix}"
    path.write_bytes(content)
    _read_everything(path)


_CELL = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
_NAME = st.text(alphabet=string.ascii_letters + string.digits + " ,\"'\t.é-", min_size=0, max_size=6)


@SETTINGS
@given(
    names=st.lists(_NAME, min_size=1, max_size=4),
    rows=st.integers(min_value=0, max_value=5),
    cell=_CELL,
    encoding=st.sampled_from(["utf-8", "latin-1", "utf-16", "cp1252"]),
    suffix=st.sampled_from(["csv", "tsv", "jsonl"]),
)
def test_random_column_names_and_encodings(names, rows, cell, encoding, suffix, tmp_path):
    path = tmp_path / f"data.{suffix}"
    if suffix == "jsonl":
        text = "".join(json.dumps(dict.fromkeys(names, cell), ensure_ascii=False) + "\n" for _ in range(rows))
    else:
        sep = "," if suffix == "csv" else "\t"
        frame = pd.DataFrame([[cell] * len(names)] * rows, columns=names)
        text = frame.to_csv(index=False, sep=sep)
    try:
        path.write_bytes(text.encode(encoding))
    except UnicodeEncodeError:
        return  # the text cannot be written in that encoding at all
    outcomes = _read_everything(path)
    if len(set(names)) < len(names) and suffix != "jsonl":
        assert outcomes == ["refused", "refused"]


@SETTINGS
@given(
    texts=st.lists(st.one_of(st.none(), st.text(max_size=20)), min_size=1, max_size=12),
    labels=st.lists(st.sampled_from(["a", "b", "c", None, ""]), min_size=1, max_size=12),
    text_col=st.sampled_from(["text", "label", "other"]),
)
def test_load_data_returns_splits_or_one_data_error(texts, labels, text_col, tmp_path):
    n = min(len(texts), len(labels))
    frame = pd.DataFrame({"text": texts[:n], "label": labels[:n]})
    path = tmp_path / "data.jsonl"
    path.write_text(frame.to_json(orient="records", lines=True, force_ascii=True))
    try:
        splits = load_data(path, text_col=text_col, label_col="label")
    except DataError:
        return
    assert len(splits.labels) >= 2 and len(splits.train) >= 1


# --- the HTTP API ------------------------------------------------------------------------------

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def api(tfidf_run):
    app = create_app(Predictor([f"m={tfidf_run}"]), ServeSettings(token="t", max_texts=8, max_chars=200))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@SETTINGS
@given(
    body=st.one_of(
        _JSON,
        st.fixed_dictionaries(
            {"model": st.sampled_from(["m", "x", ""]), "texts": st.lists(st.text(max_size=30))}
        ),
        st.fixed_dictionaries({"model": _JSON, "texts": _JSON}),
    ),
    path=st.sampled_from(["/v1/classify", "/v1/models"]),
)
def test_any_json_body_gets_an_answer_below_500(body, path, api):
    answer = api.post(path, json=body, headers={"Authorization": "Bearer t"})
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert set(answer.json()) == {"error"}


@SETTINGS
@given(raw=st.binary(max_size=200), content_type=st.sampled_from(["application/json", "text/plain", ""]))
def test_any_raw_body_gets_an_answer_below_500(raw, content_type, api):
    headers = {"Authorization": "Bearer t", "Content-Type": content_type}
    answer = api.post("/v1/classify", content=raw, headers=headers)
    assert answer.status_code < 500, answer.text


@SETTINGS
@given(name=st.text(max_size=20))
def test_any_model_name_in_the_path_gets_an_answer_below_500(name, api):
    from urllib.parse import quote

    answer = api.delete(f"/v1/models/{quote(name, safe='')}", headers={"Authorization": "Bearer t"})
    assert answer.status_code < 500, answer.text
