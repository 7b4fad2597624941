"""Score a file of any size in chunks, with constant memory, a progress bar, and resume.

Each chunk's scored rows are written as a part file (atomically: temporary name, then rename)
in a hidden folder next to the output. An interrupted job rerun with ``resume=True`` reads
past the chunks that already have a part and scores the rest; when every chunk is scored the
parts are joined into the output, again under a temporary name renamed at the end. One
process at a time scores into an output (a lock file next to it), and the job state records
the run and a digest of its model, so resuming with another run is refused.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from loralab.data.readers import blank_cells, csv_style, iter_table_chunks, table_format, written_header
from loralab.errors import DataError, LoralabError
from loralab.evaluation.evaluate import predictions_frame
from loralab.methods import Classifier
from loralab.runs.files import atomic_write, check_writable, model_fingerprint, read_json_file, write_json
from loralab.runs.load import load_run
from loralab.runs.locks import ExclusiveLock

STATE_FILE = "state.json"


def load_for_prediction(run: str | Path, backend: str = "torch", int8: bool = False, precision: str = "fp32"):
    """The classifier ``loralab predict`` scores with: the run's model with its adapters merged
    into the weights (one matrix product per layer instead of three) and its prediction fast
    paths verified on the merged model, or ONNX Runtime. ``precision`` (torch backend,
    transformer runs) is fp32, or bf16/fp16 autocast, or auto (bf16 where
    :mod:`loralab.training.precision` measures it faster). A TF-IDF run loads without torch."""
    if backend not in ("torch", "onnx"):
        raise LoralabError(f"--backend must be torch or onnx, got '{backend}'.")
    if int8 and backend != "onnx":
        raise LoralabError("--int8 goes with --backend onnx.")
    if precision != "fp32" and backend != "torch":
        raise LoralabError("--precision goes with --backend torch; the ONNX models are fp32 (or --int8).")
    if backend == "onnx":
        # deferred: loralab.runs.onnx imports loralab.runs.train (~1.2 s); only --backend onnx needs it
        from loralab.runs.onnx import load_onnx

        return load_onnx(run, int8=int8)
    classifier = load_run(run, for_prediction=True)
    if classifier.mixed_precision:
        # deferred: both import torch, which only transformer runs need (and have imported by now)
        from loralab.methods.neural import TransformerClassifier
        from loralab.training.precision import resolve_precision

        if isinstance(classifier, TransformerClassifier):
            classifier.precision = resolve_precision(precision, next(classifier.model.parameters()).device)
    elif precision != "fp32":
        raise LoralabError(
            f"--precision applies to runs that fine-tune a transformer; {run} is a "
            f"'{classifier.method}' run, which predicts in full precision."
        )
    return classifier


def _write_part(
    frame: pd.DataFrame, path: Path, fmt: str, header: bool, sep: str = ",", bom: bool = False
) -> None:
    if fmt in ("csv", "tsv"):
        # The byte-order mark goes at the start of the first part only: parts are joined as bytes.
        encoding = "utf-8-sig" if bom and header else "utf-8"
        with atomic_write(path, newline="", encoding=encoding) as handle:
            frame.to_csv(handle, header=header, index=False, sep=sep if fmt == "csv" else "\t")
    elif fmt == "jsonl":
        text = frame.to_json(orient="records", lines=True, force_ascii=False)
        with atomic_write(path, encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")
    else:
        with atomic_write(path, "wb") as handle:
            frame.to_parquet(handle, index=False)


def _join_parts(parts: list[Path], output: Path, fmt: str) -> None:
    with atomic_write(output, "wb") as out:
        if fmt == "parquet":
            # deferred: pyarrow.parquet adds ~0.3 s; only Parquet output needs it
            import pyarrow.parquet as pq

            writer = None
            for part in parts:
                table = pq.read_table(part)
                writer = writer or pq.ParquetWriter(out, table.schema)
                writer.write_table(table)
            if writer is not None:
                writer.close()
        else:
            for part in parts:
                with open(part, "rb") as handle:
                    shutil.copyfileobj(handle, out)


def _job_state(
    classifier: Classifier, input_path: Path, text_col: str, chunk_size: int, run: Path | None
) -> dict:
    stat = input_path.stat()
    state = {
        "input": str(input_path.resolve()),
        "input_bytes": stat.st_size,
        "input_modified": stat.st_mtime_ns,
        "text_col": text_col,
        "chunk_size": chunk_size,
        "method": classifier.method,
        "labels": list(classifier.labels),
    }
    if run is not None:  # two runs of one method and label set must not share an output
        state["run"] = str(Path(run).resolve())
        state["run_fingerprint"] = model_fingerprint(Path(run))
    return state


def parts_folder(output_path: Path) -> Path:
    return output_path.parent / f".{output_path.name}.parts"


@dataclass
class BatchScoring:
    """What :func:`predict_file` did: every input row has an output row; rows without text
    (missing, null, empty or only whitespace) have empty prediction columns and are counted
    here, with the numbers (from 1, as data rows) of the first of them."""

    rows: int
    without_text: int = 0
    without_text_rows: list[int] = field(default_factory=list)


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(input_path: Path, output_path: Path, chunk_size: int = 4096, overwrite: bool = False) -> str:
    """Refuse a scoring job whose output cannot be written, before any model is loaded; return
    the output's format."""
    out_fmt = table_format(output_path, writing=True)
    if out_fmt == "json":
        raise DataError(
            f"{output_path}: write .jsonl rather than a single JSON array, so files of any size stream."
        )
    if chunk_size < 1:
        raise DataError(f"--chunk-size must be ≥ 1, got {chunk_size}.")
    if not input_path.exists():
        raise DataError(f"{input_path}: no such file.")
    if _same_file(input_path, output_path):
        raise DataError(f"{output_path}: is the input file; write the scores to another file.")
    if output_path.is_dir():
        raise DataError(f"{output_path}: is a folder; name the file to write the scores to.")
    if output_path.exists() and not overwrite:
        raise DataError(f"{output_path}: already exists; choose another --output or pass --overwrite.")
    check_writable(output_path)
    return out_fmt


