"""Turn a DATA argument into train / validation / test splits of texts and class names.

DATA is a table file, a folder of ``train``/``validation``/``test`` files, ``hf:NAME[:CONFIG]``
or ``demo``. Labels are class names (strings); ``labels`` is the sorted set of training labels
and defines ``label2id``. Missing validation or test splits are carved from train with a seeded,
stratified split, and ``notes`` says so.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from loralab.config import uneven
from loralab.data.demo import DEMO_DESCRIPTION, read_demo
from loralab.data.readers import FORMATS, blank_cells, read_table, table_columns
from loralab.errors import DataError

SPLIT_NAMES = ("train", "validation", "test")
_SPLIT_ALIASES = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test", "eval"),
}


@dataclass
class LabelledTexts:
    """Texts with their class names; ``labels`` may be empty for unlabelled input."""

    texts: list[str]
    labels: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def digest(self) -> str:
        """A digest of the texts in order (not the labels, which a label map may rename): equal
        for the same rows."""
        hasher = hashlib.sha256()
        for text in self.texts:
            hasher.update(text.encode("utf-8", "surrogatepass") + b"\0")
        return hasher.hexdigest()[:16]

    def label_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.labels).items()))


@dataclass
class DataSplits:
    train: LabelledTexts
    validation: LabelledTexts
    test: LabelledTexts
    labels: list[str]
    source: str
    notes: list[str] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)
    seed: int | None = None  # the seed missing splits were carved and subsets cut with

    def split(self, name: str) -> LabelledTexts:
        if name not in SPLIT_NAMES:
            raise DataError(f"Unknown split '{name}'; use one of {', '.join(SPLIT_NAMES)}.")
        return getattr(self, name)

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.labels)}

    def summary(self) -> dict:
        return {
            "source": self.source,
            "labels": self.labels,
            "notes": self.notes,
            "splits": {
                name: {
                    "size": len(self.split(name)),
                    "origin": self.origins.get(name, "file"),
                    "label_counts": self.split(name).label_counts(),
                }
                for name in SPLIT_NAMES
            },
        }


def sort_labels(labels: set[str]) -> list[str]:
    """Sorted class names; numerically when every name is an integer ("2" before "10")."""
    if all(_is_int(x) for x in labels):
        return sorted(labels, key=int)
    return sorted(labels)


def _is_int(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


def _find_split_files(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    files = [p for p in sorted(folder.iterdir()) if p.is_file()]
    for split, aliases in _SPLIT_ALIASES.items():
        for path in files:
            stem = path.name.split(".")[0].lower()
            if stem in aliases and any(s.lower() in FORMATS for s in path.suffixes):
                found[split] = path
                break
    if "train" not in found:
        names = ", ".join(p.name for p in files) or "nothing"
        raise DataError(
            f"{folder}: no train file found (expected train.csv, train.jsonl, …); the folder holds {names}."
        )
    return found


def _read_hf(spec: str) -> dict[str, pd.DataFrame]:
    name, _, config = spec[3:].partition(":")
    try:
        # optional extra: hf (datasets)
        import datasets
    except ImportError as err:
        raise DataError("hf: data needs the datasets package: pip install 'loralab[hf]'.") from err
    try:
        loaded = datasets.load_dataset(name, config or None)
    except Exception as err:  # datasets raises many types for "not reachable / not cached"
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(
            f"{spec}: cannot load this 🤗 dataset (not in the local cache and the hub is not "
            f"reachable, or the name is wrong: {reason})."
        ) from err
    frames = {}
    for split, aliases in _SPLIT_ALIASES.items():
        for alias in aliases:
            if alias in loaded:
                frames[split] = loaded[alias].to_pandas()
                break
    if "train" not in frames:
        raise DataError(f"{spec}: no train split; it has {', '.join(loaded.keys())}.")
    return frames


def read_frames(data: str | Path) -> tuple[dict[str, pd.DataFrame], dict[str, str], str]:
    """Return raw frames per split, where each came from, and a description of the source."""
    if not isinstance(data, str | os.PathLike):
        # str() of a DataFrame is its printout, which would be looked up as a file name.
        raise DataError(
            f"DATA is a path (a file or folder), hf:NAME or 'demo', not a {type(data).__name__}; "
            "for texts and labels in memory use loralab.TextClassifier().fit(texts, labels)."
        )
    spec = str(data)
    if spec == "demo":
        return {"train": read_demo()}, {"train": "demo"}, DEMO_DESCRIPTION
    if spec.startswith("hf:"):
        frames = _read_hf(spec)
        return frames, {k: spec for k in frames}, spec
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or folder (DATA is a file, a folder, hf:NAME or demo).")
    if path.is_dir():
        files = _find_split_files(path)
        return {k: read_table(p) for k, p in files.items()}, {k: str(p) for k, p in files.items()}, str(path)
    return {"train": read_table(path)}, {"train": str(path)}, str(path)


def data_columns(data: str | Path) -> list[str] | None:
    """The columns every file of DATA has, read from their first rows (not whole); ``None`` for
    ``hf:`` and ``demo``, and where a file cannot be read (reading DATA then says why)."""
    spec = str(data)
    path = Path(spec).expanduser()
    if spec == "demo" or spec.startswith("hf:") or not path.exists():
        return None
    try:
        files = list(_find_split_files(path).values()) if path.is_dir() else [path]
        names = [table_columns(file) for file in files]
    except DataError:
        return None
    return [name for name in names[0] if all(name in other for other in names[1:])]


def _to_labelled(
    frame: pd.DataFrame, where: str, text_col: str, label_col: str | None, notes: list[str]
) -> LabelledTexts:
    columns = [str(c) for c in frame.columns]
    if label_col is not None and text_col == label_col:
        raise DataError(
            f"{where}: --text-col and --label-col are both '{text_col}'; a model that reads its "
            "label in its text learns nothing (choose two different columns)."
        )
    for role, col in (("text", text_col), ("label", label_col)):
        if col is not None and col not in frame.columns:
            flag = "--text-col" if role == "text" else "--label-col"
            raise DataError(
                f"{where}: no {role} column '{col}'; the columns are {', '.join(columns)} "
                f"(choose one with {flag})."
            )
    texts = frame[text_col]
    bad = blank_cells(texts)
    if label_col is not None:
        bad |= blank_cells(frame[label_col])
    if bad.all():
        raise DataError(f"{where}: every row has an empty text or label in column '{text_col}'.")
    if bad.any():
        rows = [int(i) + 1 for i in frame.index[bad.to_numpy()][:10]]
        more = "" if bad.sum() <= 10 else ", …"
        notes.append(
            f"{where}: dropped {int(bad.sum())} row(s) with an empty text or label "
            f"(data rows {', '.join(map(str, rows))}{more})."
        )
        frame = frame[~bad.to_numpy()]
    labels = [] if label_col is None else [_label_name(v) for v in frame[label_col].tolist()]
    marked = [label for label in labels if label.casefold() in _MISSING_MARKERS]  # labels come stripped
    if marked:
        # Files are read with keep_default_na=False so that a text "NA" stays a text; a label
        # "NA" may still mean "no label", which only the user can tell, so it is kept and said.
        forms = " / ".join(repr(form) for form in sorted(set(marked))[:5])
        notes.append(
            f"{where}: {len(marked)} row(s) of column '{label_col}' hold {forms}, which usually "
            "mark a missing value, and are kept as class names; if they mean unlabelled, leave "
            "those labels empty (rows with an empty label are dropped) or remove the rows."
        )
    return LabelledTexts(texts=[str(t) for t in frame[text_col].tolist()], labels=labels)


def _same_text(text: str) -> str:
    """``text`` as compared for sameness: case and runs of white space do not count."""
    return " ".join(text.split()).casefold()


def overlap_notes(parts: dict[str, LabelledTexts], where: dict[str, str]) -> list[str]:
    """What a careful user wants to know before trusting a score: texts of validation or test
    that also occur in train (retweets, copies; the same after case and spaces), whose scores
    measure memory rather than generalisation, and training texts given different labels."""
    labels_of: dict[str, set[str]] = {}
    for text, label in zip(parts["train"].texts, parts["train"].labels, strict=True):
        labels_of.setdefault(_same_text(text), set()).add(label)
    notes = []
    conflicting = sum(1 for found in labels_of.values() if len(found) > 1)
    if conflicting:
        notes.append(
            f"{where['train']}: {conflicting:,} training text(s) occur more than once with different "
            "labels; no model can be right on all of them, so check how they were labelled."
        )
    for split in ("validation", "test"):
        texts = parts[split].texts
        shared = sum(1 for text in texts if _same_text(text) in labels_of)
        if shared:
            name = where.get(split, f"the {split} split carved from train")
            notes.append(
                f"{name}: {shared:,} of its {len(texts):,} texts ({shared / len(texts):.1%}) also occur "
                "in the training data (the same after case and spaces); a score on them measures "
                "memory, not how well new texts are classified, so remove such duplicates "
                "(retweets, copies) from one side."
            )
    return notes


# Spellings of a missing value (pandas', R's, SQL's, Excel's #N/A, a dash), compared casefolded.
_MISSING_MARKERS = {"na", "n/a", "nan", "null", "none", "-", "#n/a"}


def _label_name(value: object) -> str:
    # Integer-valued labels become "0", "1", not "0.0": read from JSON/Parquet as floats, or
    # written as "1.0" by a spreadsheet or pandas into one split's file and not the others.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    # Spaces around a class name are an accident of typing or export ("positive "), never a
    # class of their own.
    name = str(value).strip()
    return name.split(".")[0] if _WHOLE_NUMBER.fullmatch(name) else name


_WHOLE_NUMBER = re.compile(r"[-+]?\d+\.0+")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
# More values than the longest rating scale has (0–10; half stars 0.5–5 have 10): a column of
# numbers with at most this many values may well be classes, however written.
_SCALE_VALUES = 11


def _looks_like_score(labels: list[str]) -> bool:
    """Whether labels that are all numbers (bar missing-value markers) measure something (a
    probability, a mean of stars, a count) rather than name classes.

    They do when they take more values than a rating scale and either some value has a fractional
    part — class ids are written as whole numbers or names, and scikit-learn, which ``fit`` uses,
    calls such targets continuous — or they are whole numbers nearly all different, fewer than
    two texts per value on average, so most classes would have one text to learn from and none
    to test on. The ids 0…N-1 or 1…N a label encoder gives are classes even then (one-shot data).
    """
    values = [label for label in labels if label.casefold() not in _MISSING_MARKERS]
    if not values or not all(_NUMBER.fullmatch(value) for value in values):
        return False
    distinct = set(values)
    if len(distinct) <= _SCALE_VALUES:
        return False
    numbers = {float(value) for value in distinct}
    if not all(number.is_integer() for number in numbers):
        return True
    encoded = any(numbers == set(range(start, start + len(distinct))) for start in (0, 1))
    return len(values) < 2 * len(distinct) and not encoded


def stratified_split(
    part: LabelledTexts, fraction: float, seed: int
) -> tuple[LabelledTexts, LabelledTexts, bool]:
    """Split off ``fraction`` of ``part``; stratified when every class has two or more rows."""
    indices = list(range(len(part)))
    counts = Counter(part.labels)
    stratify = part.labels if min(counts.values()) >= 2 else None
    too_few = DataError(
        f"the training data has only {len(part)} usable row(s), too few to carve a "
        f"{fraction:.0%} split from; add rows or give validation and test files."
    )
    try:
        keep, held = train_test_split(indices, test_size=fraction, random_state=seed, stratify=stratify)
    except ValueError:
        try:
            keep, held = train_test_split(indices, test_size=fraction, random_state=seed)
        except ValueError:
            raise too_few from None
        stratify = None
    # A class too small to stratify may have landed wholly in the held-out part: one of its
    # rows goes back, so that every class keeps a training row (a model cannot learn a class
    # it never sees), and a row of the largest kept class takes its place where one can.
    kept = Counter(part.labels[i] for i in keep)
    for label in sorted(set(counts) - set(kept)):
        back = next(i for i in held if part.labels[i] == label)
        held.remove(back)
        keep.append(back)
        kept[label] += 1
        largest, size = kept.most_common(1)[0]
        if size >= 2:
            out = next(i for i in reversed(keep) if part.labels[i] == largest)
            keep.remove(out)
            held.append(out)
            kept[largest] -= 1
    if not held:  # nothing could be held out without taking a class's only row
        raise too_few
    pick = lambda idx: LabelledTexts([part.texts[i] for i in idx], [part.labels[i] for i in idx])  # noqa: E731
    return pick(sorted(keep)), pick(sorted(held)), stratify is not None


def stratified_subset(part: LabelledTexts, size: int, seed: int) -> LabelledTexts:
    if size >= len(part):
        return part
    kept, _, _ = stratified_split(part, 1 - size / len(part), seed)
    return kept


def load_data(
    data: str | Path,
    text_col: str = "text",
    label_col: str = "label",
    *,
    seed: int = 42,
    subset: int | None = None,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
) -> DataSplits:
    """Load DATA into :class:`DataSplits`, validating columns and labels.

    >>> splits = load_data("../shared/data/sst2")  # doctest: +SKIP
    >>> splits.labels
    ['negative', 'positive']
    """
    frames, where, source = read_frames(data)
    if str(data) == "demo":
        text_col, label_col = "text", "label"
    notes: list[str] = []
    parts = {k: _to_labelled(f, where[k], text_col, label_col, notes) for k, f in frames.items()}
    train = parts["train"]
    labels = sort_labels(set(train.labels))
    if len(labels) < 2:
        raise DataError(
            f"{where['train']}: the training data has a single class ('{labels[0]}') in column "
            f"'{label_col}'; a classifier needs at least two."
        )
    by_form: dict[str, list[str]] = {}
    for label in labels:
        by_form.setdefault(_same_text(label), []).append(label)
    counts = Counter(train.labels)
    for alike in (group for group in by_form.values() if len(group) > 1):
        names = ", ".join(f"{label!r} ({counts[label]:,})" for label in alike)
        usual = max(alike, key=lambda label: counts[label])
        merge = ",".join(f"{label}={usual}" for label in alike if label != usual)
        notes.append(
            f"{where['train']}: the labels {names} differ only in case or spaces and are kept as "
            "different classes; if they are one class, write them the same way in the file "
            f"(or merge them with --label-map '{merge}' in compare and evaluate)."
        )
    # Mostly different values of several words each: texts (the two columns swapped, say), not
    # class names. Short names stay allowed however many, as in one-shot intent data.
    words = sum(len(label.split()) for label in labels) / len(labels)
    if len(train) >= 20 and len(labels) > len(train) / 2 and words >= 5:
        columns = ", ".join(str(c) for c in frames["train"].columns)
        raise DataError(
            f"{where['train']}: column '{label_col}' has {len(labels):,} different values in "
            f"{len(train):,} rows, of {words:.0f} words on average, so it holds texts rather than "
            f"classes; choose the label column with --label-col (the columns are {columns})."
        )
    if _looks_like_score(train.labels):
        numbers = [label for label in dict.fromkeys(train.labels) if _NUMBER.fullmatch(label)]
        others = [str(c) for c in frames["train"].columns if str(c) not in (text_col, label_col)]
        instead = (
            f"choose another column with --label-col (the other columns are {', '.join(others)})"
            if others
            else "the file has no other column to choose"
        )
        raise DataError(
            f"{where['train']}: column '{label_col}' looks like a continuous score "
            f"({len(numbers):,} distinct values among {len(train):,} texts, e.g. "
            f"{', '.join(numbers[:3])}, …), not class names; loralab trains classifiers, so bin it "
            f"into a few classes, or {instead}."
        )
    origins = {k: "file" for k in parts}
    for split, fraction in (("test", test_fraction), ("validation", validation_fraction)):
        if split in parts:
            continue
        share = fraction / (1 - (test_fraction if split == "validation" and "test" not in frames else 0))
        train, held, stratified = stratified_split(train, min(share, 0.5), seed)
        parts[split] = held
        how = "stratified" if stratified else "random (a class is too small to stratify)"
        origins[split] = f"carved from train ({fraction:.0%}, {how}, seed {seed})"
        rows = "1 row was" if len(held) == 1 else f"{len(held)} rows were"
        notes.append(f"No {split} split was given: {rows} {origins[split]}.")
    parts["train"] = train
    for split in ("validation", "test"):
        unseen = sorted(set(parts[split].labels) - set(labels))
        if unseen:
            forms = {_same_text(label): label for label in labels}
            alike = [
                f"{label!r} as {forms[_same_text(label)]!r}" for label in unseen if _same_text(label) in forms
            ]
            hint = f" (written in another case: {', '.join(alike)})" if alike else ""
            raise DataError(
                f"{where.get(split, split)}: label(s) {', '.join(map(repr, unseen))} do not occur "
                f"in the training data, which has {', '.join(map(repr, labels))}{hint}."
            )
    if subset is not None:
        if subset < len(labels):
            raise DataError(f"--subset {subset} is smaller than the number of classes ({len(labels)}).")
        for split in SPLIT_NAMES:
            if len(parts[split]) > subset:
                parts[split] = stratified_subset(parts[split], subset, seed)
        notes.append(f"Each split was cut to a stratified subset of at most {subset} rows (seed {seed}).")
        missing = sorted(set(labels) - set(parts["train"].labels))
        if missing:
            raise DataError(f"--subset {subset} leaves no training rows for {', '.join(missing)}.")
    per_class = parts["train"].label_counts()
    if uneven(per_class):
        rare, common = min(per_class, key=per_class.__getitem__), max(per_class, key=per_class.__getitem__)
        notes.append(
            f"{where['train']}: the classes are uneven ({rare!r} has {per_class[rare]:,} training "
            f"texts, {common!r} {per_class[common]:,}): a model can score well by favouring the "
            "common classes; compare judges such data by balanced accuracy, and --class-weight "
            "balanced weighs the rare classes up in training."
        )
    notes.extend(overlap_notes(parts, where))
    return DataSplits(
        train=parts["train"],
        validation=parts["validation"],
        test=parts["test"],
        labels=labels,
        source=source,
        notes=notes,
        origins=origins,
        seed=seed,
    )


def load_labelled_file(
    data: str | Path, split: str, text_col: str, label_col: str
) -> tuple[LabelledTexts, str, list[str]]:
    """Read one split of DATA for evaluation. A single file is used whole, whatever ``split``
    (a note says so when ``split`` is not the default, test); a folder, ``hf:`` or ``demo``
    without that split has it carved from train as in training."""
    frames, where, _ = read_frames(data)
    if str(data) == "demo":
        text_col, label_col = "text", "label"
    notes: list[str] = []
    single_file = Path(str(data)).expanduser().is_file()
    if single_file:
        part = _to_labelled(frames["train"], where["train"], text_col, label_col, notes)
        if split != "test":  # a file given to test on is the test data; another split is not in it
            notes.append(
                f"{where['train']} is a single file, so all {len(part):,} of its rows are scored, not "
                f"a {split} split of it (a folder of train/validation/test files, hf: data or demo "
                "have splits)."
            )
        return part, where["train"], notes
    if split in frames:
        return _to_labelled(frames[split], where[split], text_col, label_col, notes), where[split], notes
    splits = load_data(data, text_col, label_col)
    return splits.split(split), f"{where['train']} ({splits.origins[split]})", splits.notes
