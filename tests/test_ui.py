"""The ui's routes, worker and checks, driven through FastAPI's test client (no browser)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import socket
import threading

import pytest
from typer.testing import CliRunner

for _module in ("jinja2", "python_multipart", "fastapi"):
    try:
        __import__(_module)
    except ImportError:
        if os.environ.get("CI") == "true":
            raise  # CI installs the ui extra; a missing package there is a failure
        pytest.skip(f"the ui extra is not installed ({_module})", allow_module_level=True)

from fastapi.testclient import TestClient  # noqa: E402

from loralab.cli import app as cli_app  # noqa: E402
from loralab.config import TrainConfig  # noqa: E402
from loralab.runs.compare import compare  # noqa: E402
from loralab.ui.app import create_app  # noqa: E402
from loralab.ui.costs import DataSize, estimate_cost  # noqa: E402
from loralab.ui.jobs import JOB_FILE, CompareRequest, Worker, read_job  # noqa: E402
from loralab.ui.progress import compare_progress  # noqa: E402
from tests.conftest import synthetic_frame  # noqa: E402


def _error(page: str) -> str:
    match = re.search(r'<p class="error" role="alert">(.*?)</p>', page, re.S)
    assert match, page[:500]
    return html.unescape(match.group(1).strip())


def _uploaded_files(runs):
    folder = runs / "uploads"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture
def runs(tmp_path):
    return tmp_path / "runs"


@pytest.fixture
def client(runs, tiny_bert):
    return TestClient(create_app(runs, model=str(tiny_bert)))


def _upload(client, name: str, content: bytes):
    return client.post("/data/upload", files={"file": (name, content, "application/octet-stream")})


BAD_UPLOADS = [
    ("picture.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "unsupported file type"),
    ("binary.csv", b"\xff\xfe\x00\x81\x82 not text\n\x90\x91", "not valid UTF-8"),
    ("empty.csv", b"", "the file is empty"),
    ("header.csv", b"text,label\n", "has a header but no rows"),
    ("numbers.csv", b"a,b\n1,2\n3,4\n5,6\n", "no column holds text"),
    (
        "oneclass.csv",
        b"text,label\ngood film,pos\nbad film,pos\nfine film,pos\n",
        "has a single class ('pos')",
    ),
]


@pytest.mark.parametrize(("name", "content", "expected"), BAD_UPLOADS, ids=[b[0] for b in BAD_UPLOADS])
def test_a_bad_upload_gets_one_sentence_naming_the_file_and_nothing_is_kept(
    client, runs, name, content, expected
):
    response = _upload(client, name, content)
    assert response.status_code == 200
    sentence = _error(response.text)
    assert expected in sentence and name in sentence
    assert "Traceback" not in response.text and ".upload-" not in sentence
    assert _uploaded_files(runs) == []


def test_an_upload_offers_its_columns_with_text_and_label_guessed(client, runs):
    frame = synthetic_frame(40).rename(columns={"text": "tweet", "label": "bias"})
    frame["id"] = range(len(frame))
    response = _upload(client, "tweets.csv", frame.to_csv(index=False).encode())
    assert re.search(r"<option selected>tweet</option>", response.text)
    assert re.search(r"<option selected>bias</option>", response.text)
    (kept,) = _uploaded_files(runs)
    assert kept.name == "tweets.csv" and kept.read_bytes() == frame.to_csv(index=False).encode()
    # The same file again is the copy already kept; another file of the same name is kept apart.
    _upload(client, "tweets.csv", frame.to_csv(index=False).encode())
    assert _uploaded_files(runs) == [kept]
    _upload(client, "tweets.csv", frame.iloc[:30].to_csv(index=False).encode())
    assert len(_uploaded_files(runs)) == 2 and kept.read_bytes() == frame.to_csv(index=False).encode()


def test_choosing_a_one_class_column_or_the_same_column_twice_is_one_sentence(client, runs, tmp_path):
    frame = synthetic_frame(40)
    frame["source"] = "twitter"
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    response = client.post(
        "/data/inspect", data={"data": str(path), "text_col": "text", "label_col": "source"}
    )
    assert "single class ('twitter') in column 'source'" in _error(response.text)
    response = client.post("/data/inspect", data={"data": str(path), "text_col": "text", "label_col": "text"})
    assert "both column 'text'" in _error(response.text)


def test_inspect_shows_splits_notes_and_a_cost_for_every_method(client, tmp_path):
    path = tmp_path / "data.csv"
    synthetic_frame(100).to_csv(path, index=False)
    response = client.post(
        "/data/inspect", data={"data": str(path), "text_col": "text", "label_col": "label"}
    )
    html = response.text
    assert "No validation split was given" in html and "negative, positive" in html
    assert re.search(r'value="tfidf-logreg" id="method-tfidf-logreg" checked', html)
    costs = re.findall(r'<td class="cost">([^<]*)</td>', html)
    assert costs and all(re.match(r"~\d", c) for c in costs), costs


def _wait_done(worker: Worker) -> None:
    worker.wait(120)
    assert worker.current() is None


def test_a_comparison_runs_in_the_background_and_any_client_reads_the_same_state(client, runs, tmp_path):
    path = tmp_path / "data.csv"
    synthetic_frame(120).to_csv(path, index=False)
    form = {
        "data": str(path),
        "text_col": "text",
        "label_col": "label",
        "methods": ["tfidf-logreg", "tfidf-nb"],
    }
    response = client.post("/compare/start", data=form)
    name = re.search(r"Comparison <code>([^<]+)</code>", response.text).group(1)
    _wait_done(client.app.state.worker)
    # A second tab (or the page after a restart) sees the finished comparison.
    other = TestClient(create_app(runs))
    html = other.get("/").text
    assert f"Comparison <code>{name}</code>" in html and 'id="job-status">completed' in html
    assert 'id="recommendation"' in html and "Recommended:" in html
    report = other.get(f"/report/{name}")
    assert report.status_code == 200 and "<html" in report.text.lower()
    assert (runs / name / "report.html").exists()
    listed = other.get("/runs").text
    assert f"{name}/tfidf-nb" in listed and "completed" in listed


def test_a_second_job_is_refused_with_a_sentence_while_one_runs(client, tmp_path, monkeypatch):
    worker = client.app.state.worker
    release = threading.Event()
    monkeypatch.setattr(worker, "run", lambda request, folder: release.wait(30))
    path = tmp_path / "data.csv"
    synthetic_frame(60).to_csv(path, index=False)
    form = {"data": str(path), "text_col": "text", "label_col": "label", "methods": ["tfidf-nb"]}
    client.post("/compare/start", data=form)
    try:
        page = client.post("/compare/start", data=form).text
        notice = re.search(r'id="busy-notice">(.*?)</p>', page, re.S)
        assert notice and "already running" in notice.group(1) and "one job at a time" in notice.group(1)
        # the refused tab keeps following the comparison that runs
        assert 'hx-get="/compare/progress?folder=' in page and 'id="job-status">running' in page
    finally:
        release.set()
        worker.wait(10)


def test_cancel_between_runs_keeps_completed_runs_and_starting_again_reuses_them(runs, tmp_path):
    path = tmp_path / "data.csv"
    synthetic_frame(80).to_csv(path, index=False)
    folder = runs / "cmp"
    request = CompareRequest(data=str(path), methods=["tfidf-logreg", "tfidf-nb"])
    worker = Worker()
    worker._cancel.set()  # asked to stop before the first check
    worker.run(request, folder)
    job = json.loads((folder / JOB_FILE).read_text())
    assert job["status"] == "cancelled" and "start the comparison again" in job["message"]
    assert [r.method for r in compare_progress(folder).runs] == ["tfidf-logreg"]
    runs_page = TestClient(create_app(runs)).get("/runs").text  # a cancelled comparison has no report
    assert 'href="/report/cmp"' not in runs_page and 'href="/report/cmp/tfidf-logreg"' in runs_page
    worker._cancel.clear()
    worker.run(request, folder)
    results = json.loads((folder / "results.json").read_text())
    assert [r["reused"] for r in results["runs"]] == [True, False]
    assert read_job(folder)["status"] == "completed"
    assert 'href="/report/cmp"' in TestClient(create_app(runs)).get("/runs").text


def test_cancel_between_epochs_marks_the_run_interrupted_like_ctrl_c(runs, tmp_path, tiny_bert):
    path = tmp_path / "data.csv"
    synthetic_frame(60).to_csv(path, index=False)
    folder = runs / "cmp"
    request = CompareRequest(data=str(path), methods=["lora"], model=str(tiny_bert), max_length=16)
    worker = Worker()
    worker._cancel.set()
    worker.run(request, folder)
    (run,) = compare_progress(folder).runs
    # The progress counts to the epochs training plans, not LoRA's default of 3: the split's
    # training texts fill two batches of 32, so the floor of 100 optimizer steps takes 50 epochs.
    manifest = json.loads((folder / run.name / "manifest.json").read_text())
    assert 32 < manifest["data"]["splits"]["train"]["size"] <= 64
    assert run.status == "interrupted" and run.epoch == 1 and run.epochs == 50
    assert read_job(folder)["status"] == "cancelled"


def test_progress_hides_a_run_set_aside_and_says_stopped_for_a_writer_that_has_gone(runs):
    from loralab.runs.folder import RunFolder
    from loralab.ui.progress import run_progress
    from loralab.ui.runs_index import list_runs

    folder = runs / "cmp"
    (folder / "compare.json").parent.mkdir(parents=True)
    (folder / "compare.json").write_text(json.dumps({"methods": ["tfidf-logreg"]}))
    for name in ("tfidf-logreg", ".tfidf-logreg.replaced"):
        (folder / name).mkdir()
        manifest = {"method": "tfidf-logreg", "status": "running", "started": "2026-01-01T00:00:00"}
        (folder / name / "manifest.json").write_text(json.dumps(manifest))
    (run,) = compare_progress(folder).runs  # the folder set aside by --overwrite is not a run
    assert run.name == "tfidf-logreg" and run.status == "stopped"  # no process holds its lock
    listed = {e.name: e.status for e in list_runs(runs) if e.kind == "run"}
    assert listed == {"cmp/tfidf-logreg": "stopped"}  # the Runs page agrees
    held = RunFolder(folder / "tfidf-logreg")
    held.acquire()
    try:
        assert run_progress(folder / "tfidf-logreg", "tfidf-logreg").status == "running"
    finally:
        held.release()


def test_a_job_left_running_by_another_process_reads_as_stopped(runs):
    folder = runs / "cmp"
    folder.mkdir(parents=True)
    (folder / JOB_FILE).write_text(json.dumps({"status": "running", "request": {}}))
    job = read_job(folder, Worker())
    assert job["status"] == "stopped" and "start it again" in job["message"]


def _compare_two(path, runs, tiny_bert):
    synthetic_frame(120).to_csv(path, index=False)
    compare(
        str(path),
        runs / "cmp",
        methods=["tfidf-logreg", "tfidf-nb"],
        base_config=TrainConfig(model=str(tiny_bert)),
        progress=False,
    )


def test_classify_score_and_export_a_run(client, runs, tmp_path, tiny_bert):
    _compare_two(tmp_path / "data.csv", runs, tiny_bert)
    html = client.post(
        "/try/classify", data={"run": "cmp/tfidf-logreg", "texts": "a wonderful film\n\nan awful film\n"}
    ).text
    assert re.findall(r"<strong>(\w+)</strong>", html) == ["positive", "negative"]
    to_score = synthetic_frame(30, seed=7).rename(columns={"text": "tweet"})
    response = client.post(
        "/try/score",
        data={"run": "cmp/tfidf-logreg", "text_col": "tweet"},
        files={"file": ("new.csv", to_score.to_csv(index=False).encode(), "text/csv")},
    )
    link = re.search(r'href="(/download/[^"]+)"', response.text).group(1)
    download = client.get(link)
    lines = download.text.strip().splitlines()
    assert len(lines) == 31 and lines[0].startswith("tweet,label,predicted,probability")
    assert 'filename="scored-new.csv"' in download.headers["content-disposition"]
    html = client.post("/ship/export", data={"run": "cmp/tfidf-nb"}).text
    assert "scikit-learn model" in html
    assert re.search(r"loralab serve tfidf-nb=/\S+/cmp/tfidf-nb</pre>", html)
    assert (runs / "exports" / "cmp--tfidf-nb").is_dir()


def test_a_long_text_is_shown_shortened_beside_its_label(client, runs, tmp_path, tiny_bert):
    _compare_two(tmp_path / "data.csv", runs, tiny_bert)
    long = "a good film " * 200  # 2,400 characters, one line
    page = client.post("/try/classify", data={"run": "cmp/tfidf-nb", "texts": long}).text
    assert "(2,399 characters)" in page and long.strip() not in page


def test_scoring_a_file_without_the_text_column_writes_nothing(client, runs, tmp_path, tiny_bert):
    _compare_two(tmp_path / "data.csv", runs, tiny_bert)
    response = client.post(
        "/try/score",
        data={"run": "cmp/tfidf-nb"},
        files={"file": ("new.csv", b"body\nhello\n", "text/csv")},
    )
    sentence = _error(response.text)
    assert "new.csv: no text column 'text'; the columns are body" in sentence
    assert "(choose one with the Text column field)" in sentence and "--text-col" not in sentence
    assert _uploaded_files(runs) == []


def test_notes_on_an_upload_name_it_as_the_user_did(client, runs):
    rows = b"text,label\ngood film,pos\n,neg\n" + b"".join(
        f"film {i} was {'good' if i % 2 else 'bad'},{'pos' if i % 2 else 'neg'}\n".encode() for i in range(60)
    )
    _upload(client, "my tweets.csv", rows)
    (uploaded,) = _uploaded_files(runs)
    page = html.unescape(
        client.post(
            "/data/inspect", data={"data": str(uploaded), "text_col": "text", "label_col": "label"}
        ).text
    )
    assert f"note: {uploaded.name}: dropped 1 row(s)" in page and f"<h3>{uploaded.name}</h3>" in page
    assert "uploads/" not in re.sub(r'value="[^"]*"', "", page)  # only the form's hidden path has it


def test_a_run_deleted_while_the_page_shows_it_is_one_sentence(client, runs, tmp_path, tiny_bert):
    import shutil

    _compare_two(tmp_path / "data.csv", runs, tiny_bert)
    assert "cmp/tfidf-nb" in client.get("/").text
    shutil.rmtree(runs / "cmp" / "tfidf-nb")
    for response in (
        client.post("/try/classify", data={"run": "cmp/tfidf-nb", "texts": "fine"}),
        client.post("/ship/export", data={"run": "cmp/tfidf-nb"}),
        client.get("/report/cmp/tfidf-nb"),
    ):
        assert "no longer exists" in _error(response.text)
    assert "cmp/tfidf-nb" not in client.get("/runs").text


def test_cost_estimates_prefer_measured_runs(runs, tmp_path, tiny_bert):
    size = DataSize(train=1000, validation=100, test=100, mean_tokens=30)
    assert estimate_cost("tfidf-nb", str(tiny_bert), size, runs).basis == "no encoder"
    flops = estimate_cost("lora", str(tiny_bert), size, runs)
    assert flops.basis == "estimated from FLOPs"
    assert (
        estimate_cost("full", str(tiny_bert), size, runs).seconds
        > estimate_cost("head", str(tiny_bert), size, runs).seconds
    )
    _compare_two(tmp_path / "data.csv", runs, tiny_bert)
    measured = estimate_cost("tfidf-nb", str(tiny_bert), size, runs)
    assert measured.basis == "measured on 1 earlier run(s)"


def test_a_method_of_an_unknown_family_gets_no_estimate_rather_than_a_guess():
    from loralab.methods import Method
    from loralab.ui.costs import encoder_passes

    class Elsewhere(Method):
        name = "elsewhere"
        summary = "a method from another package"

        def fit(self, splits, config, **kwargs):
            raise NotImplementedError

        def load(self, folder, info):
            raise NotImplementedError

    assert encoder_passes(Elsewhere(), DataSize(100, 10, 10, 20.0)) is None


@pytest.mark.parametrize("method, epochs", [("head", 10), ("zero-shot", 0), ("tfidf-nb", 0), ("gone", 0)])
def test_progress_counts_epochs_only_for_methods_that_train_in_epochs(tmp_path, method, epochs):
    from loralab.ui.progress import run_progress

    (tmp_path / "manifest.json").write_text(json.dumps({"method": method, "status": "running"}))
    (tmp_path / "config.json").write_text(json.dumps({"method": method, "epochs": None}))
    assert run_progress(tmp_path, "run").epochs == epochs


@pytest.mark.parametrize(
    "name, passes",
    [
        ("tfidf-logreg", (0.0, 0.0)),  # no encoder
        ("embed-logreg", (0.0, 120)),  # frozen features of every text, once
        ("zero-shot", (0.0, 20)),  # untrained: evaluation only
        ("head", (0.0, 130)),  # train and validation cached once, then evaluation
        ("lora", (3.0 * 3 * 100, 3 * 10 + 20)),  # 3 epochs through the encoder, validating each
    ],
)
def test_encoder_passes_follow_the_methods_traits(name, passes):
    from loralab.methods import get_method
    from loralab.ui.costs import encoder_passes

    assert encoder_passes(get_method(name), DataSize(100, 10, 10, 20.0)) == passes


def test_a_port_in_use_is_one_sentence_and_exit_code_2(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            cli_app, ["ui", "--port", str(port), "--runs-dir", str(tmp_path), "--no-open"]
        )
    assert result.exit_code == 2
    assert f"Port {port} on 127.0.0.1 is already in use; choose another with --port." in result.output
    assert "Traceback" not in result.output


def test_a_port_a_stopped_server_used_a_moment_ago_is_free_again():
    from loralab.cli.ui import check_port_free

    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's listener
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server's side closes first: its connection waits in TIME_WAIT
        client.close()
    check_port_free("127.0.0.1", port)  # no error: nothing listens there any more


def test_folder_names_from_the_page_cannot_leave_the_runs_directory(runs):
    from loralab.errors import RunError
    from loralab.ui.runs_index import resolve_in

    runs.mkdir(parents=True)
    with pytest.raises(RunError, match="not a folder under"):
        resolve_in(runs, "../..")
    client = TestClient(create_app(runs))
    assert "not a folder under" in _error(client.get("/compare/progress", params={"folder": "../.."}).text)
    assert "not a folder under" in _error(client.get("/compare/progress", params={"folder": "/etc"}).text)


def test_a_folder_of_splits_is_offered_by_its_train_file(client, synthetic_dir):
    html = client.post("/data/source", data={"data": str(synthetic_dir)}).text
    assert "160 rows, columns text, label" in html
    assert f'name="data" value="{synthetic_dir}"' in html
    html = client.post("/data/source", data={"data": str(synthetic_dir / "nothing")}).text
    assert "no such file or folder" in _error(html)


def test_loralab_ui_serves_the_page_on_loopback(tmp_path):
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "loralab", "ui", "--port", str(port), "--runs-dir", str(tmp_path)]
    server = subprocess.Popen([*command, "--no-open"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    page = response.read().decode()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.stdout.read().decode()
                time.sleep(0.2)
        assert "<title>loralab</title>" in page and str(tmp_path) in page
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/htmx.min.js", timeout=5) as response:
            assert response.read(20).startswith(b"var htmx")
    finally:
        server.terminate()
        server.wait(10)


def test_on_loopback_other_hosts_and_cross_site_posts_are_refused(runs):
    app = create_app(runs, allowed_hosts=["127.0.0.1", "localhost"])
    local = TestClient(app, base_url="http://127.0.0.1:7860")
    assert local.get("/").status_code == 200
    same = local.post("/data/source", data={"data": "demo"}, headers={"origin": "http://localhost:7860"})
    assert same.status_code == 200
    assert TestClient(app, base_url="http://evil.example").get("/").status_code == 400
    cross = local.post("/data/source", data={"data": "demo"}, headers={"origin": "http://evil.example"})
    assert cross.status_code == 403 and "refused" in cross.text


def test_compares_recommendation_is_shown_when_results_carry_one(client, runs):
    folder = runs / "cmp"
    folder.mkdir(parents=True)
    (folder / JOB_FILE).write_text(json.dumps({"status": "completed", "request": {}}))
    row = {"method": "tfidf-nb", "train_size": "all", "seeds": 1, "trainable_parameters": 10}
    row |= {"validation_accuracy": 0.8, "test_accuracy": 0.7, "test_macro_f1": 0.7}
    recommendation = {"method": "tfidf-nb", "reason": "tfidf-nb is within noise of the best and cheaper."}
    (folder / "results.json").write_text(json.dumps({"summary": [row], "recommendation": recommendation}))
    page = html.unescape(client.get("/compare/progress", params={"folder": "cmp"}).text)
    shown = re.sub(r"\s+", " ", re.search(r'id="recommendation"[^>]*>(.*?)</p>', page, re.S).group(1))
    assert "Recommended: tfidf-nb" in shown and "within noise of the best and cheaper" in shown


def test_try_and_ship_start_from_the_recommended_run(client, runs, tmp_path, tiny_bert):
    _compare_two(tmp_path / "data.csv", runs, tiny_bert)
    (runs / "cmp" / JOB_FILE).write_text(json.dumps({"status": "completed", "request": {}}))
    method = json.loads((runs / "cmp" / "results.json").read_text())["recommendation"]["method"]
    page = client.get("/").text
    for select in ("try-run", "ship-run"):
        options = re.search(rf'<select name="run" id="{select}".*?</select>', page, re.S).group(0)
        chosen = re.findall(r'<option value="([^"]+)" selected>', options)
        assert chosen == [f"cmp/{method}"], options


def test_a_comparison_deleted_while_the_page_shows_it_says_so(client, runs):
    import shutil

    folder = runs / "cmp"
    folder.mkdir(parents=True)
    (folder / JOB_FILE).write_text(json.dumps({"status": "cancelled", "request": {}}))
    assert "resume-button" in client.get("/compare/progress", params={"folder": "cmp"}).text
    shutil.rmtree(folder)
    page = client.get("/compare/progress", params={"folder": "cmp"}).text
    assert "was deleted while this page showed it" in _error(page)
    assert "resume-button" not in page


def test_the_results_table_shows_the_cross_fitted_validation_figure(client, runs):
    from loralab.runs.recommend import CROSSFIT_NOTE

    folder = runs / "cmp"
    folder.mkdir(parents=True)
    (folder / JOB_FILE).write_text(json.dumps({"status": "completed", "request": {}}))
    common = {"train_size": "all", "seeds": 1, "trainable_parameters": 10, "test_macro_f1": 0.7}
    head = common | {"method": "head", "validation_accuracy": 0.95, "validation_accuracy_judged": 0.71}
    head |= {"validation_crossfit": True, "test_accuracy": 0.70}
    tfidf = common | {"method": "tfidf-nb", "validation_accuracy": 0.80, "validation_accuracy_judged": 0.80}
    tfidf |= {"validation_crossfit": False, "test_accuracy": 0.72}
    (folder / "results.json").write_text(json.dumps({"summary": [head, tfidf]}))
    page = html.unescape(client.get("/compare/progress", params={"folder": "cmp"}).text)
    assert "0.7100†" in page and "0.9500" not in page and "0.8000†" not in page
    assert CROSSFIT_NOTE in page
    # The runs list picks the best by the same figure: tfidf-nb (0.80 judged), not head (0.95 plain).
    from loralab.ui.runs_index import list_runs

    (folder / "compare.json").write_text(json.dumps({"methods": ["head", "tfidf-nb"], "data": "demo"}))
    entry = next(e for e in list_runs(runs) if e.kind == "compare")
    assert entry.accuracy == 0.72


def test_ship_offers_only_runs_it_can_export_and_starts_from_one(client, runs, tmp_path, tiny_bert):
    synthetic_frame(120).to_csv(tmp_path / "data.csv", index=False)
    config = TrainConfig(model=str(tiny_bert))
    methods = ["tfidf-nb", "embed-logreg"]
    compare(str(tmp_path / "data.csv"), runs / "cmp", methods=methods, base_config=config, progress=False)
    (runs / "cmp" / JOB_FILE).write_text(json.dumps({"status": "completed", "request": {}}))
    results = json.loads((runs / "cmp" / "results.json").read_text())
    results["recommendation"] = {"method": "embed-logreg", "reason": "the best on validation."}
    (runs / "cmp" / "results.json").write_text(json.dumps(results))
    page = client.get("/").text

    def options(select):
        found = re.search(rf'<select name="run" id="{select}".*?</select>', page, re.S).group(0)
        return dict(re.findall(r'<option value="([^"]+)"( disabled| selected)?', found))

    # Try starts from the recommended run; Ship cannot export it (an encoder paired with a
    # scikit-learn model), so it is listed but cannot be picked, and Ship starts from one it can.
    assert options("try-run") == {"cmp/tfidf-nb": "", "cmp/embed-logreg": " selected"}
    assert options("ship-run") == {"cmp/tfidf-nb": " selected", "cmp/embed-logreg": " disabled"}
    assert "no export: serve it" in page
    # With no run that can be exported, Ship says so rather than offering nothing.
    shutil.rmtree(runs / "cmp" / "tfidf-nb")
    page = client.get("/").text
    assert options("ship-run") == {"cmp/embed-logreg": " disabled"}
    assert "no run here can be exported" in page
