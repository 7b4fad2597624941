"""Serving for a first user: /docs works offline, and one served model needs no name."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from fastapi.testclient import TestClient

from loralab.config import TrainConfig
from loralab.runs.train import train_run
from loralab.serving import Predictor
from loralab.serving.app import create_app
from tests.test_report_browser import FLAGS
from tests.test_serve import _free_port


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    from tests.conftest import synthetic_frame

    root = tmp_path_factory.mktemp("docs")
    data = root / "data.csv"
    synthetic_frame(200, 1).to_csv(data, index=False)
    return {
        name: train_run(data, TrainConfig(method=method), root / name, progress=False).folder
        for name, method in (("sentiment", "tfidf-logreg"), ("bayes", "tfidf-nb"))
    }


def test_model_may_be_left_out_when_one_model_is_served(two_runs):
    client = TestClient(create_app(Predictor([f"sentiment={two_runs['sentiment']}"])))
    answer = client.post("/v1/classify", json={"texts": ["a good film", "a dull plot"]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == "sentiment" and len(answer.json()["results"]) == 2
    named = client.post("/v1/classify", json={"model": "sentiment", "texts": ["a good film", "a dull plot"]})
    assert named.json() == answer.json()
    refused = client.post("/v1/classify", json={"model": 1, "texts": ["a"]})
    assert refused.status_code == 422 and refused.json()["error"].startswith("model: ")


def test_model_is_required_when_several_are_served(two_runs):
    client = TestClient(create_app(Predictor([f"{k}={v}" for k, v in two_runs.items()])))
    answer = client.post("/v1/classify", json={"texts": ["a good film"]})
    assert answer.status_code == 422
    assert answer.json() == {"error": "model is required when 2 models are served (bayes, sentiment)."}


def test_docs_page_uses_only_local_files(two_runs):
    client = TestClient(create_app(Predictor([str(two_runs["sentiment"])])))
    page = client.get("/docs").text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page) + re.findall(r"url: '([^']+)'", page)
    assert sources and all(s.startswith("/") for s in sources), sources
    for path in sources:
        assert client.get(path).status_code == 200, path
    assert "redoc.standalone.js" in client.get("/redoc").text


def test_swagger_ui_renders_offline_in_chromium(two_runs, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed; .ci/run installs it")
        pytest.skip("chromium is not installed")
    port = _free_port()
    command = [sys.executable, "-m", "loralab", "serve", str(two_runs["sentiment"]), "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError):
                if process.poll() is not None:
                    raise AssertionError(process.stdout.read().decode()) from None
                time.sleep(0.5)
        dom = subprocess.run(
            [chromium, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
             "--dump-dom", f"http://127.0.0.1:{port}/docs"],
            capture_output=True, text=True, timeout=120,
        ).stdout  # fmt: skip
    finally:
        process.terminate()
        process.wait(timeout=30)
    # Swagger UI drew the operations from /openapi.json: it loaded and ran without a CDN.
    assert "/v1/classify" in dom and 'class="opblock' in dom, dom[:800]
