"""Hostile requests to the HTTP API, in process through FastAPI's TestClient: damaged runs,
unsafe names, text that is not Unicode, models removed under load, and bugs."""

from __future__ import annotations

import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from loralab.errors import LOG_DIR_ENV
from loralab.serving import Predictor
from loralab.serving.app import ServeSettings, create_app
from tests import hostile_fixtures
from tests.hostile_fixtures import copy_run, invoke, one_sentence

hostile_data = hostile_fixtures.hostile_data
tfidf_run = hostile_fixtures.tfidf_run
lora_run = hostile_fixtures.lora_run

TOKEN = "secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def client(lora_run, tfidf_run):
    app = create_app(Predictor([f"lora={lora_run}", f"tfidf={tfidf_run}"]), ServeSettings(token=TOKEN))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "name, damage",
    [
        ("model/adapter_model.safetensors", "truncate"),
        ("model/loralab.json", "truncate"),
        ("manifest.json", "truncate"),
        ("model/adapter_model.safetensors", "delete"),
    ],
)
def test_adding_a_damaged_run_is_a_400_naming_the_file(name, damage, client, lora_run, tmp_path):
    run = copy_run(lora_run, tmp_path)
    target = run / name
    if damage == "delete":
        target.unlink()
    else:
        target.write_bytes(target.read_bytes()[:50])
    answer = client.post("/v1/models", json={"run": str(run), "name": "damaged"}, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert str(target) in answer.json()["error"]
    assert "damaged" not in [m["name"] for m in client.get("/v1/models", headers=AUTH).json()["models"]]


@pytest.mark.parametrize("name", ["../../x", "a/b", "", " ", "x" * 65, "-lead", "semi;colon", "ünï"])
def test_unsafe_model_names_are_refused(name, client, tfidf_run):
    answer = client.post("/v1/models", json={"run": str(tfidf_run), "name": name}, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert "is not a valid model name" in answer.json()["error"] or name == ""


def test_a_safe_name_can_be_added_and_removed(client, tfidf_run):
    answer = client.post("/v1/models", json={"run": str(tfidf_run), "name": "v2.tfidf_b-1"}, headers=AUTH)
    assert answer.status_code == 201, answer.text
    assert client.delete("/v1/models/v2.tfidf_b-1", headers=AUTH).status_code == 204


@pytest.mark.parametrize("text", ["\ud800", "caf\udce9", "ok \udfff end"])
def test_text_that_is_not_unicode_is_a_422(text, client):
    body = json.dumps({"model": "lora", "texts": ["fine", text]})  # ensure_ascii: sent as \\ud800
    answer = client.post("/v1/classify", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert "text 1 is not valid Unicode" in answer.json()["error"]


def test_a_long_text_on_a_run_saved_with_a_huge_max_length(lora_run, tmp_path):
    run = copy_run(lora_run, tmp_path)
    info = json.loads((run / "model" / "loralab.json").read_text())
    info["config"]["max_length"] = 100000
    (run / "model" / "loralab.json").write_text(json.dumps(info))
    manifest = json.loads((run / "manifest.json").read_text())
    manifest.pop("model_files")
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.warns(UserWarning, match="texts are cut at 64 tokens"):
        app = create_app(Predictor([f"long={run}"]))
    with TestClient(app) as test_client:
        answer = test_client.post("/v1/classify", json={"model": "long", "texts": ["good " * 1500]})
    assert answer.status_code == 200, answer.text


def test_models_removed_while_classifying_answer_404_not_500(client, tfidf_run):
    statuses: list[int] = []
    stop = threading.Event()

    def classify_until_stopped(_):
        while not stop.is_set():
            answer = client.post(
                "/v1/classify", json={"model": "churn", "texts": ["good film"]}, headers=AUTH
            )
            statuses.append(answer.status_code)

    with ThreadPoolExecutor(5) as pool:
        workers = [pool.submit(classify_until_stopped, i) for i in range(5)]
        for _ in range(6):
            added = client.post("/v1/models", json={"run": str(tfidf_run), "name": "churn"}, headers=AUTH)
            assert added.status_code == 201, added.text
            assert client.delete("/v1/models/churn", headers=AUTH).status_code == 204
        stop.set()
        for worker in workers:
            worker.result()
    assert statuses and set(statuses) <= {200, 404}, sorted(set(statuses))


def test_a_bug_is_a_500_with_one_line_and_a_logged_traceback(client, tmp_path, monkeypatch):
    monkeypatch.setenv(LOG_DIR_ENV, str(tmp_path / "logs"))

    def broken(name, texts):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(client.app.state.batcher, "predict", broken)
    answer = client.post("/v1/classify", json={"model": "tfidf", "texts": ["good"]}, headers=AUTH)
    assert answer.status_code == 500
    assert answer.json()["error"].startswith("internal error (ZeroDivisionError: division by zero)")
    (log,) = (tmp_path / "logs").iterdir()
    assert "Traceback" in log.read_text() and "POST /v1/classify" in log.read_text()


def test_serve_on_a_busy_port_says_so_before_claiming_to_serve(tfidf_run):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke("serve", tfidf_run, "--port", port)
    message = one_sentence(result)
    assert f"cannot listen on 127.0.0.1:{port}: it is already in use" in message
    assert "serving" not in message
