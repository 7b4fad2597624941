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


def _contract_table() -> dict[str, list[str]]:
    """Package → the packages it may import, from the layers contract in pyproject.toml."""
    import tomllib

    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    levels = [[name.strip() for name in layer.split("|")] for layer in contract["layers"]]
    return {
        package: [below for lower in levels[depth + 1 :] for below in lower]
        for depth, level in enumerate(levels)
        for package in level
    }


def _documented_table() -> dict[str, list[str]]:
    """The same table as docs/architecture.md shows it (between its layers markers)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("<!-- layers:", 1)[1].split("<!-- /layers -->", 1)[0]
    rows = [line.split("|")[1:-1] for line in block.splitlines() if line.startswith("| `")]
    return {
        cells[0].strip().strip("`"): [n.strip() for n in cells[2].split(",") if n.strip() not in ("", "—")]
        for cells in rows
    }


def test_the_documented_layer_table_is_the_contract():
    expected = _contract_table()
    lines = "\n".join(f"| `{p}` | … | {', '.join(below) or '—'} |" for p, below in expected.items())
    assert _documented_table() == expected, "docs/architecture.md should list, top first:\n" + lines
    assert list(_documented_table()) == list(expected)  # in the contract's order, top first
