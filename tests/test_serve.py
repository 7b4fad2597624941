"""Serving: the Predictor in process, then the real server in a subprocess with a real HTTP client."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loralab.config import TrainConfig
from loralab.errors import LoralabError, RunError
from loralab.runs.train import load_run, train_run
from loralab.serving import Predictor
from tests.conftest import synthetic_frame

TOKEN = "test-token"
TEXTS = ["good fun and great", "a dull and bad plot", "meh okay", "great", "bad"]


def assert_answers_like_the_run(predictor, name, folder) -> None:
    expected = load_run(folder).predict_proba(TEXTS)
    got = predictor.classify(name, TEXTS)
    labels = predictor.get(name).classifier.labels
    np.testing.assert_allclose(
        [[r["probabilities"][lab] for lab in labels] for r in got], expected, atol=1e-6
    )
    assert [r["label"] for r in got] == [labels[i] for i in expected.argmax(1)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_bert) -> dict[str, Path]:
    """Three LoRA runs on one base: two binary ones and a three-class one."""
    root = tmp_path_factory.mktemp("serve")
    folders = {}
    for classes in (2, 3):
        data = root / f"data{classes}"
        data.mkdir()
        for split, (n, seed) in {"train": (150, 1), "validation": (30, 2), "test": (30, 3)}.items():
            synthetic_frame(n, seed, classes).to_csv(data / f"{split}.csv", index=False)
        folders[classes] = data
    common = dict(model=str(tiny_bert), epochs=2, lr=1e-2, batch_size=16, lora_rank=4)
    specs = {
        "sentiment": ("lora", 2),
        "sentiment-scratch": ("lora-scratch", 2),
        "tone": ("lora", 3),
    }
    out = {}
    for name, (method, classes) in specs.items():
        config = TrainConfig(method=method, **common)
        out[name] = train_run(folders[classes], config, root / name, progress=False).folder
    return out


def test_predictor_shares_the_base_weights_and_answers_like_the_run(runs):
    predictor = Predictor([f"{name}={path}" for name, path in runs.items()])
    assert [m["labels"] for m in predictor.describe()] == [
        ["negative", "positive"],
        ["negative", "positive"],
        ["negative", "neutral", "positive"],
    ]
    embeddings = [
        dict(predictor.get(name).classifier.model.named_parameters())[key]
        for name, key in (
            ("sentiment", "base_model.model.bert.embeddings.word_embeddings.weight"),
            ("sentiment-scratch", "bert.embeddings.word_embeddings.weight"),
            ("tone", "base_model.model.bert.embeddings.word_embeddings.weight"),
        )
    ]
    assert len({t.data_ptr() for t in embeddings}) == 1
    assert predictor.shared_bytes > 0
    for name, path in runs.items():
        assert_answers_like_the_run(predictor, name, path)


def test_predictor_refuses_missing_runs_duplicate_names_and_unknown_models(runs, tmp_path):
    predictor = Predictor([runs["sentiment"]])
    with pytest.raises(RunError, match="no such run folder"):
        predictor.add(tmp_path / "nowhere")
    with pytest.raises(LoralabError, match="already served"):
        predictor.add(runs["sentiment"])
    with pytest.raises(LoralabError, match="no model named 'x'; served models: sentiment"):
        predictor.classify("x", ["text"])


def test_serve_refuses_a_missing_run_at_start_up(tmp_path):
    from typer.testing import CliRunner

    from loralab.cli import app

    result = CliRunner().invoke(app, ["serve", str(tmp_path / "missing-run")])
    assert result.exit_code == 2 and "missing-run: no such run folder" in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, port: int, token: str | None = TOKEN) -> None:
        self.base, self.token = f"http://127.0.0.1:{port}", token

    def call(
        self,
        method: str,
        path: str,
        body=None,
        raw: bytes | None = None,
        token: str | None = "",
        content_type: str = "application/json",
    ):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", content_type)
        token = self.token if token == "" else token
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                payload = response.read()
                return response.status, json.loads(payload) if payload else None
        except urllib.error.HTTPError as error:
            payload = error.read()
            return error.code, json.loads(payload) if payload else None


@pytest.fixture(scope="module")
def server(runs):
    port = _free_port()
    command = [
        sys.executable, "-m", "loralab", "serve",
        *[f"{name}={path}" for name, path in runs.items() if name != "sentiment-scratch"],
        "--port", str(port), "--token", TOKEN,
        "--max-texts", "50", "--max-chars", "1000", "--max-body", "20000", "--threads", "1",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ.copy()
    )
    client = Client(port)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if client.call("GET", "/health")[0] == 200:
                break
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
        if process.poll() is not None:
            raise AssertionError(process.stdout.read().decode())
    yield client
    process.terminate()
    process.wait(timeout=30)


def test_models_and_classification_match_loralab_predict(server, runs, tmp_path):
    from loralab.runs.predict import predict_file

    status, listing = server.call("GET", "/v1/models")
    assert status == 200
    assert {m["name"]: len(m["labels"]) for m in listing["models"]} == {"sentiment": 2, "tone": 3}
    pd.DataFrame({"text": TEXTS}).to_csv(tmp_path / "in.csv", index=False)
    for name in ("sentiment", "tone"):
        predict_file(load_run(runs[name]), tmp_path / "in.csv", tmp_path / f"{name}.csv")
        expected = pd.read_csv(tmp_path / f"{name}.csv")
        status, answer = server.call("POST", "/v1/classify", {"model": name, "texts": TEXTS})
        assert status == 200 and answer["model"] == name
        assert [r["label"] for r in answer["results"]] == expected["predicted"].tolist()
        assert all(r["model"] == name for r in answer["results"])
        for label, value in answer["results"][0]["probabilities"].items():
            assert value == pytest.approx(expected[f"p_{label}"].iloc[0], abs=1e-6)


def test_the_openapi_schema_documents_the_endpoints(server):
    status, schema = server.call("GET", "/openapi.json", token=None)
    assert status == 200
    assert {"/health", "/v1/models", "/v1/classify", "/v1/models/{name}"} <= set(schema["paths"])
    assert "ClassifyRequest" in schema["components"]["schemas"]


def test_concurrent_requests_are_answered_correctly(server):
    single = {t: server.call("POST", "/v1/classify", {"model": "tone", "texts": [t]})[1] for t in TEXTS}

    def ask(i):
        text = TEXTS[i % len(TEXTS)]
        return text, server.call("POST", "/v1/classify", {"model": "tone", "texts": [text]})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(40)))
    for text, (status, answer) in answers:
        assert status == 200
        assert answer["results"][0]["label"] == single[text]["results"][0]["label"]
        for label, p in answer["results"][0]["probabilities"].items():
            assert p == pytest.approx(single[text]["results"][0]["probabilities"][label], abs=1e-5)


@pytest.mark.parametrize(
    "body, raw, status, message",
    [
        (None, b'{"model": "tone", "texts": [', 422, "not valid JSON"),
        (None, b'["a good film"]', 422, "the request body must be a JSON object of named fields, not a list"),
        ({"model": 1, "texts": ["a"]}, None, 422, "model: Input should be a valid string"),
        ({"model": "tone", "texts": "a"}, None, 422, "texts: Input should be a valid list"),
        ({"model": "tone", "texts": ["a", 3]}, None, 422, "texts.1: Input should be a valid string"),
        ({"model": "tone", "texts": []}, None, 422, "texts is empty"),
        ({"model": "tone", "texts": ["fine", " "]}, None, 422, "texts: text 1 is empty; send a text"),
        ({"model": "tone", "texts": ["fine", "\x00\u200b"]}, None, 422, "text 1 is blank (only control"),
        ({"model": "tone"}, None, 422, "texts: Field required"),
        (
            {"model": "nope", "texts": ["a"]},
            None,
            404,
            "no model named 'nope'; served models: sentiment, tone",
        ),
        ({"model": "tone", "texts": ["a"] * 51}, None, 413, "51 texts in one request; the limit is 50"),
        (
            {"model": "tone", "texts": ["a" * 1001]},
            None,
            413,
            "text 0 has 1,001 characters; the limit is 1,000",
        ),
        ({"model": "tone", "texts": ["a" * 900] * 30}, None, 413, "larger than 20,000 bytes"),
    ],
)
def test_bad_requests_get_one_clear_sentence(server, body, raw, status, message):
    got, answer = server.call("POST", "/v1/classify", body, raw=raw)
    assert got == status and message in answer["error"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_json_body_sent_as_another_type_is_told_which_type_to_send(server, content_type):
    # `curl -d '{...}'` without -H sends application/x-www-form-urlencoded.
    body = json.dumps({"model": "tone", "texts": ["fine"]}).encode()
    got, answer = server.call("POST", "/v1/classify", raw=body, content_type=content_type)
    assert got == 422
    assert answer["error"] == (
        "send the body as JSON with Content-Type: application/json "
        f"(it came with Content-Type {content_type})."
    )


def test_the_token_guards_the_api_and_models_can_be_added_and_removed(server, runs):
    assert server.call("GET", "/v1/models", token=None)[0] == 401
    assert server.call("GET", "/v1/models", token="wrong")[0] == 401
    assert server.call("GET", "/health", token=None)[0] == 200
    status, info = server.call("POST", "/v1/models", {"run": str(runs["sentiment-scratch"]), "name": "added"})
    assert status == 201 and info["method"] == "lora-scratch"
    status, answer = server.call("POST", "/v1/classify", {"model": "added", "texts": ["great"]})
    assert status == 200 and answer["results"][0]["model"] == "added"
    status, answer = server.call("POST", "/v1/models", {"run": "/no/such/run"})
    assert status == 400 and "/no/such/run: no such run folder" in answer["error"]
    assert server.call("DELETE", "/v1/models/added")[0] == 204
    assert server.call("POST", "/v1/classify", {"model": "added", "texts": ["great"]})[0] == 404


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
bodies = st.one_of(
    st.fixed_dictionaries(
        {"model": st.sampled_from(["tone", "sentiment", "x"]) | json_values, "texts": json_values}
    ),
    st.fixed_dictionaries(
        {"model": st.sampled_from(["tone", "sentiment"]), "texts": st.lists(st.text(max_size=60), max_size=8)}
    ),
    json_values,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_fuzzed_bodies_never_get_a_server_error(server, body):
    status, answer = server.call("POST", "/v1/classify", body)
    assert status < 500, answer
    if status == 200:
        assert len(answer["results"]) == len(body["texts"])
    else:
        assert isinstance(answer["error"], str)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_fuzzed_raw_bytes_never_get_a_server_error_and_the_server_keeps_answering(server, raw):
    assert server.call("POST", "/v1/classify", raw=raw)[0] < 500
    assert server.call("GET", "/health")[0] == 200


def test_baselines_head_and_full_runs_are_served_too(tiny_bert, synthetic_dir, tmp_path):
    folders = {}
    for method in ("tfidf-nb", "embed-logreg", "head", "full"):
        config = TrainConfig(method=method, model=str(tiny_bert), epochs=1, lr=5e-3)
        folders[method] = train_run(synthetic_dir, config, tmp_path / method, progress=False).folder
    predictor = Predictor([f"{m}={p}" for m, p in folders.items()])
    described = {m["name"]: m for m in predictor.describe()}
    assert described["tfidf-nb"]["base_model"] is None
    assert described["head"]["base_model"] == str(tiny_bert)
    for method, folder in folders.items():
        assert_answers_like_the_run(predictor, method, folder)
    # The head run's frozen encoder is the embedding encoder's: held once.
    head_embeddings = dict(predictor.get("head").classifier.model.named_parameters())[
        "bert.embeddings.word_embeddings.weight"
    ]
    from loralab.methods.features import loaded_encoders

    encoder_embeddings = dict(loaded_encoders()[-1].named_parameters())["embeddings.word_embeddings.weight"]
    assert head_embeddings.data_ptr() == encoder_embeddings.data_ptr()
