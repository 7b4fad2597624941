"""Commands that only parse or print help start without the heavy libraries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "transformers", "peft", "accelerate", "sklearn", "pandas", "fastapi", "matplotlib")
SRC = Path(__file__).resolve().parents[1] / "src"

PROBE = """
import json, sys
from loralab.cli import app
try:
    app(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)), file=sys.stderr)
"""


def heavy_modules_after(*args: str) -> list[str]:
    """The heavy libraries imported by running ``loralab ARGS`` in a fresh interpreter."""
    env = dict(os.environ, PYTHONPATH=str(SRC), HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [("--help",), ("predict", "--help"), ("train", "--help"), ("--version",)])
def test_help_and_version_import_no_heavy_library(args):
    assert heavy_modules_after(*args) == []


def test_the_probe_sees_a_heavy_import():
    # A command that loads the data readers imports pandas: the probe must notice it.
    assert "pandas" in heavy_modules_after("data", "inspect", "no-such-file.csv")
