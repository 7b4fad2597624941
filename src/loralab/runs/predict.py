"""Score a file of any size in chunks, with constant memory, a progress bar, and resume.

Each chunk's scored rows are written as a part file (atomically: temporary name, then rename)
in a hidden folder next to the output. An interrupted job rerun with ``resume=True`` reads
past the chunks that already have a part and scores the rest; when every chunk is scored the
parts are joined into the output, again under a temporary name renamed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from loralab.data.readers import iter_table_chunks, table_format
from loralab.errors import DataError
from loralab.evaluation.evaluate import predictions_frame
from loralab.methods import Classifier

STATE_FILE = "state.json"


def load_for_prediction(run: str | Path, backend: str = "torch", int8: bool = False, precision: str = "fp32"):
    """The classifier ``loralab predict`` scores with: the run's model with its adapters merged
    into the weights (one matrix product per layer instead of three), or ONNX Runtime.
    ``precision`` (torch backend, transformer runs) is fp32, or bf16/fp16 autocast, or auto
    (bf16 where :mod:`loralab.training.precision` measures it faster)."""
    from loralab.errors import LoralabError
    from loralab.methods.base import TransformerClassifier
    from loralab.methods.merge import merge_adapters
    from loralab.runs.train import load_run
    from loralab.training.precision import resolve_precision

    if backend not in ("torch", "onnx"):
        raise LoralabError(f"--backend must be torch or onnx, got '{backend}'.")
    if int8 and backend != "onnx":
        raise LoralabError("--int8 goes with --backend onnx.")
    if precision != "fp32" and backend != "torch":
        raise LoralabError("--precision goes with --backend torch; the ONNX models are fp32 (or --int8).")
    if backend == "onnx":
        from loralab.runs.onnx import load_onnx

        return load_onnx(run, int8=int8)
    classifier = load_run(run)
    if isinstance(classifier, TransformerClassifier):
        classifier.model, _ = merge_adapters(classifier.model)
        classifier.model.eval()
        classifier.precision = resolve_precision(precision, next(classifier.model.parameters()).device)
    elif precision != "fp32":
        raise LoralabError(
            f"--precision applies to runs that fine-tune a transformer; {run} is a "
            f"'{classifier.method}' run, which predicts in full precision."
        )
    return classifier


def _write_part(frame: pd.DataFrame, path: Path, fmt: str, header: bool) -> None:
    tmp = path.with_name(path.name + ".tmp")
    if fmt in ("csv", "tsv"):
        frame.to_csv(tmp, header=header, index=False, sep="," if fmt == "csv" else "\t")
    elif fmt == "jsonl":
        text = frame.to_json(orient="records", lines=True, force_ascii=False)
        tmp.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    else:
        frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def _join_parts(parts: list[Path], output: Path, fmt: str) -> None:
    tmp = output.with_name(f".{output.name}.joining")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        writer = None
        for part in parts:
            table = pq.read_table(part)
            writer = writer or pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
        if writer is not None:
            writer.close()
    else:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as handle:
                    shutil.copyfileobj(handle, out)
    os.replace(tmp, output)


def _job_state(classifier: Classifier, input_path: Path, text_col: str, chunk_size: int) -> dict:
    stat = input_path.stat()
    return {
        "input": str(input_path.resolve()),
        "input_bytes": stat.st_size,
        "input_modified": stat.st_mtime_ns,
        "text_col": text_col,
        "chunk_size": chunk_size,
        "method": classifier.method,
        "labels": list(classifier.labels),
    }


def parts_folder(output_path: Path) -> Path:
    return output_path.parent / f".{output_path.name}.parts"


def predict_file(
    classifier: Classifier,
    input_path: Path,
    output_path: Path,
    text_col: str = "text",
    chunk_size: int = 4096,
    batch_size: int | None = None,
    resume: bool = False,
) -> int:
    """Append predicted label, probability and per-class probabilities to every row of
    ``input_path``; return the number of rows. ``resume`` continues an interrupted job."""
    input_path, output_path = Path(input_path), Path(output_path)
    out_fmt = table_format(output_path)
    if out_fmt == "json":
        raise DataError(
            f"{output_path}: write .jsonl rather than a single JSON array, so files of any size stream."
        )
    if not input_path.exists():
        raise DataError(f"{input_path}: no such file.")
    output_path.parent.mkdir(parents=True, exist_ok=True)
    parts_dir = parts_folder(output_path)
    state = _job_state(classifier, input_path, text_col, chunk_size)
    if parts_dir.exists() and resume:
        previous = (
            json.loads((parts_dir / STATE_FILE).read_text()) if (parts_dir / STATE_FILE).exists() else {}
        )
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
    (parts_dir / STATE_FILE).write_text(json.dumps(state, indent=2))
    try:
        parts, rows = _score_chunks(
            classifier, input_path, parts_dir, output_path.suffix, out_fmt, text_col, chunk_size, batch_size
        )
    except DataError:
        shutil.rmtree(parts_dir, ignore_errors=True)  # bad input: nothing worth resuming
        raise
    _join_parts(parts, output_path, out_fmt)
    shutil.rmtree(parts_dir)
    return rows


def _score_chunks(classifier, input_path, parts_dir, suffix, out_fmt, text_col, chunk_size, batch_size):
    """Score every chunk that has no part yet; return all part paths and the row count.
    An interruption (Ctrl-C, kill) leaves the finished parts for a resume."""
    parts, rows = [], 0
    bar = tqdm(unit="rows", desc="scoring", disable=None)
    for index, chunk in enumerate(iter_table_chunks(input_path, chunk_size)):
        part = parts_dir / f"{index:06d}{suffix}"
        parts.append(part)
        rows += len(chunk)
        bar.update(len(chunk))
        if part.exists():
            continue
        if text_col not in chunk.columns:
            raise DataError(
                f"{input_path}: no text column '{text_col}'; the columns are "
                f"{', '.join(map(str, chunk.columns))} (choose one with --text-col)."
            )
        texts = chunk[text_col].fillna("").astype(str).tolist()
        probs = classifier.predict_proba(texts, batch_size)
        scored = predictions_frame(texts, probs, classifier.labels).drop(columns=["text"])
        out = pd.concat([chunk.reset_index(drop=True), scored], axis=1)
        _write_part(out, part, out_fmt, header=index == 0)
    bar.close()
    return parts, rows