def no_text_column(input_path: str | Path, text_col: str, columns: Iterable[object]) -> DataError:
    return DataError(
        f"{input_path}: no text column '{text_col}'; the columns are "
        f"{', '.join(map(str, columns))} (choose one with --text-col)."
    )


def predict_file(
    classifier: Classifier,
    input_path: Path,
    output_path: Path,
    text_col: str = "text",
    chunk_size: int = 4096,
    batch_size: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    run: Path | None = None,
) -> BatchScoring:
    """Append predicted label, probability and per-class probabilities to every row of
    ``input_path``. ``resume`` continues an interrupted job (of the same ``run``, when given);
    an existing output is replaced only with ``overwrite``, and never when it is the input."""
    input_path, output_path = Path(input_path), Path(output_path)
    out_fmt = check_output(input_path, output_path, chunk_size, overwrite)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    lock = ExclusiveLock(output_path)
    if not lock.acquire():
        raise DataError(
            f"{output_path}: another loralab process is scoring into this file; wait for it to finish."
        )
    try:
        summary = _predict_locked(
            classifier, input_path, output_path, text_col, chunk_size, batch_size, resume, run, out_fmt
        )
        # The output now exists, so a job racing for the lock file is refused without --overwrite.
        lock.path.unlink(missing_ok=True)
        return summary
    except LoralabError:
        # Bad input leaves nothing to resume (its parts were removed): leave no lock file either.
        if not parts_folder(output_path).exists():
            lock.path.unlink(missing_ok=True)
        raise
    finally:
        lock.release()


def _predict_locked(
    classifier, input_path, output_path, text_col, chunk_size, batch_size, resume, run, out_fmt
) -> BatchScoring:
    parts_dir = parts_folder(output_path)
    state = _job_state(classifier, input_path, text_col, chunk_size, run)
    if parts_dir.exists() and resume:
        state_file = parts_dir / STATE_FILE
        previous = read_json_file(state_file, "run again without --resume") if state_file.exists() else {}
        changed = [k for k in state if previous.get(k) != state[k]]
        if changed:
            raise DataError(
                f"{output_path}: cannot resume, the job changed since it was interrupted "
                f"({', '.join(f'{k}: {previous.get(k)} → {state[k]}' for k in changed)}); "
                "run again without --resume to start over."
            )
    elif parts_dir.exists():
        shutil.rmtree(parts_dir)
    parts_dir.mkdir(exist_ok=True)
    write_json(parts_dir / STATE_FILE, state)
    try:
        parts, summary = _score_chunks(
            classifier, input_path, parts_dir, output_path.suffix, out_fmt, text_col, chunk_size, batch_size
        )
    except DataError:
        shutil.rmtree(parts_dir, ignore_errors=True)  # bad input: nothing worth resuming
        raise
    _join_parts(parts, output_path, out_fmt)
    shutil.rmtree(parts_dir)
    return summary


def _score_chunks(classifier, input_path, parts_dir, suffix, out_fmt, text_col, chunk_size, batch_size):
    """Score every chunk that has no part yet; return all part paths and what was scored.
    An interruption (Ctrl-C, kill) leaves the finished parts for a resume."""
    parts: list[Path] = []
    summary = BatchScoring(rows=0)
    # A CSV output keeps the separator and byte-order mark of a CSV input: European Excel saves
    # and opens ';'-separated files, and would show comma-separated scores as one column.
    sep, bom = ",", False
    if out_fmt == "csv" and table_format(input_path) == "csv":
        sep, bom = csv_style(input_path)
    bar = tqdm(unit="rows", desc="scoring", disable=None)
    header = None
    for index, chunk in enumerate(iter_table_chunks(input_path, chunk_size)):
        if index == 0:  # read once the file is known to be readable
            header = written_header(input_path)
        if header is not None and len(header) == len(chunk.columns):
            chunk.columns = header  # the output keeps the input's column names, an empty one too
        part = parts_dir / f"{index:06d}{suffix}"
        parts.append(part)
        if text_col not in chunk.columns:
            raise no_text_column(input_path, text_col, chunk.columns)
        chunk = chunk.reset_index(drop=True)
        column = chunk[text_col]
        has_text = ~blank_cells(column)
        empty = [summary.rows + i + 1 for i in chunk.index[~has_text.to_numpy()]]
        summary.without_text += len(empty)
        summary.without_text_rows += empty[: max(0, 20 - len(summary.without_text_rows))]
        summary.rows += len(chunk)
        bar.update(len(chunk))
        if part.exists():
            continue
        texts = column[has_text].astype(str).tolist()
        labels = classifier.labels
        probs = classifier.predict_proba(texts, batch_size) if texts else np.zeros((0, len(labels)))
        scored = predictions_frame(texts, probs, classifier.labels).drop(columns=["text"])
        scored.index = chunk.index[has_text.to_numpy()]
        out = pd.concat([chunk, scored.reindex(chunk.index)], axis=1)
        _write_part(out, part, out_fmt, header=index == 0, sep=sep, bom=bom)
    bar.close()
    return parts, summary
