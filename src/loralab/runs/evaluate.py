"""Evaluate a run on any data with the same label set, optionally next to the untrained model."""

from __future__ import annotations

import re
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from loralab.data import DataSplits, LabelledTexts, load_data, load_labelled_file
from loralab.data.dataset import SPLIT_NAMES, data_columns, stratified_subset
from loralab.data.label_map import relabel
from loralab.errors import DataError
from loralab.evaluation.evaluate import evaluate_classifier
from loralab.methods import Classifier, untrained_method
from loralab.methods.neural import TransformerClassifier
from loralab.runs.folder import RunFolder
from loralab.runs.load import completed_run, run_column
from loralab.runs.train import load_run


def untrained_classifier(trained: Classifier) -> Classifier:
    """The base model with a freshly initialised head, seeded as the run was ("before")."""
    if not isinstance(trained, TransformerClassifier):
        raise DataError(f"--before needs a transformer run; this run's method is '{trained.method}'.")
    empty = LabelledTexts([], [])
    splits = DataSplits(empty, empty, empty, trained.labels, source="none")
    return untrained_method().fit(splits, trained.config, progress=False).classifier


def check_labels(part: LabelledTexts, known: list[str], where: str) -> None:
    unseen = sorted(set(part.labels) - set(known))
    if unseen:
        # Which old name means which new one cannot be guessed (positive=rotten would score a
        # good model as a bad one); only a name that differs in case alone is paired.
        forms = {name.casefold(): name for name in known}
        pairs = [f"{old}={forms.get(old.casefold(), 'NAME')}" for old in unseen]
        guessed = all(old.casefold() in forms for old in unseen)
        choose = "" if guessed else ", each NAME one of the model's labels"
        raise DataError(
            f"{where}: label(s) {', '.join(map(repr, unseen))} were never seen by this model, "
            f"which knows {', '.join(map(repr, known))}; map them with --label-map "
            f"'{','.join(pairs)}'{choose}."
        )


def split_for_run(
    run: str | Path,
    data: str,
    split: str,
    text_col: str,
    label_col: str,
    label_map: dict[str, str] | None = None,
) -> tuple[LabelledTexts, str, list[str]]:
    """The rows of ``split`` of DATA to score ``run`` on, where they come from, and notes: as
    training carved them when DATA is the run's own training file (:func:`split_as_trained`),
    else the split as :func:`load_labelled_file` reads it."""
    carved = split_as_trained(run, data, split, text_col, label_col, label_map)
    return carved if carved is not None else load_labelled_file(data, split, text_col, label_col)


def split_as_trained(
    run: str | Path,
    data: str,
    split: str,
    text_col: str,
    label_col: str,
    label_map: dict[str, str] | None = None,
) -> tuple[LabelledTexts, str, list[str]] | None:
    """When DATA is the single file the run was trained on, with its validation and test rows
    carved from it, the rows of ``split`` exactly as training carved them (the carving seed,
    the same subset); otherwise ``None`` (another file is scored whole). Scoring the whole
    training file would mix the rows the model learned from into its test figure.

    The rows are checked against the digest of the split's texts recorded in the run's manifest
    (runs saved before digests were recorded: its size and label counts), so a file that merely
    shares the name is scored whole, with a note saying so."""
    path = Path(data).expanduser()
    manifest = RunFolder(run).read_manifest()
    recorded = manifest.get("data") or {}
    splits = recorded.get("splits") or {}
    origins = {s: str((splits.get(s) or {}).get("origin", "")) for s in SPLIT_NAMES}
    if not (
        path.is_file()
        and any(origin.startswith("carved") for origin in origins.values())
        and path.name == Path(str(recorded.get("source", ""))).name
    ):
        return None
    seed = manifest.get("data_seed")
    if not isinstance(seed, int):  # a run saved before the carving seed was recorded
        carved = next(re.search(r"seed (\d+)\)", o) for o in origins.values() if o.startswith("carved"))
        seed = int(carved.group(1)) if carved else 42
    whole = load_data(data, text_col, label_col, seed=seed)
    part = whole.split(split)
    mine = splits.get(split) or {}
    size = mine.get("size")
    if isinstance(size, int) and len(part) > size:  # the run cut each split to --subset rows
        part = stratified_subset(part, size, seed)
    digest = (manifest.get("split_digests") or {}).get(split)
    if digest is not None:
        same = part.digest() == digest
    else:
        same = dict(Counter(relabel(part, label_map or {}, data).labels)) == mine.get("label_counts")
    if not same:
        warnings.warn(
            f"{data} has the name of the file this run was trained on but not the rows of its "
            f"{split} split, so the whole file is scored.",
            stacklevel=2,
        )
        return None
    note = (
        f"{data} is the file this run was trained on, so its {split} split is evaluated as "
        f"training carved it ({len(part):,} rows), not the whole file."
    )
    return part, f"{data} ({whole.origins.get(split, 'the rows training kept')})", [note]


def evaluate_run(
    run: str | Path,
    data: str,
    *,
    split: str = "test",
    text_col: str | None = None,
    label_col: str | None = None,
    subset: int | None = None,
    seed: int = 42,
    before: bool = False,
    label_map: dict[str, str] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Metrics of the run on one split of DATA (``subset``: a stratified sample of at most
    that many texts), and of the untrained model too with ``before``.

    ``text_col`` and ``label_col`` default to the columns the run was trained on where DATA
    has them, else to ``text`` and ``label``. ``label_map`` renames the data's labels first;
    ``log`` receives a line per stage, so a caller can show progress also when the output is
    not a terminal. The data is read and checked before the model is loaded."""
    say = log or (lambda line: None)
    if split not in SPLIT_NAMES:
        raise DataError(f"Unknown split '{split}'; use one of {', '.join(SPLIT_NAMES)}.")
    begin = time.perf_counter()
    manifest = completed_run(run).read_manifest()
    columns = data_columns(data) if text_col is None or label_col is None else None
    text_col, text_note = run_column(run, "text", text_col, columns)
    label_col, label_note = run_column(run, "label", label_col, columns)
    part, where, notes = split_for_run(run, data, split, text_col, label_col, label_map)
    notes = [note for note in (text_note, label_note) if note] + notes
    part = relabel(part, label_map or {}, where)
    recorded_labels = (manifest.get("data") or {}).get("labels")
    if isinstance(recorded_labels, list) and recorded_labels:
        check_labels(part, [str(label) for label in recorded_labels], where)
    say(f"Loading {run} …")
    classifier = load_run(run)
    check_labels(part, classifier.labels, where)
    if subset is not None and len(part) > subset:  # the CLI has checked subset ≥ 1
        part = stratified_subset(part, subset, seed)
        notes = [*notes, f"Evaluated on a stratified subset of {subset} of {where}'s rows (seed {seed})."]
    results: dict = {"_data": where, "_notes": notes}

    def timed(name: str, model: Classifier) -> dict:
        say(f"Evaluating {name} on {len(part):,} texts …")
        start = time.perf_counter()
        metrics = evaluate_classifier(model, part).metrics.to_dict()
        say(f"  {name}: accuracy {metrics['accuracy']:.4f} ({time.perf_counter() - start:.1f} s)")
        return metrics

    if before:
        results["before"] = timed("the untrained model", untrained_classifier(classifier))
        results["after"] = timed("the trained model", classifier)
    else:
        results["trained"] = timed("the trained model", classifier)
    say(f"Done in {time.perf_counter() - begin:.1f} s.")
    return results
