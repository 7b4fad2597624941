"""The ui end to end in headless Chromium: upload, choose columns, compare, report, classify,
score a file, export, browse; and each bad input's sentence on the page.

Playwright drives Debian's chromium (never a browser downloaded by ``playwright install``).
Screenshots of each step go to a temporary folder, or to ``$LORALAB_UI_SCREENSHOTS`` (that is
how docs/ui/*.png are made).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import synthetic_frame

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Chromium's background services try to reach the network, which the test machine does not have.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 60_000


def _missing(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; .ci/run installs what the browser tests need")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
    if CHROMIUM is None:
        _missing("chromium is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served(tmp_path, tiny_bert):
    """The real app on a loopback port, as ``loralab ui`` runs it."""
    import uvicorn

    from loralab.ui.app import create_app

    app = create_app(tmp_path / "runs", model=str(tiny_bert))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the ui did not start"
        time.sleep(0.05)
    yield app, f"http://127.0.0.1:{port}"
    app.state.worker.wait(60)
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def page(browser, served):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    tab.goto(served[1])
    yield tab
    context.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("LORALAB_UI_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _upload(page, path: Path):
    page.set_input_files("#upload-file", str(path))
    page.click("#upload-button")


def test_the_whole_workflow_in_the_browser(page, served, tmp_path, shots):
    runs = served[0].state.runs_dir
    frame = synthetic_frame(200, seed=3).rename(columns={"text": "tweet", "label": "bias"})
    frame.insert(0, "id", range(len(frame)))
    tweets = tmp_path / "tweets.csv"
    frame.to_csv(tweets, index=False)
    page.screenshot(path=shots / "0-start.png", full_page=True)

    # 1. Load data and choose its columns.
    _upload(page, tweets)
    page.wait_for_selector("#columns-form")
    assert page.input_value("#text-col") == "tweet" and page.input_value("#label-col") == "bias"
    page.select_option("#label-col", "bias")
    page.click("#inspect-button")
    page.wait_for_selector("#compare-form")
    assert "negative, positive" in page.inner_text("#inspection")
    assert "tfidf-logreg" in page.inner_text("#compare-form")
    page.locator("#data").screenshot(path=shots / "1-data.png")

    # 2. Compare two fast methods.
    for box in page.locator("#compare-form input[name=methods]").all():
        box.uncheck()
    page.check("#method-tfidf-logreg")
    page.check("#method-tfidf-nb")
    page.click("#start-button")
    page.wait_for_selector("#job-status:text('completed')")
    rows = page.locator("#results table.results tbody tr")
    assert rows.count() == 2
    assert "tfidf-logreg" in page.inner_text("#results") and "tfidf-nb" in page.inner_text("#results")
    recommendation = page.inner_text("#recommendation")
    assert recommendation.startswith(("Recommended", "Best on validation"))
    page.locator("#compare").screenshot(path=shots / "2-compare.png")

    # The report, one click away, in a new tab.
    with page.context.expect_page() as opened:
        page.click("#report-link")
    report = opened.value
    report.wait_for_load_state()
    assert "tfidf-nb" in report.content()
    report.screenshot(path=shots / "3-report.png")
    report.close()

    # 3. Try a model: two typed texts, then a file scored and downloaded.
    choices = [o.get_attribute("value") for o in page.locator("#try-run option").all()]
    page.select_option("#try-run", value=next(v for v in choices if v.endswith("/tfidf-logreg")))
    page.fill("#try-texts", "a wonderful, charming film\nan awful, boring film")
    page.click("#classify-button")
    page.wait_for_selector("#classified")
    labels = page.locator("#classified td.label").all_inner_texts()
    assert labels == ["positive", "negative"]
    to_score = tmp_path / "new-tweets.csv"
    synthetic_frame(25, seed=9).rename(columns={"text": "tweet"}).to_csv(to_score, index=False)
    page.set_input_files("#score-file", str(to_score))
    page.click("#score-button")
    page.wait_for_selector("#download-link")
    with page.expect_download() as download:
        page.click("#download-link")
    scored = tmp_path / "scored.csv"
    download.value.save_as(scored)
    import pandas as pd

    scored_frame = pd.read_csv(scored)
    assert len(scored_frame) == 25
    assert list(scored_frame.columns[:4]) == ["tweet", "label", "predicted", "probability"]
    assert set(scored_frame["predicted"]) <= {"negative", "positive"}
    page.locator("#try").screenshot(path=shots / "4-try.png")

    # 4. Ship it.
    page.click("#export-button")
    page.wait_for_selector("#serve-command")
    assert page.inner_text("#serve-command").startswith("loralab serve ")
    page.locator("#ship").screenshot(path=shots / "5-ship.png")

    # 5. Browse runs.
    page.click("#refresh-runs")
    page.wait_for_selector("#runs-table td:text('tfidf-nb')")
    assert page.locator("#runs-table tbody tr").count() >= 3
    page.locator("#browse").screenshot(path=shots / "6-runs.png")
    assert (runs / "exports").is_dir()


BAD_FILES = [
    ("empty.csv", b"", "the file is empty"),
    ("photo.png", b"\x89PNG\r\n\x1a\n\x00\x00", "unsupported file type"),
    ("scores.csv", b"a,b\n1,2\n3,4\n", "no column holds text"),
    ("oneclass.csv", b"text,label\ngood,pos\nbad,pos\n", "has a single class ('pos')"),
]


def test_each_bad_input_shows_its_sentence(page, served, tmp_path, shots, monkeypatch):
    app, _ = served
    runs = app.state.runs_dir
    for name, content, expected in BAD_FILES:
        path = tmp_path / name
        path.write_bytes(content)
        _upload(page, path)
        page.wait_for_selector(f'#data-columns .error:has-text("{name}")')
        sentence = page.inner_text("#data-columns .error")
        assert expected in sentence, sentence
    page.locator("#data").screenshot(path=shots / "7-bad-upload.png")
    assert not [p for p in (runs / "uploads").rglob("*") if p.is_file()]

    # A second job while one runs is refused on the page.
    release = threading.Event()
    monkeypatch.setattr(app.state.worker, "run", lambda request, folder: release.wait(30))
    good = tmp_path / "good.csv"
    synthetic_frame(60).to_csv(good, index=False)
    _upload(page, good)
    page.click("#inspect-button")
    page.wait_for_selector("#compare-form")
    page.click("#start-button")
    page.wait_for_selector("#cancel-button")
    page.click("#start-button")
    page.wait_for_selector("#busy-notice")
    assert "already running" in page.inner_text("#busy-notice")
    assert page.is_visible("#cancel-button")  # the live progress of the running job stays
    release.set()
    app.state.worker.wait(10)


def test_a_run_deleted_while_the_page_shows_it(browser, served, tmp_path):
    from loralab.config import TrainConfig
    from loralab.runs.compare import compare

    app, url = served
    data = tmp_path / "data.csv"
    synthetic_frame(80).to_csv(data, index=False)
    compare(
        str(data), app.state.runs_dir / "cmp", methods=["tfidf-nb"], base_config=TrainConfig(), progress=False
    )
    context = browser.new_context()
    page = context.new_page()
    page.goto(url)
    shutil.rmtree(app.state.runs_dir / "cmp" / "tfidf-nb")
    page.fill("#try-texts", "a fine film")
    page.click("#classify-button")
    page.wait_for_selector("#try-result .error")
    assert "no longer exists" in page.inner_text("#try-result .error")
    context.close()


def test_live_progress_cancel_and_start_again(page, served, tmp_path, shots, monkeypatch):
    app = served[0]
    worker = app.state.worker
    paused, release = threading.Event(), threading.Event()
    check = worker._check

    def pause_after_each_epoch(row: dict) -> None:
        # Holds the job after its first epoch so the page can be seen mid-run.
        if "epoch" in row and not release.is_set():
            paused.set()
            release.wait(30)
        check(row)

    monkeypatch.setattr(worker, "_check", pause_after_each_epoch)
    data = tmp_path / "reviews.csv"
    synthetic_frame(80).to_csv(data, index=False)
    _upload(page, data)
    page.click("#inspect-button")
    page.wait_for_selector("#compare-form")
    for box in page.locator("#compare-form input[name=methods]").all():
        box.uncheck()
    page.check("#method-lora")
    page.click("#start-button")
    assert paused.wait(60)
    # 64 training texts fill two batches of 32: the floor of 100 optimizer steps plans 50 epochs.
    page.wait_for_selector("#progress td:text('1 / 50')")
    row = page.locator("#progress table.progress tbody tr").first.inner_text()
    assert "lora" in row and "running" in row
    assert page.inner_text("#job-status") == "running"
    page.locator("#compare").screenshot(path=shots / "2a-progress.png")
    # A second tab reads the same state from the folders.
    second = page.context.new_page()
    second.goto(served[1])
    assert second.inner_text("#job-status") == "running"
    assert "1 / 50" in second.inner_text("#progress table.progress")
    second.close()

    page.click("#cancel-button")
    page.wait_for_selector("text=stopping after the current epoch")
    release.set()
    page.wait_for_selector("#job-status:text('cancelled')")
    assert "interrupted" in page.inner_text("#progress table.progress")
    page.locator("#compare").screenshot(path=shots / "2b-cancelled.png")

    page.click("#resume-button")
    page.wait_for_selector("#job-status:text('completed')")
    assert "lora" in page.inner_text("#results table.results")


def test_the_demo_data_is_one_click(page):
    page.click("#demo-button")
    page.wait_for_selector("#columns-form")
    assert page.input_value("#text-col") == "text" and page.input_value("#label-col") == "label"
