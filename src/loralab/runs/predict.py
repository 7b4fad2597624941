"""Score a file of any size in chunks, with constant memory and a progress bar."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from loralab.data.readers import iter_table_chunks, table_format
from loralab.errors import DataError
from loralab.methods import Classifier
from loralab.runs.train import predictions_frame


def _append(frame: pd.DataFrame, path: Path, fmt: str, first: bool, writer_state: dict) -> None:
    if fmt in ("csv", "tsv"):
        frame.to_csv(
            path, mode="w" if first else "a", header=first, index=False, sep="," if fmt == "csv" else "\t"
        )
    elif fmt == "jsonl":
        text = frame.to_json(orient="records", lines=True, force_ascii=False)
        with open(path, "w" if first else "a", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if first:
            writer_state["writer"] = pq.ParquetWriter(path, table.schema)
        writer_state["writer"].write_table(table)
    else:
        raise DataError(f"{path}: write CSV, TSV, JSONL or Parquet (not {fmt}).")


def predict_file(
    classifier: Classifier,
    input_path: Path,
    output_path: Path,
    text_col: str = "text",
    chunk_size: int = 4096,
    batch_size: int | None = None,
) -> int:
    """Append label, probability and per-class probabilities to every row of ``input_path``.

    The output is written under a temporary name and renamed when complete.
    """
    out_fmt = table_format(output_path)
    if out_fmt == "json":
        raise DataError(
            f"{output_path}: write .jsonl rather than a single JSON array, so files of any size stream."
        )
    output_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{output_path.name}.", suffix=output_path.suffix, dir=output_path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    rows, state = 0, {}
    try:
        bar = tqdm(unit="rows", desc="scoring", disable=None)
        for index, chunk in enumerate(iter_table_chunks(input_path, chunk_size)):
            if text_col not in chunk.columns:
                raise DataError(
                    f"{input_path}: no text column '{text_col}'; the columns are "
                    f"{', '.join(map(str, chunk.columns))} (choose one with --text-col)."
                )
            texts = chunk[text_col].fillna("").astype(str).tolist()
            probs = classifier.predict_proba(texts, batch_size)
            scored = predictions_frame(texts, probs, classifier.labels).drop(columns=["text"])
            out = pd.concat([chunk.reset_index(drop=True), scored], axis=1)
            _append(out, tmp, out_fmt, index == 0, state)
            rows += len(chunk)
            bar.update(len(chunk))
        bar.close()
        if "writer" in state:
            state["writer"].close()
        shutil.move(tmp, output_path)
    except BaseException:
        if "writer" in state:
            state["writer"].close()
        tmp.unlink(missing_ok=True)
        raise
    return rows
