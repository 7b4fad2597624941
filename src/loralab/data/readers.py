"""Read one table file (CSV, TSV, JSON, JSONL, Parquet) into a DataFrame of strings."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import re
import zlib
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import pandas as pd

from loralab.errors import DataError

# Compression suffixes pandas understands on its own.
_COMPRESSION = {".bz2", ".gz", ".xz", ".zip", ".zst"}
FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


# Spreadsheet files, which loralab does not read: the user is told how to save them as CSV.
_SPREADSHEETS = {".xlsx", ".xlsm", ".xls", ".ods"}


def table_format(path: Path, writing: bool = False) -> str:
    """Return the format name of ``path`` from its suffix, ignoring a compression suffix;
    ``writing`` for a file to be written, which is refused with other advice."""
    suffix = _format_suffix(path)
    if suffix not in FORMATS:
        hint = ""
        if suffix in _SPREADSHEETS:
            hint = (
                "write a .csv, which the spreadsheet opens, or "
                if writing
                else "save it from the spreadsheet as 'CSV UTF-8 (Comma delimited) (*.csv)', or "
            )
        raise DataError(f"{path}: unsupported file type; {hint}use one of {', '.join(sorted(FORMATS))}.")
    return FORMATS[suffix]


def _format_suffix(path: Path) -> str:
    """The suffix that names the format of ``path`` (``.txt`` of ``f.txt.gz``), or ``""``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSION:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _csv_separator(path: Path) -> str:
    """``,`` or ``;``, what spreadsheets export as "CSV" where the decimal mark is a comma.
    pandas does not guess a separator unless it reads with its slow Python engine
    (``sep=None``), so the opening lines decide here: the separator that splits every one of
    them into as many fields as the header, else the one that splits the header into more."""
    opening, whole = _opening(path)
    scores = {}
    for sep in (",", ";"):
        records = [r for r in csv.reader(io.StringIO(opening), delimiter=sep) if r]
        if not whole and len(records) > 2:
            records.pop()  # the last may be cut inside a quoted line break
        width = len(records[0]) if records else 0
        scores[sep] = (all(len(r) == width for r in records[1:]), width)
    # A header such as "text;label;score (0,1)" holds a comma too: the field counts tell.
    return ";" if scores[";"][1] > 1 and scores[";"] > scores[","] else ","


def csv_style(path: Path) -> tuple[str, bool]:
    """The separator of a CSV file and whether it begins with a byte-order mark, as Excel's
    "CSV UTF-8" does: what a scored copy of it is written with, so Excel opens it the same way."""
    return _csv_separator(path), _opening(path)[0].startswith("\ufeff")


_OPENING_CHARS = 1 << 16


def _opening(path: Path) -> tuple[str, bool]:
    """The first 64 KiB of a text file up to its last line break in them, and whether that is
    the whole file; ``""`` where it is not read here (pandas reads it and reports what is wrong)."""
    openers: dict[str, Callable[..., IO[str]]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
    suffix = path.suffix.lower()
    if suffix in _COMPRESSION and suffix not in openers:
        return "", True  # .zip and .zst: read by pandas alone, with commas
    try:
        with openers.get(suffix, open)(path, "rt", encoding="utf-8", errors="replace") as handle:
            text = handle.read(_OPENING_CHARS)
    except (*_DAMAGED, ValueError):
        return "", True
    if len(text) < _OPENING_CHARS:
        return text, True
    return (text[: text.rindex("\n") + 1] if "\n" in text else text), False


# What a damaged compressed file raises: gzip's EOFError and BadGzipFile, zlib.error, lzma's
# LZMAError, bz2's OSError; each is reported as the file being damaged.
_DAMAGED = (EOFError, zlib.error, lzma.LZMAError, OSError)


def _damaged(path: Path, err: BaseException) -> DataError:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if path.suffix.lower() in _COMPRESSION:
        return DataError(f"{path}: the compressed file is truncated or damaged ({first}).")
    return DataError(f"{path}: cannot be read ({first}).")


def _surrogate_escape(path: Path, err: UnicodeEncodeError) -> DataError:
    bad = err.object[err.start : err.end]
    return DataError(
        f"{path}: holds text that is not valid Unicode (a lone surrogate such as "
        f"\\u{ord(bad[0]):04x}, written as an escape); re-save the file as UTF-8."
    )


def first_invalid_character(text: str) -> int | None:
    """Index of the first character that cannot be encoded as UTF-8 (a lone surrogate, which
    is what undecodable bytes in a command-line argument become), or None."""
    match = _SURROGATE.search(text)
    return match.start() if match else None


_SURROGATE = re.compile("[\ud800-\udfff]")


# Characters that show nothing: white space, control characters (Unicode category Cc, NUL
# among them) and format characters (Cf: zero-width spaces and joiners, the byte-order mark,
# direction marks, tag characters). A text made of these alone has no word to classify, so it
# is blank like an empty one. Written out rather than built from unicodedata at import (0.3 s
# per process); tests/test_hostile_properties.py checks it against this Python's Unicode database.
INVISIBLE = (
    r"[\s\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e"
    r"\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd"
    r"\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    r"\U000e0020-\U000e007f]*"
)
_BLANK = re.compile(INVISIBLE)


