"""Uploaded tables: checked before they are kept, then stored under the runs directory.

An upload is written to a hidden temporary name inside ``RUNS/uploads``, read back with the
same reader ``loralab train`` uses, and renamed to its final name only when it is a table with
rows, a text-like column and a column with at least two classes; otherwise it is deleted and
the page shows one sentence. The final name is ``uploads/DIGEST/NAME`` (the first 16 hex digits
of the content's SHA-256), so uploading the same file again keeps one copy. Nothing leaves the
machine.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from loralab.data.dataset import read_frames
from loralab.data.readers import read_table, table_format
from loralab.errors import DataError

UPLOADS = "uploads"
# A column is text-like when most of its cells are words, not numbers or codes.
TEXT_SHARE = 0.8
# Candidate label columns have few distinct values compared with the number of rows.
MAX_LABEL_SHARE = 0.5


@dataclass
class TableColumns:
    """What the page offers for choosing columns: text-like ones first, and a guess for each role."""

    path: Path
    rows: int
    columns: list[str]
    text_columns: list[str]
    label_columns: list[str]
    text_guess: str
    label_guess: str


def uploads_dir(runs_dir: Path) -> Path:
    return runs_dir / UPLOADS


def safe_name(filename: str) -> str:
    """The file's own name with anything but letters, digits, ``.-_`` replaced."""
    base = Path(filename.replace("\\", "/")).name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-.") or "upload"


def _mean_words(values: pd.Series) -> float:
    return float(values.astype(str).map(lambda text: len(text.split())).mean())


def _is_text_like(values: pd.Series) -> bool:
    cells = values.dropna().astype(str).str.strip()
    cells = cells[cells != ""]
    if cells.empty:
        return False
    numeric = pd.to_numeric(cells, errors="coerce").notna()
    return bool((~numeric).mean() >= TEXT_SHARE)


def describe_columns(frame: pd.DataFrame, path: Path, shown_name: str) -> TableColumns:
    """Find the text-like and label-like columns of ``frame``, or say in one sentence why
    it cannot train a classifier."""
    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    text_columns = [c for c in columns if _is_text_like(frame[c])]
    if not text_columns:
        raise DataError(
            f"{shown_name}: no column holds text (the columns are {', '.join(columns)}, all numbers "
            "or empty); upload a table with one column of texts."
        )
    text_guess = (
        "text" if "text" in text_columns else max(text_columns, key=lambda c: _mean_words(frame.loc[:, c]))
    )
    distinct = {c: frame[c].dropna().astype(str).nunique() for c in columns if c != text_guess}
    label_columns = [c for c, n in distinct.items() if 2 <= n <= max(2, MAX_LABEL_SHARE * len(frame))]
    if not label_columns:
        single = [c for c, n in distinct.items() if n == 1]
        if single:
            value = frame[single[0]].dropna().astype(str).iloc[0]
            raise DataError(
                f"{shown_name}: column '{single[0]}' has a single class ('{value}'); a classifier "
                "needs at least two."
            )
        others = ", ".join(c for c in columns if c != text_guess) or "none"
        raise DataError(
            f"{shown_name}: no column besides the text '{text_guess}' looks like labels (other columns: "
            f"{others}); add a column of class names."
        )
    label_guess = "label" if "label" in label_columns else min(label_columns, key=lambda c: distinct[c])
    return TableColumns(path, len(frame), columns, text_columns, label_columns, text_guess, label_guess)


def save_upload(runs_dir: Path, filename: str, stream: BinaryIO) -> TableColumns:
    """Store an uploaded table under ``RUNS/uploads`` after checking it; return its columns.

    A file that fails a check is removed and a :class:`DataError` names it by the user's
    file name (never the temporary one)."""
    name = safe_name(filename)
    try:
        table_format(Path(name))
    except DataError as err:
        raise DataError(str(err).replace(name, filename, 1)) from None
    folder = uploads_dir(runs_dir)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = "".join(Path(name).suffixes)
    fd, tmp = tempfile.mkstemp(prefix=".upload-", suffix=suffix, dir=folder)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as handle:
            while chunk := stream.read(1 << 20):
                handle.write(chunk)
                digest.update(chunk)
        try:
            frame = read_table(tmp)
        except DataError as err:
            raise DataError(str(err).replace(tmp, filename)) from None
        described = describe_columns(frame, Path(tmp), filename)
        # A folder per content keeps the user's file name, which names the comparisons on it;
        # the same file uploaded again is the copy already kept, not one more.
        final = folder / digest.hexdigest()[:16] / name
        final.parent.mkdir(exist_ok=True)
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    described.path = final
    return described


def source_columns(data: str) -> TableColumns:
    """Columns of DATA the user typed (a file, a folder of splits, ``demo``), read from its
    training part exactly as ``loralab train`` reads it."""
    frames, where, _ = read_frames(data)
    return describe_columns(frames["train"], Path(data), where["train"])
