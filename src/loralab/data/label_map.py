"""``--label-map old=new,…``: rename (or merge) the labels of a data set before it is used.

A run trained on ``fresh``/``rotten`` can then be evaluated on data labelled
``positive``/``negative`` (``--label-map positive=fresh,negative=rotten``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from loralab.data.dataset import DataSplits, LabelledTexts, sort_labels
from loralab.errors import DataError


def parse_label_map(text: str | None) -> dict[str, str]:
    """``"a=x, b=y"`` → ``{"a": "x", "b": "y"}``; an empty or missing text maps nothing.

    >>> parse_label_map("positive=fresh,negative=rotten")
    {'positive': 'fresh', 'negative': 'rotten'}
    """
    mapping: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        old, sep, new = item.partition("=")
        old, new = old.strip(), new.strip()
        if not sep or not old or not new:
            raise DataError(f"--label-map takes OLD=NEW pairs separated by commas; got '{item.strip()}'.")
        if old in mapping and mapping[old] != new:
            raise DataError(f"--label-map maps '{old}' twice ('{mapping[old]}' and '{new}').")
        mapping[old] = new
    return mapping


def relabel(part: LabelledTexts, mapping: dict[str, str], where: str) -> LabelledTexts:
    """``part`` with its labels renamed; a label to rename that the data lack is an error."""
    if not mapping:
        return part
    present = set(part.labels)
    absent = sorted(set(mapping) - present)
    if absent:
        raise DataError(
            f"{where}: --label-map renames {', '.join(map(repr, absent))}, which the labels do not "
            f"hold; they are {', '.join(map(repr, sort_labels(present)))}."
        )
    return LabelledTexts(part.texts, [mapping.get(label, label) for label in part.labels])


def relabel_splits(splits: DataSplits, mapping: dict[str, str]) -> DataSplits:
    """Every split relabelled; the label set is recomputed (two old labels may merge into one)."""
    if not mapping:
        return splits
    absent = sorted(set(mapping) - set(splits.labels))
    if absent:
        raise DataError(
            f"{splits.source}: --label-map renames {', '.join(map(repr, absent))}, which the labels do "
            f"not hold; they are {', '.join(map(repr, splits.labels))}."
        )
    # The label set was checked as a whole; a split may lack one of the renamed labels.
    renamed: dict[str, Any] = {
        name: LabelledTexts(part.texts, [mapping.get(label, label) for label in part.labels])
        for name, part in ((n, splits.split(n)) for n in ("train", "validation", "test"))
    }
    labels = sort_labels({mapping.get(label, label) for label in splits.labels})
    if len(labels) < 2:
        raise DataError(f"--label-map leaves a single label ('{labels[0]}'); a classifier needs two.")
    note = "Labels renamed by --label-map: " + ", ".join(f"{k} → {v}" for k, v in mapping.items()) + "."
    return replace(splits, **renamed, labels=labels, notes=[*splits.notes, note])