def is_blank(text: str) -> bool:
    """Whether ``text`` has no visible character: empty, white space, or only control and
    format characters such as NUL or zero-width spaces."""
    return _BLANK.fullmatch(text) is not None


def blank_cells(column: pd.Series) -> pd.Series:
    """Which cells of ``column`` are missing or hold a blank text (see :func:`is_blank`)."""
    return column.isna() | column.astype(str).str.fullmatch(INVISIBLE)


def is_missing(value: Any) -> bool:
    """Whether ``value`` is a missing value (None, NaN, ``pd.NA``, NaT) rather than a value."""
    return pd.api.types.is_scalar(value) and bool(pd.isna(value))


def check_texts(
    texts: Sequence[object],
    where: str,
    what: str = "text",
    first: int = 1,
    fix: str = "send a text to classify",
) -> None:
    """Refuse a text that is missing (None or NaN), empty or not valid Unicode, naming it by
    number (from ``first``) and, for Unicode, by position; ``fix`` says what to do instead.

    Refused rather than replaced so a label is never given to something other than what the
    user sent (``str(None)`` is the text "None"); the same rule holds on the command line, in
    files, over HTTP and in the Python API."""
    for number, text in enumerate(texts, start=first):
        if is_missing(text):
            raise DataError(f"{where}: {what} {number} is missing ({text!r}); {fix}.")
        if isinstance(text, str):
            if is_blank(text):  # a file's empty rows are left unscored; a sent text is asked for
                what_is = "empty" if not text.strip() else "blank (only control or zero-width characters)"
                raise DataError(f"{where}: {what} {number} is {what_is}; {fix}.")
            position = first_invalid_character(text)
            if position is not None:
                raise DataError(
                    f"{where}: {what} {number} is not valid Unicode (character {position + 1} is "
                    f"an undecodable byte or a lone surrogate \\u{ord(text[position]):04x}); send UTF-8 text."
                )


def _header_names(path: Path, sep: str) -> list[str]:
    """The first row of a CSV/TSV file as written (pandas renames duplicates to ``x.1``)."""
    head = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False)
    return [str(v) for v in head.iloc[0].tolist()] if len(head) else []


def written_header(path: str | Path) -> list[str] | None:
    """The header of a CSV/TSV file as written (``None`` for other formats): pandas reads an
    empty header cell, a saved index's, as ``Unnamed: 0``, which is not the file's name for it."""
    path = Path(path)
    sep = _separator(path, table_format(path))
    return _header_names(path, sep) if sep is not None else None


def table_columns(path: str | Path, chunk_size: int = 1000) -> list[str]:
    """The column names of a table as reading it in chunks of ``chunk_size`` rows finds them in
    its first chunk (a CSV/TSV file's as written), with the errors reading it would raise; only
    that chunk is read, except from a plain JSON array."""
    chunks = iter_table_chunks(path, chunk_size)
    try:
        first = next(chunks)
    finally:
        chunks.close()
    header = written_header(path)
    if header is not None and len(header) == len(first.columns):
        return header
    return [str(name) for name in first.columns]


