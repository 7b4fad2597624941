"""Shared pieces of the hostile-input tests: tiny runs to damage, the CLI runner, and the
assertion that a failure is one sentence with exit code 2."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loralab.cli import app
from tests.conftest import synthetic_frame

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_sentence(result, code: int = 2) -> str:
    """The error line of a failed command: exit ``code``, no traceback, one ``error:`` line."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output, result.output
    assert result.output.count("error:") == 1, result.output
    assert "internal error" not in result.output, result.output
    return " ".join(result.output.split())


def make_data(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    synthetic_frame(80, 1).to_csv(folder / "train.csv", index=False)
    synthetic_frame(20, 2).to_csv(folder / "validation.csv", index=False)
    synthetic_frame(20, 3).to_csv(folder / "test.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def hostile_data(tmp_path_factory) -> Path:
    return make_data(tmp_path_factory.mktemp("hostile-data"))


@pytest.fixture(scope="module")
def tfidf_run(tmp_path_factory, hostile_data) -> Path:
    out = tmp_path_factory.mktemp("hostile-runs") / "tfidf"
    result = invoke("train", hostile_data, "-m", "tfidf-logreg", "-o", out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, hostile_data, tiny_bert) -> Path:
    out = tmp_path_factory.mktemp("hostile-runs") / "lora"
    args = ("train", hostile_data, "-m", "lora", "--model", tiny_bert, "--epochs", 1, "--lora-rank", 2)
    result = invoke(*args, "-o", out)
    assert result.exit_code == 0, result.output
    return out


def copy_run(run: Path, into: Path) -> Path:
    target = into / run.name
    shutil.copytree(run, target)
    return target


@contextlib.contextmanager
def tmpfs(folder: Path, size: str = "64k", read_only: bool = False):
    """A real, tiny or read-only file system at ``folder`` (root only; skips elsewhere)."""
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
