"""Compare methods on identical splits: one run folder per (method, seed), then one table.

A compare folder holds ``compare.json`` (the data set, its split fingerprint and the methods),
one run folder per method and seed, and ``results.csv`` / ``results.json``. Completed runs are
reused and an interrupted run goes on from its last checkpoint, so an interrupted compare
resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from loralab.config import TrainConfig
from loralab.data import DataSplits, LabelledTexts, load_data
from loralab.data.label_map import relabel_splits
from loralab.errors import DataError, RunError
from loralab.methods import default_ladder, get_method
from loralab.runs.execute import continues, execute
from loralab.runs.folder import RunFolder, write_csv, write_json
from loralab.runs.recommend import (
    ACCURACY,
    BALANCED_ACCURACY,
    balanced_accuracy,
    chose_epoch,
    final_recommendation,
    judged_accuracy,
    judged_by,
    recommend_runs,
    validation_key,
)

# Cheapest first; each method's place is its ``ladder_position`` trait.
DEFAULT_LADDER = default_ladder()
COMPARE_FILE = "compare.json"
SUBSETS_PER_SEED = "per-seed"  # how a learning curve's subsets are drawn (see ``subset_seeds``)


def splits_fingerprint(splits: DataSplits) -> str:
    digest = hashlib.sha256()
    for name in ("train", "validation", "test"):
        part = splits.split(name)
        for text, label in zip(part.texts, part.labels, strict=True):
            digest.update(f"{name}\0{text}\0{label}\n".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:16]


def _check_folder(folder: Path, data: str, fingerprint: str) -> None:
    path = folder / COMPARE_FILE
    if path.exists():
        previous = json.loads(path.read_text())
        if previous.get("fingerprint") != fingerprint:
            raise RunError(
                f"{folder}: holds a comparison on other data ({previous.get('data')}, splits "
                f"{previous.get('fingerprint')}); this data's splits are {fingerprint}. "
                "Choose another folder."
            )
        if any(size != "all" for size in previous.get("train_sizes", [])) and (
            previous.get("subsets") != SUBSETS_PER_SEED
        ):
            raise RunError(
                f"{folder}: holds a learning curve whose subsets were shared by every seed; "
                "subsets are now drawn per seed, so its runs cannot be reused. Choose another folder."
            )


VALIDATION_CUT_NOTE = (
    "At each training-set size given in texts per class, the validation split (used to choose the "
    "best epoch and the recommended method) is cut to the same number of texts per class as the "
    "training subset; 'all' keeps the whole validation split, and the test split stays whole."
)


def _nested_cut(part: LabelledTexts, per_class: int, seed: int) -> LabelledTexts:
    """At most ``per_class`` texts of each class, drawn in one seeded order, so that the texts kept
    for 8 per class are among those kept for 16."""
    order = np.random.default_rng(seed).permutation(len(part))
    taken: dict[str, int] = dict.fromkeys(part.label_counts(), 0)
    keep = []
    for index in order:
        label = part.labels[index]
        if taken[label] < per_class:
            taken[label] += 1
            keep.append(int(index))
    keep.sort()
    return LabelledTexts([part.texts[i] for i in keep], [part.labels[i] for i in keep])


def parse_train_sizes(text: str) -> list[int | None]:
    """``"8,16,all"`` → ``[8, 16, None]``: texts per class, ``None`` for the whole training split."""
    sizes: list[int | None] = []
    for part in (p.strip() for p in text.split(",")):
        if part == "all":
            sizes.append(None)
        elif part.isdigit() and int(part) > 0:
            sizes.append(int(part))
        else:
            raise DataError(f"Train sizes are positive integers or 'all', separated by commas; got '{part}'.")
    return sizes


def per_class_subset(splits: DataSplits, per_class: int | None, seed: int) -> DataSplits:
    """Training set cut to ``per_class`` texts of each class, and the validation set to at most as
    many: with 16 labelled texts per class a user would not hold out thousands for choosing
    epochs, so a learning curve that did would flatter the small sizes. Subsets are nested, so a
    learning curve adds data, never swaps it; the test split stays whole."""
    if per_class is None:
        return splits
    counts = splits.train.label_counts()
    short = {label: n for label, n in counts.items() if n < per_class}
    if short:
        have = ", ".join(f"{k} {v:,}" for k, v in counts.items())
        raise DataError(f"--train-sizes {per_class} per class is more than the training data has ({have}).")
    if not len(splits.validation):
        raise DataError(
            f"--train-sizes {per_class}: the validation split of {splits.source} is empty, so there is "
            "nothing to cut to the training subset's size for choosing epochs."
        )
    train = _nested_cut(splits.train, per_class, seed)
    validation = _nested_cut(splits.validation, per_class, seed)
    return replace(splits, train=train, validation=validation, notes=[*splits.notes, VALIDATION_CUT_NOTE])


def _summarise(rows: list[dict], metric: str = ACCURACY) -> list[dict]:
    """One row per (train size, method): mean (and std over seeds) of each measured value;
    ``metric`` is what the recommendation judged validation by."""
    table = []
    for size, method in dict.fromkeys((r["train_size"], r["method"]) for r in rows):
        mine = [r for r in rows if r["method"] == method and r["train_size"] == size]
        summary = {"method": method, "train_size": size, "seeds": len(mine)}
        for key in ("trainable_parameters", "total_parameters", "trainable_share"):
            summary[key] = mine[0][key]
        for key in (
            "train_seconds",
            "inference_texts_per_second",
            "validation_accuracy",
            "validation_balanced_accuracy",
            "test_accuracy",
            "test_macro_f1",
        ):
            values = [r[key] for r in mine if r.get(key) is not None]
            summary[key] = statistics.fmean(values) if values else None
            summary[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        # What the recommendation reads: cross-fitted where the method chose an epoch on validation.
        for judged_metric in (ACCURACY, BALANCED_ACCURACY):
            key = validation_key(judged_metric)
            judged = [a for a in (judged_accuracy(r, judged_metric) for r in mine) if a is not None]
            summary[f"{key}_judged"] = statistics.fmean(judged) if judged else None
            summary[f"{key}_judged_std"] = statistics.stdev(judged) if len(judged) > 1 else 0.0
        summary["validation_crossfit"] = all(chose_epoch(r, metric) for r in mine)
        summary["validation_judged_by"] = metric
        table.append(summary)
    return table


def run_row(folder: Path, method: str, seed: int, train_size: str, root: Path) -> dict:
    manifest = json.loads((folder / "manifest.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    return {
        "method": method,
        "seed": seed,
        "train_size": train_size,
        "run": str(folder.relative_to(root)),
        "trainable_parameters": manifest.get("trainable_parameters"),
        "total_parameters": manifest.get("total_parameters"),
        "trainable_share": manifest.get("trainable_share"),
        "train_seconds": manifest.get("train_seconds"),
        "inference_texts_per_second": metrics["test"].get("inference_texts_per_second"),
        "validation_accuracy": metrics["validation"]["accuracy"],
        # The same, free of the optimism of choosing the best epoch on it (None: no epoch chosen;
        # with one epoch, nothing was chosen either, and it is the plain accuracy).
        "validation_accuracy_crossfit": manifest.get("validation_accuracy_crossfit"),
        "validation_balanced_accuracy": balanced_accuracy(metrics["validation"]),
        "validation_balanced_accuracy_crossfit": manifest.get("validation_balanced_accuracy_crossfit"),
        "epochs": (manifest.get("resolved") or {}).get("epochs"),
        "validation_texts": metrics["validation"]["n"],
        "validation_class_texts": {
            name: c["support"] for name, c in (metrics["validation"].get("per_class") or {}).items()
        },
        "test_accuracy": metrics["test"]["accuracy"],
        "test_macro_f1": metrics["test"]["macro_f1"],
    }


def subset_seeds(first_seed: int, seeds: int) -> list[int]:
    """Seeds of a learning curve's subsets: one per run seed. Which texts a user happens to have
    labelled moves small-data scores more than initialisation does (with 8 texts per class, more
    than the gaps between methods), so the spread over seeds must include it; within one seed
    the subsets stay nested across sizes."""
    return [first_seed + k for k in range(seeds)]


@dataclass(frozen=True)
class PlannedRun:
    train_size: int | None  # texts per class; None for the whole training split
    method: str
    seed: int
    folder_name: str


def run_plan(methods: list[str], seeds: int, first_seed: int, sizes: list[int | None]) -> list[PlannedRun]:
    """The runs of a comparison: every method at every training size, methods whose figures
    vary with the seed (their ``seeded`` trait) once per seed, the others once — except on the
    subsets of a learning curve, where each seed draws its own subset (see ``subset_seed``), so
    every method runs once per seed."""
    plan = []
    for size in sizes:
        for name in methods:
            seeded = get_method(name).seeded or size is not None
            for k in range(seeds if seeded else 1):
                seed = first_seed + k
                plan.append(PlannedRun(size, name, seed, f"{name}-seed{seed}" if seeded else name))
    return plan


def run_config(base: TrainConfig, method: str, seed: int) -> TrainConfig:
    """What one run of a comparison is asked for: its settings, less those the method does not
    read (baselines read texts their own way; the LoRA settings, say, are for LoRA), which
    :func:`unread_settings_warnings` has told the user of once for the whole comparison."""
    config = base.replace(method=method, seed=seed)
    found = get_method(method)
    if not found.reads_long_text:
        config = config.replace(truncation="head", long_text="truncate", train_on_chunks=False)
    defaults = TrainConfig()
    return config.replace(**{name: getattr(defaults, name) for name in found.unread_settings(config)})


def unread_settings_warnings(config: TrainConfig, methods: list[str]) -> list[str]:
    """One sentence per setting given away from its default that some of ``methods`` never
    read (see :meth:`~loralab.methods.base.Method.unread_settings`), naming them."""
    ignoring: dict[str, list[str]] = {}
    for name in methods:
        for setting in get_method(name).unread_settings(config.replace(method=name)):
            ignoring.setdefault(setting, []).append(name)
    sentences = []
    for setting, ignored_by in ignoring.items():
        flag = f"--{setting.replace('_', '-')}"
        reading = [name for name in methods if name not in ignored_by]
        if reading:
            verb = "ignores" if len(ignored_by) == 1 else "ignore"
            sentence = f"{flag} applies to {', '.join(reading)} only; {', '.join(ignored_by)} {verb} it."
        else:
            sentence = f"{flag} applies to none of the methods compared ({', '.join(methods)}); ignored."
        sentences.append(sentence)
    return sentences


def check_before_training(base: TrainConfig, methods: list[str], labels: list[str]) -> None:
    """Check every method's settings before the first run: a mistake in the settings of the
    last method (a target module that matches no layer) fails at once, not after the methods
    before it have trained."""
    for sentence in unread_settings_warnings(base, methods):
        warnings.warn(sentence, stacklevel=3)
    for name in methods:
        method = get_method(name)
        config = run_config(base, name, base.seed)
        method.check(config)
        method.check_model(config, labels)


def _asked_for(run: RunFolder, config: TrainConfig) -> bool:
    """Whether ``run`` is completed and was asked for exactly ``config`` (its config.json holds
    the resolved values; older runs, without ``requested`` in the manifest, only those)."""
    if not run.is_completed():
        return False
    manifest = run.read_manifest()
    asked = manifest.get("requested") or json.loads((run.path / "config.json").read_text())
    method = get_method(config.method)
    return method.comparable_settings(asked) == method.comparable_settings(config.to_dict())


def compare(
    data: str,
    output_dir: str | Path,
    *,
    methods: list[str] | None = None,
    seeds: int = 1,
    base_config: TrainConfig | None = None,
    text_col: str = "text",
    label_col: str = "label",
    subset: int | None = None,
    train_sizes: list[int | None] | None = None,
    progress: bool = True,
    on_run=None,
    on_epoch=None,
    label_map: dict[str, str] | None = None,
) -> dict:
    """Run every method (those whose figures vary with the seed ``seeds`` times) on the same
    splits; return the results.

    ``train_sizes`` (texts per class; ``None`` for all) repeats the ladder on nested stratified
    subsets of the training split for a learning curve; validation and test stay the same.
    ``on_run(row)`` sees each finished run and ``on_epoch(row)`` each epoch's history row; either
    may raise to stop the comparison (completed runs are reused when it is started again).
    ``label_map`` renames (or merges) the data's labels first.
    """
    base_config = base_config or TrainConfig()
    left_out: dict[str, str] = {}
    if not methods:  # the default ladder leaves out the rungs this model or machine cannot run
        for name in DEFAULT_LADDER:
            reason = get_method(name).unavailable(base_config.replace(method=name))
            if reason is not None:
                left_out[name] = reason
        methods = [name for name in DEFAULT_LADDER if name not in left_out]
    for name in methods:
        get_method(name)  # unknown names fail before any work
    splits = load_data(data, text_col, label_col, seed=base_config.seed, subset=subset)
    splits = relabel_splits(splits, label_map or {})
    fingerprint = splits_fingerprint(splits)
    sizes = train_sizes or [None]
    subsets = {
        (size, seed): per_class_subset(splits, size, seed)
        for size in sizes
        for seed in ([base_config.seed] if size is None else subset_seeds(base_config.seed, seeds))
    }
    folder = Path(output_dir)
    _check_folder(folder, data, fingerprint)
    check_before_training(base_config, methods, splits.labels)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(
        folder / COMPARE_FILE,
        {
            "data": str(data),
            "fingerprint": fingerprint,
            "methods": methods,
            "seeds": seeds,
            "train_sizes": [("all" if s is None else s) for s in sizes],
            "subsets": SUBSETS_PER_SEED,
            "data_summary": splits.summary(),
        },
    )
    rows = []
    for planned in run_plan(methods, seeds, base_config.seed, sizes):
        size, method, seed = planned.train_size, planned.method, planned.seed
        size_name = "all" if size is None else str(size)
        run_dir = folder / planned.folder_name
        if train_sizes:
            run_dir = folder / f"per-class-{size_name}" / run_dir.name
        config = run_config(base_config, method, seed)
        run = RunFolder(run_dir)
        reused = _asked_for(run, config)
        data_seed = base_config.seed if size is None else seed
        if not reused:
            # A run interrupted with a checkpoint (Ctrl-C, a cancelled or killed job) goes on
            # from it; any other unfinished run is trained again from the start.
            goes_on = continues(run, config, subsets[size, data_seed])
            execute(
                config,
                subsets[size, data_seed],
                run_dir,
                text_col=text_col,  # recorded in the run's manifest: the columns and subset
                label_col=label_col,  # its config.json reruns it with
                subset=subset,
                overwrite=not goes_on,
                resume=goes_on,
                progress=progress,
                on_epoch_hook=on_epoch,
            )
        row = run_row(run_dir, method, seed, size_name, folder)
        row["reused"] = reused
        # Each seed's validation cut is its own sample of the validation split (the pool): the
        # recommendation's noise counts the texts of all seeds, but never more than the pool holds.
        row["validation_drawn_per_seed"] = len(subsets[size, data_seed].validation) < len(splits.validation)
        row["validation_pool"] = len(splits.validation)
        row["train_largest_class"] = max(subsets[size, data_seed].train.label_counts().values())
        rows.append(row)
        if on_run:
            on_run(row)
    class_texts = splits.validation.label_counts()
    metric = judged_by(class_texts)
    summary = _summarise(rows, metric)
    results: dict[str, Any] = {
        "data": str(data),
        "fingerprint": fingerprint,
        "runs": rows,
        "summary": summary,
    }
    results["validation_cut"] = VALIDATION_CUT_NOTE if train_sizes else None
    results["left_out"] = left_out
    results["validation_judged_by"] = metric
    results["recommendations"] = recommend_runs(rows, class_texts=class_texts)
    results["recommendation"] = final_recommendation(results["recommendations"])
    write_json(folder / "results.json", results)
    write_csv(folder / "results.csv", summary)
    return results