def _separator(path: Path, fmt: str) -> str | None:
    """The field separator of a CSV/TSV file (``None`` for other formats)."""
    return _csv_separator(path) if fmt == "csv" else "\t" if fmt == "tsv" else None


def _check_columns(path: Path, sep: str | None, frame: pd.DataFrame) -> None:
    """Refuse repeated column names: read from the header of a CSV/TSV file (``sep``), where
    pandas would rename them, else from ``frame``; and a TSV file whose header is one column
    holding commas or semicolons."""
    names = _header_names(path, sep) if sep is not None else [str(c) for c in frame.columns]
    if sep == "\t" and len(names) == 1 and ("," in names[0] or ";" in names[0]):
        # A comma file named .txt would otherwise be missing a column that its one column
        # names ("no text column 'text'; the columns are text,label").
        kind = "comma" if "," in names[0] else "semicolon"
        raise DataError(
            f"{path}: read as tab-separated ({_format_suffix(path)}), but its header has no tab and "
            f"its one column is '{names[0]}'; if the file is {kind}-separated, name it .csv."
        )
    repeated = sorted({str(n) for n in names if names.count(n) > 1})
    if repeated:
        raise DataError(
            f"{path}: the column name(s) {', '.join(map(repr, repeated))} occur more than once; "
            "rename them so each column has its own name."
        )


def _check_cells(path: Path, frame: pd.DataFrame, first_row: int = 1, sep: str | None = None) -> None:
    for column in frame.columns:
        for offset, value in enumerate(frame[column].tolist()):
            if isinstance(value, str) and first_invalid_character(value) is not None:
                raise DataError(
                    f"{path}: row {first_row + offset}, column '{column}' is not valid Unicode "
                    "(a lone surrogate); re-save the file as UTF-8."
                )
    if sep is not None:
        _check_run_on(path, frame, first_row, sep)


def _unclosed_quote(path: Path, parser_message: str) -> DataError | None:
    """pandas' "EOF inside string starting at row N" said as what it means for a user."""
    match = re.search(r"EOF inside string starting at row (\d+)", parser_message)
    if match is None:
        return None
    return DataError(
        f"{path}: row {match[1]} starts a field with a quote mark that is never closed, so the "
        'rest of the file would be one text; write a quote mark that is part of a text twice ("") '
        "or remove it."
    )


