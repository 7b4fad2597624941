"""Read one table file (CSV, TSV, JSON, JSONL, Parquet) into a DataFrame of strings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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


def table_format(path: Path) -> str:
    """Return the format name of ``path`` from its suffix, ignoring a compression suffix."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSION:
        suffixes = suffixes[:-1]
    if not suffixes or suffixes[-1] not in FORMATS:
        raise DataError(f"{path}: unsupported file type; use one of {', '.join(sorted(FORMATS))}.")
    return FORMATS[suffixes[-1]]


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a whole table; every cell of a text file is read as a string (empty → NaN)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file.")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a file.")
    fmt = table_format(path)
    try:
        if fmt == "csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        elif fmt == "tsv":
            frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_values=[""])
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
    except (ValueError, pd.errors.ParserError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{path}: cannot be read as {fmt} ({first}).") from err
    if frame.shape[0] == 0:
        raise DataError(f"{path}: the file has a header but no rows.")
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
                    "re-save the file as UTF-8."
                )
    return DataError(f"{path}: not valid UTF-8; re-save the file as UTF-8.")


def iter_table_chunks(path: str | Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    """Yield a table in chunks of ``chunk_size`` rows, with constant memory for CSV/TSV/JSONL.

    Parquet is read one row group at a time; a plain JSON array has to be read whole.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file.")
    fmt = table_format(path)
    try:
        if fmt in ("csv", "tsv"):
            sep = "," if fmt == "csv" else "\t"
            yield from pd.read_csv(
                path,
                sep=sep,
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                chunksize=chunk_size,
            )
        elif fmt == "jsonl":
            yield from pd.read_json(path, lines=True, dtype=False, chunksize=chunk_size)
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_size):
                yield batch.to_pandas()
        else:
            frame = read_table(path)
            for start in range(0, len(frame), chunk_size):
                yield frame.iloc[start : start + chunk_size]
    except pd.errors.EmptyDataError as err:
        raise DataError(f"{path}: the file is empty.") from err
    except UnicodeDecodeError as err:
        raise not_utf8(path) from err
