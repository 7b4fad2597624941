"""The HTML report renders in headless Chromium with every image loaded."""

import os
import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from loralab.cli import app
from loralab.config import TrainConfig
from loralab.runs.compare import compare

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Chromium's background services try to reach the network, which this machine does not have.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PROBE = """<script>window.addEventListener('load', () => {
  const images = [...document.images];
  const loaded = images.filter(i => i.complete && i.naturalWidth > 0).length;
  const details = [...document.querySelectorAll('details')];
  const overflow = document.documentElement.scrollWidth - window.innerWidth;
  const warnings = document.querySelectorAll('.warning').length;
  document.title = 'images ' + loaded + ' of ' + images.length + '; details ' +
    details.filter(d => d.open).length + ' open of ' + details.length + '; overflow ' + overflow +
    '; warnings ' + warnings;
});</script>"""


@pytest.fixture
def chromium():
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed; .ci/run installs it")
        pytest.skip("chromium is not installed")
    return CHROMIUM


def test_report_renders_with_every_image_loaded(chromium, synthetic_dir, tiny_bert, tmp_path):
    config = TrainConfig(model=str(tiny_bert), epochs=1, lr=5e-3)
    out = tmp_path / "cmp"
    compare(str(synthetic_dir), out, methods=["tfidf-logreg", "head"], base_config=config, progress=False)
    assert CliRunner().invoke(app, ["report", str(out)]).exit_code == 0
    page = (out / "report.html").read_text()
    probe = out / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [
            chromium,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
            "--window-size=1200,900",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    match = re.search(
        r"<title>images (\d+) of (\d+); details (\d+) open of (\d+); "
        r"overflow (-?\d+); warnings (\d+)</title>",
        dom,
    )
    assert match, dom[:500]
    loaded, total, opened, details, overflow, _ = map(int, match.groups())
    # Two runs: each has a confusion matrix and a reliability diagram; plus the summary plots.
    assert total >= 6 and loaded == total
    # The configurations are folded; nothing is wider than the window.
    assert details == 2 and opened == 0
    assert overflow <= 0
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            chromium,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={shot}",
            "--window-size=1200,2400",
            (out / "report.html").as_uri(),
        ],
        capture_output=True,
        timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 10_000