def _check_run_on(path: Path, frame: pd.DataFrame, first_row: int, sep: str) -> None:
    """Refuse a cell that swallowed rows: in CSV and TSV a quote mark at the start of a field
    opens a quoted field that runs to the next quote mark, over line ends and separators, so
    a tweet that starts with '"' can silently merge the rows after it into one text. A quoted
    text may hold line breaks and separators of its own, so a cell is refused only when two
    or more of its lines end (or start) like a row: the separator, then a value of the file's
    last (or first) column."""
    if len(frame.columns) < 2:
        return
    first, last = frame.columns[0], frame.columns[-1]
    endings = {v for v in frame[last].dropna().astype(str) if v and "\n" not in v}
    openings = {v for v in frame[first].dropna().astype(str) if v and "\n" not in v}
    for column in frame.columns:
        for offset, value in enumerate(frame[column].tolist()):
            if not isinstance(value, str) or value.count("\n") < 2:
                continue
            inner = value.split("\n")[1:]
            like_rows = sum(
                1
                for line in inner
                if sep in line
                and (
                    (column != last and line.rsplit(sep, 1)[1].strip('" ') in endings)
                    or (column != first and line.split(sep, 1)[0].strip('" ') in openings)
                )
            )
            if like_rows >= 2:
                raise DataError(
                    f"{path}: row {first_row + offset}, column '{column}' runs over "
                    f"{value.count(chr(10)) + 1} lines, {like_rows} of which look like rows of their "
                    "own: a quote mark at the start of a field opens a quoted field up to the next "
                    'quote mark; write a quote mark that is part of a text twice ("") or remove it.'
                )


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a whole table; every cell of a text file is read as a string (empty → NaN)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file.")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a file.")
    fmt = table_format(path)
    sep = _separator(path, fmt)
    try:
        if sep is not None:
            frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""])
        elif fmt == "jsonl":
            frame = pd.read_json(path, lines=True, dtype=False)
        elif fmt == "json":
            try:
                frame = pd.read_json(path, dtype=False)
            except ValueError:
                frame = pd.read_json(path, lines=True, dtype=False)
        else:
            frame = pd.read_parquet(path)
    except pd.errors.EmptyDataError as err:
        raise DataError(f"{path}: the file is empty.") from err
    except UnicodeDecodeError as err:
        raise not_utf8(path) from err
    except UnicodeEncodeError as err:
        raise _surrogate_escape(path, err) from err
    except (ValueError, pd.errors.ParserError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        unreadable = DataError(f"{path}: cannot be read as {fmt} ({first}).")
        raise _unclosed_quote(path, first) or unreadable from err
    except _DAMAGED as err:
        raise _damaged(path, err) from err
    if frame.shape[0] == 0:
        raise DataError(f"{path}: the file has a header but no rows.")
    try:
        _check_columns(path, sep, frame)
    except _DAMAGED as err:
        raise _damaged(path, err) from err
    _check_cells(path, frame, sep=sep)
    return frame


def not_utf8(path: Path) -> DataError:
    """The error for a file that is not UTF-8, naming its first bad line."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as err:
                return DataError(
                    f"{path}: line {number} is not valid UTF-8 (byte {err.start + 1} of the line); "
                    "re-save the file as UTF-8 (in Excel: Save As → 'CSV UTF-8')."
                )
    return DataError(f"{path}: not valid UTF-8; re-save the file as UTF-8 (in Excel: Save As → 'CSV UTF-8').")


def iter_table_chunks(path: str | Path, chunk_size: int) -> Generator[pd.DataFrame, None, None]:
    """Yield a table in chunks of ``chunk_size`` rows, with constant memory for CSV/TSV/JSONL.

    Every line of a CSV/TSV file is a row, a blank or whitespace-only one included, so the
    output of batch scoring has one row per input line. Parquet is read one row group at a
    time; a plain JSON array has to be read whole.
    """
    path = Path(path)
    if chunk_size < 1:
        raise DataError(f"--chunk-size must be ≥ 1, got {chunk_size}.")
    if not path.exists():
        raise DataError(f"{path}: no such file.")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a file.")
    fmt = table_format(path)
    first_row = 1
    try:
        sep = _separator(path, fmt)
        if sep is not None:
            _check_columns(path, sep, pd.DataFrame())
            chunks: Iterator[pd.DataFrame] = pd.read_csv(
                path,
                sep=sep,
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                skip_blank_lines=False,
                chunksize=chunk_size,
            )
        elif fmt == "jsonl":
            chunks = pd.read_json(path, lines=True, dtype=False, chunksize=chunk_size)
        elif fmt == "parquet":
            # deferred: pyarrow.parquet adds ~0.3 s to every command; only Parquet files need it
            import pyarrow.parquet as pq

            chunks = (b.to_pandas() for b in pq.ParquetFile(path).iter_batches(batch_size=chunk_size))
        else:
            frame = read_table(path)
            chunks = (frame.iloc[start : start + chunk_size] for start in range(0, len(frame), chunk_size))
        for chunk in chunks:
            _check_cells(path, chunk, first_row, sep)
            first_row += len(chunk)
            yield chunk
        if first_row == 1:
            raise DataError(f"{path}: the file has no rows.")
    except pd.errors.EmptyDataError as err:
        raise DataError(f"{path}: the file is empty.") from err
    except UnicodeDecodeError as err:
        raise not_utf8(path) from err
    except UnicodeEncodeError as err:
        raise _surrogate_escape(path, err) from err
    except (ValueError, pd.errors.ParserError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise _unclosed_quote(path, first) or DataError(
            f"{path}: cannot be read as {fmt} near row {first_row} ({first})."
        ) from err
    except _DAMAGED as err:
        raise _damaged(path, err) from err
