"""docs/labs: every command and Python block of every lab page runs, on small slices of the data.

The pages name the real data (``../shared/data/imdb``, the lab's own CSV files); here those
names point at a few dozen rows of the same files, so the pages are checked end to end with
the embedded MiniLM in a minute or two each.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from loralab.cli import app
from tests.conftest import shared_data, synthetic_frame

pytestmark = pytest.mark.integration

LABS = Path(__file__).resolve().parents[1] / "docs" / "labs"
ROWS = {"train": 32, "validation": 16, "test": 16}
BLOCK = re.compile(r"```(bash|python)\n(.*?)```", re.S)


def small_copy(name: str, folder: Path) -> Path:
    """The first rows of each class of each split of a shared data set."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in ROWS.items():
        frame = pd.read_csv(shared_data(name) / f"{split}.csv")
        frame.groupby("label", group_keys=False).head(rows // 2).to_csv(folder / f"{split}.csv", index=False)
    return folder


def media_bias(folder: Path) -> None:
    """Stand-ins for the lab's files: three bias classes, told apart by their words."""
    for name, (n, seed) in {"media_bias_train.csv": (60, 1), "media_bias_test.csv": (30, 2)}.items():
        frame = synthetic_frame(n, seed, classes=3)
        frame["bias"] = frame.pop("label").map({"negative": "left", "positive": "right", "neutral": "center"})
        frame.to_csv(folder / name, index=False)


def run_page(page: Path, replacements: dict[str, str]) -> None:
    runner, namespace = CliRunner(), {"__name__": "__lab__"}
    text = page.read_text()
    for old, new in replacements.items():
        text = text.replace(old, new)
    blocks = BLOCK.findall(text)
    assert blocks, f"{page.name} has no code"
    for kind, code in blocks:
        if kind == "python":
            exec(compile(code, f"{page.name}:python", "exec"), namespace)  # noqa: S102
            continue
        for line in code.splitlines():
            if line.startswith("loralab "):
                result = runner.invoke(app, shlex.split(line)[1:])
                assert result.exit_code == 0, f"{page.name}: {line}\n{result.output}"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORALAB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


@pytest.mark.parametrize(
    "page, data",
    [
        ("000-media-bias.md", None),
        ("001-lora-basics.md", None),
        ("002-peft-lab.md", "imdb"),
        ("003-before-after.md", "imdb"),
        ("004-hf-ecosystem.md", "rotten_tomatoes"),
    ],
)
def test_lab_page_runs(page, data, workdir):
    replacements = {}
    if data is not None:
        replacements[f"../shared/data/{data}"] = str(small_copy(data, workdir / "data" / data))
    else:
        media_bias(workdir)
    run_page(LABS / page, replacements)
    if page == "001-lora-basics.md":
        assert (workdir / "merged-few-shot" / "README.md").exists()
