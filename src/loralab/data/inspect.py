"""Token-length statistics of a data set under a model's tokenizer."""

from __future__ import annotations

import numpy as np

from loralab.data.dataset import SPLIT_NAMES, DataSplits


def token_length_stats(tokenizer, texts: list[str], max_length: int) -> dict:
    """Mean, p50, p95 and max token counts (special tokens included), and how many texts
    ``max_length`` would truncate."""
    if not texts:
        return {"n": 0}
    lengths = np.array([len(ids) for ids in tokenizer(texts, truncation=False)["input_ids"]])
    return {
        "n": int(len(lengths)),
        "mean": float(lengths.mean()),
        "p50": float(np.percentile(lengths, 50)),
        "p95": float(np.percentile(lengths, 95)),
        "max": int(lengths.max()),
        "truncated": int((lengths > max_length).sum()),
        "max_length": max_length,
    }


def data_report(splits: DataSplits, tokenizer, max_length: int) -> dict:
    report = splits.summary()
    for name in SPLIT_NAMES:
        report["splits"][name]["tokens"] = token_length_stats(tokenizer, splits.split(name).texts, max_length)
    return report
