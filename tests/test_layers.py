"""The layers contract (pyproject.toml, [tool.importlinter]): imports point down only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parents[1]
CHECK = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"


def lint(project: Path) -> subprocess.CompletedProcess:
    """Run import-linter on ``project`` (a folder with pyproject.toml and src/loralab)."""
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    return subprocess.run(
        [sys.executable, "-c", CHECK], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_package_keeps_its_layers():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    package = tmp_path / "src" / "loralab"
    shutil.copytree(ROOT / "src" / "loralab", package, ignore=shutil.ignore_patterns("__pycache__"))
    loading = package / "models" / "loading.py"
    upward = "\n\ndef _upward():\n    from loralab.runs import folder  # noqa: F401\n"
    loading.write_text(loading.read_text() + upward)
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and "loralab.models.loading -> loralab.runs.folder" in result.stdout


def test_a_module_outside_every_layer_breaks_the_contract(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    package = tmp_path / "src" / "loralab"
    shutil.copytree(ROOT / "src" / "loralab", package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "plugins.py").write_text('"""Not placed in any layer."""\n')
    result = lint(tmp_path)
    assert result.returncode != 0 and "loralab.plugins" in result.stdout
