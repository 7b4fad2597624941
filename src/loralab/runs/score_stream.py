"""Score a table and write the result as CSV to a stream (``loralab predict --input F`` to stdout).

Unlike :func:`loralab.runs.predict.predict_file` there is no file to resume into: chunks are
scored and written in order, so the output can be piped into the next command as it comes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import pandas as pd

from loralab.data.readers import iter_table_chunks
from loralab.evaluation.evaluate import predictions_frame
from loralab.methods import Classifier
from loralab.runs.predict import no_text_column


def score_to_stream(
    classifier: Classifier,
    input_path: str | Path,
    stream: TextIO,
    text_col: str = "text",
    chunk_size: int = 4096,
    batch_size: int | None = None,
) -> int:
    """Append predicted label, probability and per-class probabilities to each row of
    ``input_path`` and write it to ``stream`` as CSV, one chunk at a time; return the row count."""
    rows = 0
    for index, chunk in enumerate(iter_table_chunks(input_path, chunk_size)):
        if text_col not in chunk.columns:
            raise no_text_column(input_path, text_col, chunk.columns)
        texts = chunk[text_col].fillna("").astype(str).tolist()
        probs = classifier.predict_proba(texts, batch_size)
        scored = predictions_frame(texts, probs, classifier.labels).drop(columns=["text"])
        out = pd.concat([chunk.reset_index(drop=True), scored], axis=1)
        out.to_csv(stream, header=index == 0, index=False)
        stream.flush()
        rows += len(chunk)
    return rows
